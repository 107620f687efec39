"""Lensed source morphology on a pixel grid: uniform and adaptive supersampling.

The morphology is the lensed surface brightness of a unit-flux source integrated over
each native pixel (unitless flux fraction per pixel; multiply by a band flux in
nanomaggies). A pixel's integral is the mean of ``K x K`` sub-pixel samples at offsets
``(k - (K-1)/2) / K`` pixels (lenstronomy's sub-grid) times the pixel area.

Adaptive supersampling: rays are shot through the ``(N+1)^2`` pixel corners; a pixel is
supersampled when the box bounding its four corners' source-frame positions, widened
by half its size on every side, meets the source's support (the template's non-zero
pixels plus one pixel, see ``TemplateBatch.support_half_sizes``, or a box of half width
``max(12 R_sersic, 2 pixels)`` in the Sersic's elliptical frame), and always within 1.5
pixels of the lens centre, where the deflection field is singular. Template pixels outside
are exactly zero; Sersic pixels outside take a single sample at the pixel centre.

Two implementations give the same numbers (relative L2 ~1e-16 in float64): the fused
compiled kernels of :mod:`dhs.physics.kernels` (used when numba is importable) and the
vectorized NumPy code below (``DHS_NUMBA=0`` or ``kernels.USE_NUMBA = False``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dhs.physics import kernels
from dhs.physics.lens import LensBatch, LensGeometry, deflection_geom, geometry
from dhs.physics.source import SersicBatch, TemplateBatch, bilinear_lookup, sersic_core, sersic_sb

SourceBatch = SersicBatch | TemplateBatch
CENTRE_GUARD_PIX = 1.5
SERSIC_CORE_SUBPIX = 0.5
BOX_MARGIN = 0.5


def pixel_centres(stamp_size: int, pixscale: float) -> np.ndarray:
    """Pixel-centre coordinates (arcsec) along one axis: ``(j - (N-1)/2) * pixscale``."""
    return (np.arange(stamp_size, dtype=np.float64) - 0.5 * (stamp_size - 1)) * pixscale


def sub_offsets(supersample: int, pixscale: float) -> np.ndarray:
    """Sub-pixel sample offsets (arcsec) along one axis."""
    k = np.arange(supersample, dtype=np.float64)
    return (k - 0.5 * (supersample - 1)) / supersample * pixscale


@dataclass(frozen=True)
class _SourceFrame:
    """Per-stamp affine map from source-plane position to the source's own frame."""

    x0: np.ndarray
    y0: np.ndarray
    m11: np.ndarray
    m12: np.ndarray
    m21: np.ndarray
    m22: np.ndarray
    half_u: np.ndarray
    half_v: np.ndarray


def _frame(lens: LensBatch, src: SourceBatch, pixscale: float) -> _SourceFrame:
    x0 = lens.center_x + src.x
    y0 = lens.center_y + src.y
    if isinstance(src, TemplateBatch):
        c = np.cos(src.angle) / src.pixscale
        s = np.sin(src.angle) / src.pixscale
        hu, hv = src.support_half_sizes()
        return _SourceFrame(x0, y0, c, s, -s, c, hu, hv)
    norm = np.sqrt(np.maximum(np.abs(1.0 - src.e1**2 - src.e2**2), 1e-6))
    half = np.maximum(src.support_half_width(), 2.0 * pixscale)
    return _SourceFrame(x0, y0, (1.0 - src.e1) / norm, -src.e2 / norm, -src.e2 / norm,
                        (1.0 + src.e1) / norm, half, half)


