"""Singular isothermal ellipsoid (SIE) plus external shear, on batches of lenses.

Angles are in arcsec, position angles in radians measured counter-clockwise from +x.
All functions broadcast: per-lens parameters of shape ``(n,)`` are combined with
coordinates of shape ``(n, ...)`` by :meth:`LensBatch.column`, or gathered per element
with :meth:`LensBatch.take`.

Conventions (identical to lenstronomy's ``SIE`` and ``SHEAR`` profiles):

* ellipticity ``e1 = (1-q)/(1+q) cos 2phi``, ``e2 = (1-q)/(1+q) sin 2phi``;
* ``theta_E`` is the intermediate-axis Einstein radius,
  ``kappa = theta_E / (2 sqrt(q x'^2 + y'^2/q))`` with ``x'`` along the major axis;
* shear deflection ``(g1 x + g2 y, g2 x - g1 y)`` about the lens centre.

The round limit ``q -> 1`` is the singular isothermal sphere: the deflection uses
``atan(f t)/f`` with ``f = sqrt(1 - q^2)`` floored at 1e-8, where the ratio equals ``t``
to the last bit, and the Hessian is written without any ``1/f``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from dhs.physics import kernels
from dhs.physics.validate import BatchFields, as_batch, check_finite, check_range

_F_FLOOR = 1e-8
_R_FLOOR = 1e-15
_Q_MIN = (1.0 - 0.9999) / (1.0 + 0.9999)


def q_phi_to_e1e2(q: np.ndarray, phi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Axis ratio and position angle (rad) -> ellipticity components (e1, e2)."""
    q = np.asarray(q, dtype=np.float64)
    phi = np.asarray(phi, dtype=np.float64)
    e = (1.0 - q) / (1.0 + q)
    return e * np.cos(2.0 * phi), e * np.sin(2.0 * phi)


