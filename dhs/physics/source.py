"""Source-plane light: elliptical Sersic and pixelized (e.g. COSMOS) templates.

Every profile here is a surface brightness normalized to a total flux of 1 (per
arcsec^2); multiply by the pixel area (arcsec^2) and the band flux (nanomaggies) to get
nanomaggies per pixel. Source positions ``x, y`` are offsets (arcsec) of the source
centre from the lens centre, in the source plane.

Sersic (lenstronomy ``SERSIC_ELLIPSE`` conventions): ``R = sqrt(x'^2 + y'^2)`` with the
product-average map ``x' = ((1-e1) dx - e2 dy)/norm``, ``y' = (-e2 dx + (1+e1) dy)/norm``,
``norm = sqrt(1 - e1^2 - e2^2)``; ``I(R) = A exp(-b_n ((R/R_sersic)^(1/n) - 1))`` with
``b_n = 1.9992 n - 0.3271`` and ``A`` set so the profile integrates to 1; ``R`` is floored
at 1e-4 arcsec and the profile is zero beyond ``1000 R_sersic``.

Template (lenstronomy ``INTERPOL`` conventions): the image (flux per template pixel, any
sum > 0) is zero-padded by one pixel, divided by its sum times ``pixscale^2`` and
interpolated bilinearly between pixel centres (zero outside the padded grid). The
bilinear interpolant of a zero-padded grid integrates exactly to the pixel sum times
``pixscale^2``, so the unlensed total flux equals the requested flux. Template pixel
``(row, col)`` sits at ``u = col - (W-1)/2``, ``v = row - (H-1)/2`` template pixels from the
centre; the sky position is ``(dx, dy) = pixscale * R(angle) (u, v)``, a counter-clockwise
rotation by ``angle`` (rad).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np
from scipy.special import gammainc, gammaincinv, gammaln

from dhs.physics.lens import e1e2_to_q_phi, q_phi_to_e1e2
from dhs.physics.validate import BatchFields, as_batch, check_finite, check_range, first_bad

SERSIC_SMOOTHING = 1e-4
SERSIC_MAX_R_FRAC = 1000.0
#: Fraction of a Sersic source's flux left outside its supersampled support.
SERSIC_SUPPORT_FLUX_OUT = 1e-3


def sersic_bn(n: np.ndarray) -> np.ndarray:
    """lenstronomy's b_n approximation ``1.9992 n - 0.3271`` (floored at 1e-5)."""
    return np.maximum(1.9992 * np.asarray(n, dtype=np.float64) - 0.3271, 1e-5)


