"""Per-stamp metrics of an injection: arc SNR, bad-pixel and WISE-mask fractions, lensed HLR.

Definitions (r band, which the earlier system's users compare against):
- good pixels: invvar > 0, finite, and no bit of ``maskbits.BAD_R`` set
  (NPRIMARY, BRIGHT, BAILOUT, MEDIUM, SATUR_R, ALLMASK_R);
- arc pixels: good pixels where the arc exceeds ``ARC_PIXEL_FRACTION`` of its brightest pixel
  in the stamp (the pixels that carry the arc's light, not the whole stamp's noise);
- ``arc_snr`` = sum(arc) / sqrt(sum(1 / invvar)) over the arc pixels (integrated SNR);
- ``arc_snr_max`` = max(arc * sqrt(invvar)) over good pixels;
- ``bad_pixel_frac``: fraction of stamp pixels that are not good;
- ``wise_brightmask_frac``: fraction of stamp pixels with WISEM1 or WISEM2 set;
- ``lensed_hlr_arcsec``: radius about the stamp centre pixel (N//2, N//2) holding half the arc
  flux (before noise, after the PSF).
"""

from __future__ import annotations

import numpy as np

from dhs.survey import maskbits as mb

ARC_PIXEL_FRACTION = 0.1


def good_pixels(invvar: np.ndarray, maskbits: np.ndarray, bad_bits: int = mb.BAD_R) -> np.ndarray:
    """(n, S, S) bool: usable pixels for a measurement."""
    return np.isfinite(invvar) & (invvar > 0) & ((maskbits.astype(np.int64) & bad_bits) == 0)


def arc_snr(arc: np.ndarray, invvar: np.ndarray, good: np.ndarray,
            fraction: float = ARC_PIXEL_FRACTION) -> tuple[np.ndarray, np.ndarray]:
    """(arc_snr, arc_snr_max) per stamp for arcs (n, S, S) in nanomaggies per pixel."""
    arc = arc.astype(np.float64)
    peak = np.where(good, arc, 0.0).max(axis=(1, 2))
    sel = good & (arc > fraction * peak[:, None, None]) & (peak[:, None, None] > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        var = np.where(sel, 1.0 / np.where(sel, invvar, 1.0), 0.0)
        signal = np.where(sel, arc, 0.0).sum(axis=(1, 2))
        noise = np.sqrt(var.sum(axis=(1, 2)))
        snr = np.where(noise > 0, signal / noise, 0.0)
        per_pix = np.where(good, arc * np.sqrt(np.where(good, invvar, 0.0)), -np.inf).max(axis=(1, 2))
    per_pix = np.where(np.isfinite(per_pix), per_pix, 0.0)
    return snr, per_pix


def fractions(invvar_r: np.ndarray, maskbits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(bad_pixel_frac, wise_brightmask_frac) per stamp."""
    good = good_pixels(invvar_r, maskbits)
    wise = (maskbits.astype(np.int64) & mb.WISE) != 0
    return 1.0 - good.mean(axis=(1, 2)), wise.mean(axis=(1, 2))


def half_light_radius(arc: np.ndarray, pixscale: float) -> np.ndarray:
    """Radius (arcsec) about pixel (N//2, N//2) enclosing half the (positive) arc flux; NaN if none."""
    n, size, _ = arc.shape
    yy, xx = np.indices((size, size))
    r = np.hypot(yy - size // 2, xx - size // 2).ravel() * pixscale
    order = np.argsort(r, kind="stable")
    flux = np.clip(arc.reshape(n, -1)[:, order].astype(np.float64), 0.0, None)
    cum = np.cumsum(flux, axis=1)
    total = cum[:, -1]
    idx = np.argmax(cum >= 0.5 * total[:, None], axis=1)
    return np.where(total > 0, r[order][idx], np.nan)


def core_mask(size: int, radius_pix: float) -> np.ndarray:
    """(S, S) bool: pixels whose centre lies within ``radius_pix`` of pixel (N//2, N//2)."""
    yy, xx = np.indices((size, size))
    return np.hypot(yy - size // 2, xx - size // 2) < radius_pix