def e1e2_to_q_phi(e1: np.ndarray, e2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ellipticity components -> (axis ratio q, position angle phi in rad).

    ``|e|`` is clipped at 0.9999 (q >= 5e-5), as lenstronomy does.
    """
    e1 = np.asarray(e1, dtype=np.float64)
    e2 = np.asarray(e2, dtype=np.float64)
    e = np.minimum(np.hypot(e1, e2), 0.9999)
    return (1.0 - e) / (1.0 + e), 0.5 * np.arctan2(e2, e1)


@dataclass(frozen=True)
class LensBatch(BatchFields):
    """SIE + external shear for ``n`` stamps; every field has shape ``(n,)``.

    theta_E: Einstein radius (arcsec); 0 marks a control (no lensing, no arc).
    e1, e2: SIE ellipticity components. center_x, center_y: lens centre (arcsec, stamp
    frame; see :func:`dhs.physics.render.stamp_center_offset`). gamma1, gamma2: external
    shear components.
    """

    theta_E: np.ndarray
    e1: np.ndarray
    e2: np.ndarray
    center_x: np.ndarray
    center_y: np.ndarray
    gamma1: np.ndarray
    gamma2: np.ndarray
    _per_stamp = ("theta_E", "e1", "e2", "center_x", "center_y", "gamma1", "gamma2")

    def __post_init__(self) -> None:
        n = np.size(self.theta_E)
        for f in fields(self):
            object.__setattr__(self, f.name, as_batch(getattr(self, f.name), n, f.name))
        check_finite(self)
        check_range("theta_E", self.theta_E, lo=0.0)
        e = np.hypot(self.e1, self.e2)
        bad = np.flatnonzero(e >= 1.0)
        if bad.size:
            i = int(bad[0])
            raise ValueError(f"|e| = hypot(e1, e2)[{i}] = {e[i]!r}: must be < 1 (q > 0)")

    @classmethod
    def from_q_phi(
        cls,
        theta_E: np.ndarray,
        q: np.ndarray,
        phi: np.ndarray,
        gamma: np.ndarray | float = 0.0,
        phi_gamma: np.ndarray | float = 0.0,
        center_x: np.ndarray | float = 0.0,
        center_y: np.ndarray | float = 0.0,
    ) -> LensBatch:
        """Build from axis ratio q in (0, 1], position angles (rad), shear amplitude."""
        theta_E = np.atleast_1d(np.asarray(theta_E, dtype=np.float64))
        n = theta_E.size
        q = as_batch(q, n, "q")
        check_range("q", q, lo=0.0, lo_open=True, hi=1.0)
        phi = as_batch(phi, n, "phi")
        check_range("phi", phi)
        check_range("theta_E", theta_E, lo=0.0)
        gamma = as_batch(gamma, n, "gamma")
        check_range("gamma", gamma, lo=0.0)
        phi_gamma = as_batch(phi_gamma, n, "phi_gamma")
        check_range("phi_gamma", phi_gamma)
        e1, e2 = q_phi_to_e1e2(q, phi)
        return cls(
            theta_E=theta_E,
            e1=e1,
            e2=e2,
            center_x=as_batch(center_x, n, "center_x"),
            center_y=as_batch(center_y, n, "center_y"),
            gamma1=gamma * np.cos(2.0 * phi_gamma),
            gamma2=gamma * np.sin(2.0 * phi_gamma),
        )


@dataclass(frozen=True)
class LensGeometry(BatchFields):
    """Per-lens derived constants for fast deflections (see :func:`LensBatch.geometry`)."""

    q: np.ndarray
    f: np.ndarray
    b: np.ndarray
    cos: np.ndarray
    sin: np.ndarray
    center_x: np.ndarray
    center_y: np.ndarray
    gamma1: np.ndarray
    gamma2: np.ndarray
    _per_stamp = ("q", "f", "b", "cos", "sin", "center_x", "center_y", "gamma1", "gamma2")


def geometry(lens: LensBatch) -> LensGeometry:
    """Axis ratio, ``f = sqrt(1 - q^2)`` (floored), ``b = theta_E sqrt(q)``, rotation."""
    q, phi = e1e2_to_q_phi(lens.e1, lens.e2)
    f = np.maximum(np.sqrt((1.0 - q) * (1.0 + q)), _F_FLOOR)
    return LensGeometry(q, f, lens.theta_E * np.sqrt(q), np.cos(phi), np.sin(phi),
                        lens.center_x, lens.center_y, lens.gamma1, lens.gamma2)


def deflection_geom(
    g: LensGeometry, x: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Deflection (arcsec) from precomputed :class:`LensGeometry` (broadcasting)."""
    c, s = g.cos, g.sin
    dx = x - g.center_x
    dy = y - g.center_y
    xr = c * dx + s * dy
    yr = -s * dx + c * dy
    psi = np.maximum(np.sqrt(g.q * g.q * xr * xr + yr * yr), _R_FLOOR)
    bf = g.b / g.f
    ax_r = bf * np.arctan(g.f * xr / psi)
    z = g.f * yr / psi
    ay_r = (0.5 * bf) * np.log1p(2.0 * z / (1.0 - z))
    ax = c * ax_r - s * ay_r + g.gamma1 * dx + g.gamma2 * dy
    ay = s * ax_r + c * ay_r + g.gamma2 * dx - g.gamma1 * dy
    return ax, ay


def deflection(lens: LensBatch, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Total deflection (alpha_x, alpha_y) in arcsec at image-plane positions (arcsec)."""
    return deflection_geom(geometry(lens.column(np.ndim(x))), x, y)


def ray_shoot(lens: LensBatch, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Source-plane positions ``beta = theta - alpha(theta)`` (arcsec)."""
    ax, ay = deflection(lens, x, y)
    return x - ax, y - ay


def hessian(
    lens: LensBatch, x: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Analytic second derivatives of the lensing potential (f_xx, f_xy, f_yy), unitless."""
    g = geometry(lens.column(np.ndim(x)))
    q, b, c, s = g.q, g.b, g.cos, g.sin
    dx = x - g.center_x
    dy = y - g.center_y
    xr = c * dx + s * dy
    yr = -s * dx + c * dy
    psi = np.maximum(np.sqrt(q * q * xr * xr + yr * yr), _R_FLOOR)
    r2 = np.maximum(xr * xr + yr * yr, _R_FLOOR**2)
    k = b / (psi * r2)
    hxx_r = k * yr * yr
    hyy_r = k * xr * xr
    hxy_r = -k * xr * yr
    c2, s2, cs = c * c, s * s, c * s
    fxx = c2 * hxx_r - 2.0 * cs * hxy_r + s2 * hyy_r + g.gamma1
    fyy = s2 * hxx_r + 2.0 * cs * hxy_r + c2 * hyy_r - g.gamma1
    fxy = cs * (hxx_r - hyy_r) + (c2 - s2) * hxy_r + g.gamma2
    return fxx, fxy, fyy


@dataclass(frozen=True)
class LocalLensing:
    """Lensing quantities from the Jacobian ``A = I - Hessian`` (all unitless).

    convergence kappa, shear (gamma1, gamma2, gamma), det A, signed magnification
    1/det A, tangential eigenvalue ``1 - kappa - gamma`` and radial ``1 - kappa + gamma``.
    """

    kappa: np.ndarray
    gamma1: np.ndarray
    gamma2: np.ndarray
    gamma: np.ndarray
    det_a: np.ndarray
    magnification: np.ndarray
    eig_tangential: np.ndarray
    eig_radial: np.ndarray


def local_lensing(lens: LensBatch, x: np.ndarray, y: np.ndarray) -> LocalLensing:
    """Convergence, shear, magnification and Jacobian eigenvalues at (x, y) arcsec."""
    fxx, fxy, fyy = hessian(lens, x, y)
    kappa = 0.5 * (fxx + fyy)
    g1 = 0.5 * (fxx - fyy)
    g2 = fxy
    g = np.hypot(g1, g2)
    det = (1.0 - fxx) * (1.0 - fyy) - fxy * fxy
    with np.errstate(divide="ignore"):
        mu = 1.0 / det
    return LocalLensing(kappa, g1, g2, g, det, mu, 1.0 - kappa - g, 1.0 - kappa + g)


def image_position(
    lens: LensBatch,
    beta_x: np.ndarray,
    beta_y: np.ndarray,
    n_iter: int = 40,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Primary (outer, brightest-parity) image of source-plane points, by damped Newton.

    beta_x, beta_y: absolute source-plane positions (arcsec), shape ``(n,)``. The start is
    ``beta + theta_E * u`` with ``u`` the unit vector from the lens centre to beta (``+x``
    for a source on the centre). Returns ``(x, y, residual)``, residual in arcsec.
    """
    bx = np.asarray(beta_x, dtype=np.float64)
    by = np.asarray(beta_y, dtype=np.float64)
    if kernels.enabled() and bx.ndim == 1 and bx.shape == by.shape == lens.theta_E.shape:
        g = geometry(lens)
        table = np.ascontiguousarray(np.stack([g.q, g.f, g.b, g.cos, g.sin, g.center_x,
                                               g.center_y, g.gamma1, g.gamma2], axis=1))
        out = kernels.image_positions(table, lens.theta_E, np.ascontiguousarray(bx),
                                      np.ascontiguousarray(by), int(n_iter),
                                      np.empty((bx.size, 3)))
        return out[:, 0], out[:, 1], out[:, 2]
    rx = bx - lens.center_x
    ry = by - lens.center_y
    rr = np.hypot(rx, ry)
    on_centre = rr < 1e-12
    ux = np.where(on_centre, 1.0, rx / np.where(on_centre, 1.0, rr))
    uy = np.where(on_centre, 0.0, ry / np.where(on_centre, 1.0, rr))
    x = bx + lens.theta_E * ux
    y = by + lens.theta_E * uy
    max_step = 0.25 * np.maximum(lens.theta_E, 1e-3)
    for _ in range(n_iter):
        sx, sy = ray_shoot(lens, x, y)
        ex, ey = bx - sx, by - sy
        fxx, fxy, fyy = hessian(lens, x, y)
        a11, a12, a22 = 1.0 - fxx, -fxy, 1.0 - fyy
        det = a11 * a22 - a12 * a12
        det = np.where(np.abs(det) < 1e-12, np.copysign(1e-12, det), det)
        dx = (a22 * ex - a12 * ey) / det
        dy = (-a12 * ex + a11 * ey) / det
        step = np.hypot(dx, dy)
        scale = np.minimum(1.0, max_step / np.maximum(step, 1e-300))
        x = x + scale * dx
        y = y + scale * dy
    sx, sy = ray_shoot(lens, x, y)
    return x, y, np.hypot(bx - sx, by - sy)