class _Sampler:
    """Surface brightness (unit flux, per arcsec^2) at image-plane positions."""

    def __init__(self, lens: LensBatch, src: SourceBatch, pixscale: float,
                 core_radius: float) -> None:
        self.geom = geometry(lens)
        self.frame = _frame(lens, src, pixscale)
        self.src = src
        self.padded: np.ndarray | None = None
        if isinstance(src, SersicBatch):
            amp, bn, inv_n = src.profile_params()
            self.sersic: tuple[np.ndarray, ...] = (src.R_sersic, amp, bn, inv_n)
            if core_radius > 0:
                rc = np.full(len(src), core_radius)
                self.sersic += (rc, *sersic_core(src.R_sersic, src.n_sersic, amp, rc))

    def to_frame(
        self, g: LensGeometry, fr: _SourceFrame, x: np.ndarray, y: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        ax, ay = deflection_geom(g, x, y)
        dx = x - ax - fr.x0
        dy = y - ay - fr.y0
        u = fr.m11 * dx + fr.m12 * dy
        v = fr.m21 * dx + fr.m22 * dy
        singular = (x - g.center_x) ** 2 + (y - g.center_y) ** 2 < kernels.SINGULAR_R ** 2
        if np.any(singular):
            u = np.where(singular, kernels.OFF_SOURCE, u)
            v = np.where(singular, kernels.OFF_SOURCE, v)
        return u, v

    def value(self, idx: np.ndarray | None, u: np.ndarray, v: np.ndarray,
              sersic: tuple[np.ndarray, ...] | None) -> np.ndarray:
        if isinstance(self.src, TemplateBatch):
            if self.padded is None:
                self.padded = self.src.padded_sb
            return bilinear_lookup(self.padded, idx, u, v)
        assert sersic is not None
        core = sersic[4:] if len(sersic) > 4 else None
        return sersic_sb(np.hypot(u, v), *sersic[:4], core=core)


def _column(arrs: tuple[np.ndarray, ...], ndim: int) -> tuple[np.ndarray, ...]:
    return tuple(a.reshape((a.shape[0],) + (1,) * (ndim - 1)) for a in arrs)


def _col_frame(fr: _SourceFrame, ndim: int) -> _SourceFrame:
    return _SourceFrame(*_column(tuple(fr.__dict__.values()), ndim))


def _take_frame(fr: _SourceFrame, idx: np.ndarray) -> _SourceFrame:
    return _SourceFrame(*(a[idx] for a in fr.__dict__.values()))


def core_radius(pixscale: float, supersample: int, sersic_core: bool) -> float:
    """Radius (arcsec) of the flux-conserving Sersic core: half a sub-pixel, or 0."""
    return SERSIC_CORE_SUBPIX * pixscale / supersample if sersic_core else 0.0


def render_uniform(
    lens: LensBatch, src: SourceBatch, stamp_size: int, pixscale: float, supersample: int,
    sersic_core: bool = False, core_supersample: int | None = None,
) -> np.ndarray:
    """Morphology (n, N, N) with every pixel supersampled ``supersample``^2 times.

    sersic_core: replace the Sersic cusp by a flux-conserving cap of radius
    :func:`core_radius` (at ``core_supersample``, default ``supersample``).
    """
    rc = core_radius(pixscale, core_supersample or supersample, sersic_core)
    sm = _Sampler(lens, src, pixscale, rc)
    if kernels.enabled():
        return _compiled(sm, stamp_size, pixscale, supersample, uniform=True)[0]
    g = sm.geom.column(3)
    fr = _col_frame(sm.frame, 3)
    sersic = _column(sm.sersic, 3) if isinstance(src, SersicBatch) else None
    xc = pixel_centres(stamp_size, pixscale)
    offs = sub_offsets(supersample, pixscale)
    acc = np.zeros((len(lens), stamp_size, stamp_size))
    for oy in offs:
        for ox in offs:
            u, v = sm.to_frame(g, fr, (xc + ox)[None, None, :], (xc + oy)[None, :, None])
            acc += sm.value(None, u, v, sersic)
    return acc * (pixscale * pixscale / supersample**2)


def _corner_flags(sm: _Sampler, stamp_size: int, pixscale: float) -> np.ndarray:
    g = sm.geom.column(3)
    fr = _col_frame(sm.frame, 3)
    xk = (np.arange(stamp_size + 1, dtype=np.float64) - 0.5 * stamp_size) * pixscale
    u, v = sm.to_frame(g, fr, xk[None, None, :], xk[None, :, None])
    flags = np.ones((len(sm.frame.x0), stamp_size, stamp_size), dtype=bool)
    for w, half in ((u, fr.half_u), (v, fr.half_v)):
        c00, c01, c10, c11 = w[:, :-1, :-1], w[:, :-1, 1:], w[:, 1:, :-1], w[:, 1:, 1:]
        lo = np.minimum(np.minimum(c00, c01), np.minimum(c10, c11))
        hi = np.maximum(np.maximum(c00, c01), np.maximum(c10, c11))
        m = BOX_MARGIN * (hi - lo) + 1e-9
        flags &= (hi + m >= -half) & (lo - m <= half)
    xc = pixel_centres(stamp_size, pixscale)
    guard = CENTRE_GUARD_PIX * pixscale
    near_x = np.abs(xc[None, :] - g.center_x[:, 0]) <= guard
    near_y = np.abs(xc[None, :] - g.center_y[:, 0]) <= guard
    flags |= near_y[:, :, None] & near_x[:, None, :]
    return flags


def render_adaptive(
    lens: LensBatch, src: SourceBatch, stamp_size: int, pixscale: float, supersample: int,
    sersic_core: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Morphology (n, N, N) supersampled only where rays can reach the source's support.

    Returns the morphology and the number of supersampled pixels per stamp.
    """
    sm = _Sampler(lens, src, pixscale, core_radius(pixscale, supersample, sersic_core))
    if kernels.enabled():
        return _compiled(sm, stamp_size, pixscale, supersample, uniform=False)
    n = len(lens)
    flags = _corner_flags(sm, stamp_size, pixscale)
    is_sersic = isinstance(src, SersicBatch)
    if is_sersic:
        out = render_uniform(lens, src, stamp_size, pixscale, 1, sersic_core, supersample)
    else:
        out = np.zeros((n, stamp_size, stamp_size))
    b, i, j = np.nonzero(flags)
    if b.size:
        xc = pixel_centres(stamp_size, pixscale)
        g = sm.geom.take(b)
        fr = _take_frame(sm.frame, b)
        sersic = tuple(a[b] for a in sm.sersic) if is_sersic else None
        px, py = xc[j], xc[i]
        offs = sub_offsets(supersample, pixscale)
        acc = np.zeros(b.size)
        for oy in offs:
            for ox in offs:
                u, v = sm.to_frame(g, fr, px + ox, py + oy)
                acc += sm.value(b, u, v, sersic)
        out[b, i, j] = acc * (pixscale * pixscale / supersample**2)
    return out, flags.sum(axis=(1, 2))


def _compiled(sm: _Sampler, stamp_size: int, pixscale: float, supersample: int,
              uniform: bool) -> tuple[np.ndarray, np.ndarray]:
    """The same morphology as the NumPy path, from the fused kernels in
    :mod:`dhs.physics.kernels`."""
    g, fr = sm.geom, sm.frame
    n = len(g)
    lens_t = np.ascontiguousarray(np.stack([g.q, g.f, g.b, g.cos, g.sin, g.center_x,
                                            g.center_y, g.gamma1, g.gamma2], axis=1))
    frame_t = np.ascontiguousarray(np.stack(list(fr.__dict__.values()), axis=1),
                                   dtype=np.float64)
    xk = (np.arange(stamp_size + 1, dtype=np.float64) - 0.5 * stamp_size) * pixscale
    xc = pixel_centres(stamp_size, pixscale)
    offs = sub_offsets(supersample, pixscale)
    out = np.empty((n, stamp_size, stamp_size))
    nss = np.zeros(n, dtype=np.int64)
    guard = CENTRE_GUARD_PIX * pixscale
    if isinstance(sm.src, TemplateBatch):
        tpl = np.ascontiguousarray(sm.src.templates)
        kernels.render_templates(out, nss, lens_t, frame_t, tpl, sm.src.sb_norm, xk, xc,
                                 offs, float(pixscale), guard, BOX_MARGIN, uniform)
    else:
        cols = list(sm.sersic) if len(sm.sersic) > 4 else [*sm.sersic, *np.zeros((3, n))]
        ser_t = np.ascontiguousarray(np.stack(cols, axis=1), dtype=np.float64)
        kernels.render_sersics(out, nss, lens_t, frame_t, ser_t, xk, xc, offs,
                               float(pixscale), guard, BOX_MARGIN, uniform)
    return out, nss
