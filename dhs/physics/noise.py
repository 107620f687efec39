"""Noise of a coadd stamp: the arc's photon noise and the pixel covariance of the coadd's sky noise.

Photon noise (docs/injection.md, "Photon noise"). A DR10 coadd is sky-limited: its inverse
variance is that of the sky's photon noise, invvar = g / s, with s the sky (nanomaggies per
pixel) and g the effective gain of the coadd pixel (electrons per nanomaggy, every exposure of
the stack together). With the nominal DECam dark-sky brightness ``SKY_MAG`` (AB mag/arcsec^2)
the effective gain of a stamp is g = median(invvar) * s over its good pixels. An arc adding a
(nanomaggies) to a pixel adds a Poisson count of mean a g electrons: the stamp gets
Poisson(a g) / g - a, and its variance 1 / invvar + a / g.

Correlated sky noise. Coadds are Lanczos-resampled sums of exposures, so neighbouring pixels
share noise. ``sky_covariance`` measures the covariance of the normalised noise
z = image sqrt(invvar) at lags up to ``max_lag`` pixels from the stamp's own sky pixels (good
pixels outside dilated masks of 3 robust-sigma pixels and of 5-sigma 5x5 box means, about the
mean of the sky pixels in a 41-pixel window), and ``footprint_variance`` gives the variance
of a sum of pixels over a footprint: sum_pq sigma_p sigma_q C(p - q).
"""

from __future__ import annotations

import numpy as np

#: Nominal DECam dark-sky brightness, AB mag per arcsec^2 (legacysurvey/obsbot ``decam.py``,
#: ``DecamNominalCalibration.sky0``; i is obsbot's mean of r and z).
SKY_MAG = {"g": 22.04, "r": 20.91, "i": 19.69, "z": 18.46}
#: Sky pixels: within this many robust sigma of the median z, this many pixels from any beyond.
SKY_CLIP_SIGMA = 3.0
SKY_MASK_DILATE_PIX = 2
#: ... and 3 pixels or more from any pixel whose 5x5 box mean lies beyond 5 of its sigmas.
SMOOTH_BOX_PIX, SMOOTH_CLIP_SIGMA, SMOOTH_MASK_DILATE_PIX = 5, 5.0, 3
#: Side (pixels) of the window whose sky-pixel mean is the local background.
BACKGROUND_BOX_PIX = 41


def sky_nmgy_per_pixel(band: str, pixscale: float) -> float:
    """Nominal sky (nanomaggies per pixel of ``pixscale`` arcsec) in ``band``."""
    return float(10.0 ** (-0.4 * (SKY_MAG[band] - 22.5)) * pixscale ** 2)


def effective_gain(invvar: np.ndarray, good: np.ndarray, band: str, pixscale: float) -> np.ndarray:
    """(n,) electrons per nanomaggy of stamps (n, S, S): median good-pixel invvar times the sky."""
    iv = np.where(good & (invvar > 0), invvar, np.nan).reshape(invvar.shape[0], -1)
    with np.errstate(all="ignore"):
        med = np.nanmedian(iv, axis=1) if iv.shape[1] else np.full(iv.shape[0], np.nan)
    return med * sky_nmgy_per_pixel(band, pixscale)


def _expand(gain: np.ndarray, ndim: int) -> np.ndarray:
    """Gains (n,) or (n, B) with trailing axes to broadcast against (n, [B,] S, S) images."""
    g = np.asarray(gain, dtype=np.float64)
    return g.reshape(g.shape + (1,) * (ndim - g.ndim))


