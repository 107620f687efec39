"""Per-stamp metrics of an injection: arc SNR, bad-pixel and WISE-mask fractions, lensed HLR.

Definitions (r band, which the earlier system's users compare against):
- good pixels: invvar > 0, finite, and no bit of ``maskbits.BAD_R`` set
  (NPRIMARY, BRIGHT, BAILOUT, MEDIUM, SATUR_R, ALLMASK_R);
- arc pixels: good pixels where the arc exceeds ``ARC_PIXEL_FRACTION`` of its brightest pixel
  in the stamp (the pixels that carry the arc's light, not the whole stamp's noise);
- ``arc_snr`` = sum(arc) / sqrt(Var(sum of the noise over the arc pixels)) (integrated SNR), the
  variance from the coadd's correlated sky noise, measured on the stamp's own sky pixels before
  injection (``dhs.physics.noise.sky_covariance``: covariance at lags up to 3 pixels), plus the
  arc's photon noise;
- ``arc_snr_white`` = sum(arc) / sqrt(sum(1 / invvar)) over the arc pixels: the same with
  independent pixels (what arc_snr was before correlated noise was accounted for);
- ``arc_noise_corr`` = sqrt(correlated / independent-pixel sky variance) of the arc pixels;
- ``arc_snr_max`` = max(arc * sqrt(invvar)) over good pixels: the per-pixel peak, the earlier
  system's ``arc_snr``;
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


def arc_pixels(arc: np.ndarray, good: np.ndarray, fraction: float = ARC_PIXEL_FRACTION) -> np.ndarray:
    """(n, S, S) bool: good pixels where the arc exceeds ``fraction`` of its good-pixel peak."""
    arc = arc.astype(np.float64)
    peak = np.where(good, arc, 0.0).max(axis=(1, 2))
    return good & (arc > fraction * peak[:, None, None]) & (peak[:, None, None] > 0)


def arc_snr(arc: np.ndarray, invvar: np.ndarray, good: np.ndarray, sky_image: np.ndarray | None = None,
            photon_var: np.ndarray | None = None,
            fraction: float = ARC_PIXEL_FRACTION) -> dict[str, np.ndarray]:
    """arc_snr, arc_snr_white, arc_snr_max and arc_noise_corr per stamp (module docstring) for
    arcs (n, S, S) in nanomaggies per pixel; ``invvar``: the sky's; ``sky_image``: the stamp
    before injection (None: independent pixels); ``photon_var``: the arc's photon variance."""
    from dhs.physics.noise import footprint_variance, sky_covariance

    arc = arc.astype(np.float64)
    sel = arc_pixels(arc, good, fraction)
    with np.errstate(divide="ignore", invalid="ignore"):
        var = np.where(sel, 1.0 / np.where(sel, invvar, 1.0), 0.0)
        white = var.sum(axis=(1, 2))
        if sky_image is not None:
            cov = sky_covariance(sky_image, invvar, good)
            corr = footprint_variance(np.sqrt(var), sel, cov)
        else:
            corr = white
        extra = 0.0 if photon_var is None else np.where(sel, photon_var, 0.0).sum(axis=(1, 2))
        signal = np.where(sel, arc, 0.0).sum(axis=(1, 2))
        snr = np.where(corr + extra > 0, signal / np.sqrt(corr + extra), 0.0)
        snr_white = np.where(white + extra > 0, signal / np.sqrt(white + extra), 0.0)
        ratio = np.where(white > 0, np.sqrt(np.maximum(corr, 0.0) / white), np.nan)
        per_pix = np.where(good, arc * np.sqrt(np.where(good, invvar, 0.0)), -np.inf).max(axis=(1, 2))
    per_pix = np.where(np.isfinite(per_pix), per_pix, 0.0)
    return {"arc_snr": snr, "arc_snr_white": snr_white, "arc_snr_max": per_pix, "arc_noise_corr": ratio}


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