def sersic_amplitude(flux: np.ndarray, r_sersic: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Surface brightness at R_sersic (flux / arcsec^2) giving total ``flux``."""
    n = np.asarray(n, dtype=np.float64)
    r = np.maximum(np.asarray(r_sersic, dtype=np.float64), SERSIC_SMOOTHING)
    bn = sersic_bn(n)
    log_unit = np.log(2.0 * np.pi * n * r * r) + bn - 2.0 * n * np.log(bn) + gammaln(2.0 * n)
    return np.asarray(flux, dtype=np.float64) * np.exp(-log_unit)


@dataclass(frozen=True)
class SersicBatch(BatchFields):
    """Elliptical Sersic sources, fields of shape ``(n,)``.

    R_sersic: half-light radius (arcsec, product average of the axes); n_sersic: index;
    e1, e2: ellipticity; x, y: offset of the source centre from the lens centre (arcsec).
    """

    R_sersic: np.ndarray
    n_sersic: np.ndarray
    e1: np.ndarray
    e2: np.ndarray
    x: np.ndarray
    y: np.ndarray
    _per_stamp = ("R_sersic", "n_sersic", "e1", "e2", "x", "y")

    def __post_init__(self) -> None:
        n = np.size(self.R_sersic)
        for f in fields(self):
            object.__setattr__(self, f.name, as_batch(getattr(self, f.name), n, f.name))
        check_finite(self)
        check_range("R_sersic", self.R_sersic, lo=0.0, lo_open=True)
        check_range("n_sersic", self.n_sersic, lo=0.2, hi=10.0)
        e = np.hypot(self.e1, self.e2)
        i = first_bad(e >= 1.0)
        if i is not None:
            raise ValueError(f"source |e| = hypot(e1, e2)[{i}] = {e[i]!r}: must be < 1")

    @classmethod
    def from_q_phi(
        cls,
        R_sersic: np.ndarray,
        n_sersic: np.ndarray,
        q: np.ndarray,
        phi: np.ndarray,
        x: np.ndarray | float = 0.0,
        y: np.ndarray | float = 0.0,
    ) -> SersicBatch:
        """Build from axis ratio q in (0, 1] and position angle phi (rad)."""
        r = np.atleast_1d(np.asarray(R_sersic, dtype=np.float64))
        q = as_batch(q, r.size, "q")
        check_range("q", q, lo=0.0, lo_open=True, hi=1.0)
        phi = as_batch(phi, r.size, "phi")
        check_range("phi", phi)
        e1, e2 = q_phi_to_e1e2(q, phi)
        return cls(r, as_batch(n_sersic, r.size, "n_sersic"), e1, e2,
                   as_batch(x, r.size, "x"), as_batch(y, r.size, "y"))

    def frame(self, dx: np.ndarray, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Product-average elliptical coordinates (arcsec) of offsets from the centre."""
        norm = np.sqrt(np.maximum(np.abs(1.0 - self.e1**2 - self.e2**2), 1e-6))
        xe = ((1.0 - self.e1) * dx - self.e2 * dy) / norm
        ye = (-self.e2 * dx + (1.0 + self.e1) * dy) / norm
        return xe, ye

    def support_half_width(self) -> np.ndarray:
        """Half width (arcsec, elliptical frame) outside which pixels are not supersampled: the
        radius enclosing all but ``SERSIC_SUPPORT_FLUX_OUT`` of the flux,
        R_sersic (P^-1(2n, 1 - f) / b_n)^n (5.5 R_sersic for n = 1, 31 for n = 4)."""
        n = self.n_sersic
        x = gammaincinv(2.0 * n, 1.0 - SERSIC_SUPPORT_FLUX_OUT) / sersic_bn(n)
        return self.R_sersic * x ** n

    def profile_params(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(amplitude at R_sersic for unit flux, b_n, 1/n) per stamp."""
        return (sersic_amplitude(1.0, self.R_sersic, self.n_sersic), sersic_bn(self.n_sersic),
                1.0 / self.n_sersic)

    def axis_ratio(self) -> np.ndarray:
        return e1e2_to_q_phi(self.e1, self.e2)[0]


def sersic_core(
    r_sersic: np.ndarray, n: np.ndarray, amp: np.ndarray, r_core: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Flux-conserving core for a unit-flux Sersic: inside ``r_core`` (arcsec) the profile
    becomes ``I(r_core) + c (1 - r^2/r_core^2)``, continuous at ``r_core`` and holding the
    same enclosed flux. Returns ``(I(r_core), c)``."""
    bn = sersic_bn(n)
    x = np.maximum(r_core, SERSIC_SMOOTHING) / np.maximum(r_sersic, SERSIC_SMOOTHING)
    i_edge = amp * np.exp(bn * (1.0 - x ** (1.0 / n)))
    enclosed = gammainc(2.0 * n, bn * x ** (1.0 / n))
    c = 2.0 * (enclosed / (np.pi * r_core * r_core) - i_edge)
    return i_edge, c


def sersic_sb(
    r_ell: np.ndarray, r_sersic: np.ndarray, amp: np.ndarray, bn: np.ndarray,
    inv_n: np.ndarray, core: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Sersic surface brightness at elliptical radius ``r_ell`` (arcsec).

    ``core = (r_core, I(r_core), c)`` from :func:`sersic_core` replaces the cusp inside
    ``r_core`` by a flux-conserving cap; None evaluates the exact profile.
    """
    rs = np.maximum(r_sersic, SERSIC_SMOOTHING)
    frac = np.maximum(r_ell, SERSIC_SMOOTHING) / rs
    val = amp * np.exp(bn * (1.0 - np.exp(inv_n * np.log(frac))))
    val = np.where(frac <= SERSIC_MAX_R_FRAC, val, 0.0)
    if core is not None:
        r_core, i_edge, c = core
        cap = i_edge + c * (1.0 - (r_ell * r_ell) / (r_core * r_core))
        val = np.where(r_ell < r_core, cap, val)
    return val


@dataclass(frozen=True)
class TemplateBatch(BatchFields):
    """Pixelized sources: ``templates`` (n, H, W) in flux per template pixel (any units;
    only the shape matters, the flux comes from ``band_flux``), ``pixscale`` arcsec per
    template pixel (scalar or (n,)), ``x, y`` offset from the lens centre (arcsec) and
    ``angle`` counter-clockwise rotation (rad). Each template must have a positive sum.

    float32 and float64 templates are kept as given (no copy); other dtypes become
    float64. ``sb_norm`` (n,): template sum times ``pixscale^2`` (arcsec^2), the divisor
    that turns a template into unit-flux surface brightness.
    """

    templates: np.ndarray
    pixscale: np.ndarray
    x: np.ndarray
    y: np.ndarray
    angle: np.ndarray
    sb_norm: np.ndarray = field(init=False, repr=False, compare=False)
    _per_stamp = ("templates", "pixscale", "x", "y", "angle", "sb_norm")

    def __post_init__(self) -> None:
        t = np.asarray(self.templates)
        if t.dtype not in (np.float32, np.float64):
            t = t.astype(np.float64)
        if t.ndim == 2:
            t = t[None]
        if t.ndim != 3 or t.shape[1] < 1 or t.shape[2] < 1:
            raise ValueError(f"templates must have shape (n, H, W), got {np.shape(self.templates)}")
        n = t.shape[0]
        object.__setattr__(self, "templates", t)
        for name in ("pixscale", "x", "y", "angle"):
            object.__setattr__(self, name, as_batch(getattr(self, name), n, name))
        check_finite(self)
        check_range("pixscale", self.pixscale, lo=0.0, lo_open=True)
        total = t.sum(axis=(1, 2), dtype=np.float64)
        i = first_bad(~(total > 0))
        if i is not None:
            raise ValueError(f"templates[{i}] sums to {total[i]!r}: must be > 0")
        object.__setattr__(self, "sb_norm", total * self.pixscale**2)

    @property
    def padded_sb(self) -> np.ndarray:
        """(n, H+2, W+2) float64 unit-flux surface brightness (per arcsec^2), zero-padded
        by one template pixel (built on each access)."""
        t = self.templates
        padded = np.zeros((t.shape[0], t.shape[1] + 2, t.shape[2] + 2))
        padded[:, 1:-1, 1:-1] = t / self.sb_norm[:, None, None]
        return padded

    def frame(self, dx: np.ndarray, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Template pixel coordinates (u: column, v: row, from the centre) of offsets."""
        c = np.cos(self.angle) / self.pixscale
        s = np.sin(self.angle) / self.pixscale
        return c * dx + s * dy, -s * dx + c * dy

    def support_half_size(self) -> tuple[float, float]:
        """Half extent (template pixels) of the padded grid: (along u, along v)."""
        return 0.5 * (self.templates.shape[2] + 1), 0.5 * (self.templates.shape[1] + 1)

    def support_half_sizes(self) -> tuple[np.ndarray, np.ndarray]:
        """Per template, the half extent (template pixels, along u and v) of the region where
        the bilinear interpolant can be non-zero: the non-zero pixels plus one pixel, symmetric
        about the template centre (clean templates are 0 outside the galaxy). Shape (n,)."""
        t = self.templates
        out = []
        for axis, size in ((1, t.shape[2]), (2, t.shape[1])):
            used = (t != 0).any(axis=axis)  # (n, size): columns (axis 1) or rows (axis 2)
            idx = np.arange(size, dtype=np.float64) - 0.5 * (size - 1)
            far = np.where(used, np.abs(idx)[None, :], -1.0).max(axis=1)
            out.append(np.where(far >= 0, far + 1.0, 0.5 * (size + 1)))
        return out[0], out[1]


def bilinear_lookup(
    padded: np.ndarray, idx: np.ndarray | None, u: np.ndarray, v: np.ndarray
) -> np.ndarray:
    """Bilinear interpolation of ``padded`` (n, Hp, Wp) at template coords (u, v).

    ``idx`` selects the template per element (None: leading axes of u, v are the batch).
    Zero outside the padded grid: coordinates are clamped onto its zero border.
    """
    n, hp, wp = padded.shape
    cc = np.clip(u + 0.5 * (wp - 1), 0.0, wp - 1.0)
    rc = np.clip(v + 0.5 * (hp - 1), 0.0, hp - 1.0)
    c0 = np.minimum(cc.astype(np.intp), wp - 2)
    r0 = np.minimum(rc.astype(np.intp), hp - 2)
    t = cc - c0
    s = rc - r0
    if idx is None:
        idx = np.arange(n).reshape((n,) + (1,) * (u.ndim - 1))
    flat = idx * (hp * wp) + r0 * wp + c0
    p = padded.reshape(-1)
    top = p[flat]
    top += t * (p[flat + 1] - top)
    bot = p[flat + wp]
    bot += t * (p[flat + wp + 1] - bot)
    return top + s * (bot - top)