def photon_noise(arc: np.ndarray, gain: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """Photon noise (nanomaggies) of arcs (n, [B,] S, S) with gains (n,) or (n, B): Poisson(a g) / g - a
    per pixel (0 where a <= 0 or the gain is not finite), one generator per stamp seeded by
    ``seeds`` (uint64)."""
    a = np.clip(np.asarray(arc, dtype=np.float64), 0.0, None)
    g = _expand(gain, a.ndim)
    out = np.zeros_like(a)
    for i in range(a.shape[0]):
        gi = np.broadcast_to(g[i], a[i].shape)
        ok = np.isfinite(gi) & (gi > 0) & (a[i] > 0)
        if ok.any():
            rng = np.random.default_rng(int(np.uint64(seeds[i])))
            counts = rng.poisson(a[i][ok] * gi[ok])
            out[i][ok] = counts / gi[ok] - a[i][ok]
    return out


def with_photon_variance(invvar: np.ndarray, arc: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """Inverse variance after adding the arc's photon noise: 1 / (1 / invvar + a / g)."""
    a = np.clip(np.asarray(arc, dtype=np.float64), 0.0, None)
    g = _expand(gain, a.ndim)
    iv = np.asarray(invvar, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        extra = np.where(np.isfinite(g) & (g > 0), a / g, 0.0)
        out = np.where(iv > 0, 1.0 / (1.0 / np.where(iv > 0, iv, 1.0) + extra), 0.0)
    return out.astype(invvar.dtype)


def _lag_sums(a: np.ndarray, b: np.ndarray, max_lag: int) -> np.ndarray:
    """(n, 2L+1, 2L+1): sum_p a[p] b[p + lag] for |lag_y|, |lag_x| <= L (zero padding)."""
    n, h, w = a.shape
    shape = (h + max_lag, w + max_lag)
    fa = np.fft.rfft2(a, s=shape)
    fb = np.fft.rfft2(b, s=shape)
    c = np.fft.irfft2(np.conj(fa) * fb, s=shape)
    idx = np.r_[0:max_lag + 1, -max_lag:0]
    c = c[:, idx][:, :, idx]
    return np.roll(np.roll(c, max_lag, axis=1), max_lag, axis=2)


def sky_pixels(image: np.ndarray, invvar: np.ndarray, good: np.ndarray) -> np.ndarray:
    """(n, S, S) bool: good pixels within 3 robust sigma (1.4826 MAD) of the median of z, 2
    pixels or more from any pixel beyond, and 3 pixels or more from any pixel whose 5x5 box
    mean of z lies beyond 5 sigma of such a mean (faint extended light)."""
    from scipy.ndimage import binary_dilation, uniform_filter

    z = image * np.sqrt(np.where(good, invvar, 0.0))
    zg = np.where(good, z, np.nan).reshape(z.shape[0], -1)
    with np.errstate(all="ignore"):
        med = np.nanmedian(zg, axis=1)
        mad = 1.4826 * np.nanmedian(np.abs(zg - med[:, None]), axis=1)
    med = np.where(np.isfinite(med), med, 0.0)[:, None, None]
    mad = np.where(np.isfinite(mad) & (mad > 0), mad, 1.0)[:, None, None]
    loud = good & (np.abs(z - med) >= SKY_CLIP_SIGMA * mad)
    # extended light (galaxy wings) below the pixel threshold: the 5x5 mean beyond 5 of its sigmas
    k = SMOOTH_BOX_PIX
    zs = uniform_filter(np.where(good, z, 0.0), size=(1, k, k)) / np.maximum(
        uniform_filter(good.astype(np.float64), size=(1, k, k)), 1e-9)
    faint = good & (np.abs(zs - med) > SMOOTH_CLIP_SIGMA * mad / k)
    return good & ~binary_dilation(loud, structure=_disc(SKY_MASK_DILATE_PIX)) \
        & ~binary_dilation(faint, structure=_disc(SMOOTH_MASK_DILATE_PIX))


def _disc(radius: int) -> np.ndarray:
    st = np.zeros((1, 2 * radius + 1, 2 * radius + 1), bool)
    st[0] = np.hypot(*np.mgrid[-radius:radius + 1, -radius:radius + 1]) <= radius
    return st


def local_background(image: np.ndarray, sky: np.ndarray, box: int = BACKGROUND_BOX_PIX) -> np.ndarray:
    """(n, S, S) mean of the sky pixels in a ``box`` x ``box`` window about each pixel (0 where the
    window has none): the smooth sky level the noise is measured about."""
    from scipy.ndimage import uniform_filter

    m = sky.astype(np.float64)
    num = uniform_filter(np.where(sky, image, 0.0), size=(1, box, box), mode="constant")
    den = uniform_filter(m, size=(1, box, box), mode="constant")
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 1e-9, num / np.maximum(den, 1e-9), 0.0)


def sky_covariance(image: np.ndarray, invvar: np.ndarray, good: np.ndarray,
                   max_lag: int = 3) -> np.ndarray:
    """(n, 2L+1, 2L+1) covariance of z = image sqrt(invvar) between sky pixels at each lag (centre:
    the variance of z, 1 for noise that invvar describes exactly and independent pixels 0 elsewhere)."""
    image = image.astype(np.float64)
    sky = sky_pixels(image, invvar.astype(np.float64), good)
    z = np.where(sky, (image - local_background(image, sky)) * np.sqrt(np.where(sky, invvar, 0.0)), 0.0)
    m = sky.astype(np.float64)
    num = _lag_sums(z, z, max_lag)
    den = _lag_sums(m, m, max_lag)
    with np.errstate(divide="ignore", invalid="ignore"):
        cov = np.where(den > 0, num / np.maximum(den, 1), 0.0)
    return cov


def footprint_variance(sigma: np.ndarray, footprint: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """(n,) variance of the sum of pixels over ``footprint`` (n, S, S) with per-pixel sigma
    (n, S, S) and normalised covariance ``cov`` (n, 2L+1, 2L+1) of ``sky_covariance``."""
    w = np.where(footprint, sigma, 0.0)
    lag = (cov.shape[1] - 1) // 2
    return (_lag_sums(w, w, lag) * cov).sum(axis=(1, 2))
