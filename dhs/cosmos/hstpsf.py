"""Removing the HST PSF from a COSMOS stamp: Wiener deconvolution to a narrow Gaussian target.

A RealGalaxyCatalog stamp is the galaxy convolved with the HST effective PSF (optics, ACS
pixel response, drizzling), whose image the catalog names (``PSF_FILENAME``, ``PSF_HDU``). Lensing
magnifies the source plane, and with it this blur: left in, it changes the DR10 arcs by 5-7 % in
relative L2 (``benchmarks/bench_cosmos_templates.py``). GalSim's RealGalaxy convention
(Mandelbaum et al. 2012, MNRAS 420, 1518; Rowe et al. 2015, A&C 10, 121) is to deconvolve the
stamp by its PSF and reconvolve with a known target PSF, here a circular Gaussian of
``target_fwhm_pix``. A target narrower than the HST PSF cannot be reached by the plain ratio T/P:
the drizzled 0.03 arcsec stamps sample frequencies up to 16.7 cycles/arcsec, beyond the F814W
diffraction cut-off (D / lambda = 14.3 cycles/arcsec), where P is ~0 and T/P amplifies the
noise without bound (``galsim.Deconvolve`` at a 0.07 arcsec target gives a kernel summing to
0.68 whose noise is 27 times that of the 1-pixel denoising). The filter is therefore a
regularised (Wiener/Tikhonov) ratio

    K(k) = T(k) conj(P(k)) / (|P(k)|^2 + eps^2 (1 - T(k))^2),

on the discrete Fourier grid of the zero-padded stamp (P: the DFT of the unit-sum PSF image with
its central pixel at the origin; T: the Fourier transform of the Gaussian, exp(-2 pi^2 s^2 f^2)),
normalised to K(0) = 1 so that the flux is conserved. At low frequencies, where T ~ 1, the floor
vanishes and K -> T / P: the residual PSF K P is the target to second order in k, which is what
0.262 arcsec pixels and arcsecond seeing see. Where P vanishes (and T is small) K -> 0 and the
noise stays bounded. For the embedded catalog's PSF the residual PSF's second moment within 0.75
arcsec is the target's to 1 % (the HST PSF's, wings included, is that of a 0.26 arcsec FWHM
Gaussian), and its most negative value is -4 % of its peak. Defaults: target FWHM 0.07
arcsec, eps 0.1; docs/injection.md has the measurement that chose them (arc L2 against an
analytic truth, per-pixel noise, the positivity pedestal). In the bank the deconvolved stamp
is then tapered to 0 across the galaxy mask's edge (:func:`edge_taper`) and made non-negative
without adding a noise pedestal (:func:`positive_part`); dhs.cosmos.galaxy does both.
"""

from __future__ import annotations

import numpy as np

from dhs.cosmos.settings import TARGET_FWHM_ARCSEC  # noqa: F401  (the default, numpy-free)

#: Wiener floor (in units of P(0) = 1).
WIENER_EPS = 0.1
#: Scale (template pixels) of the flux-conserving positivity (:func:`positive_part`).
POSITIVITY_SIGMA_PIX = 3.0
#: Width (template pixels) of the taper of the deconvolved image at the mask edge (:func:`edge_taper`).
TAPER_SIGMA_PIX = 2.0
FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))


def _fast_len(n: int) -> int:
    import scipy.fft as sfft

    return int(sfft.next_fast_len(n, real=True))


def unit_psf(psf: np.ndarray) -> np.ndarray:
    """The PSF image as float64 with unit sum; ValueError if it is not a usable 2-d image."""
    p = np.asarray(psf, dtype=np.float64)
    if p.ndim != 2 or 0 in p.shape or not np.isfinite(p).all() or not p.sum() > 0:
        raise ValueError(f"PSF image of shape {p.shape} is not a finite 2-d image with "
                         f"positive sum")
    return p / p.sum()


def wiener_kernel_ft(psf: np.ndarray, shape: tuple[int, int], target_sigma_pix: float,
                     eps: float = WIENER_EPS) -> np.ndarray:
    """rfft2-layout K(k) of :func:`deconvolve` on a grid of ``shape`` (pixels)."""
    import scipy.fft as sfft

    p = unit_psf(psf)
    ny, nx = shape
    if p.shape[0] > ny or p.shape[1] > nx:
        raise ValueError(f"PSF {p.shape} larger than the Fourier grid {shape}")
    emb = np.zeros(shape)
    cy, cx = p.shape[0] // 2, p.shape[1] // 2
    emb[:p.shape[0], :p.shape[1]] = p
    emb = np.roll(emb, (-cy, -cx), axis=(0, 1))
    pk = sfft.rfft2(emb)
    fy = sfft.fftfreq(ny)[:, None]
    fx = sfft.rfftfreq(nx)[None, :]
    tk = np.exp(-2.0 * np.pi**2 * target_sigma_pix**2 * (fy * fy + fx * fx))
    kft = tk * np.conj(pk) / (np.abs(pk) ** 2 + (eps * (1.0 - tk)) ** 2)
    return kft / kft[0, 0].real


def padded_shape(shape: tuple[int, int], psf_shape: tuple[int, int]) -> tuple[int, int]:
    """Fourier grid for a stamp: the stamp plus a PSF width on each axis (no wrap onto it)."""
    return (_fast_len(shape[0] + 2 * psf_shape[0]), _fast_len(shape[1] + 2 * psf_shape[1]))


def deconvolve(img: np.ndarray, psf: np.ndarray, target_fwhm_pix: float,
               eps: float = WIENER_EPS) -> np.ndarray:
    """``img`` (a stamp, any units) with its PSF replaced by a Gaussian of ``target_fwhm_pix``
    FWHM (stamp pixels): the Wiener filter of the module doc on the zero-padded stamp.

    Same shape as ``img``; the total of the padded result equals ``img.sum()`` (K(0) = 1).
    """
    import scipy.fft as sfft

    a = np.asarray(img, dtype=np.float64)
    shape = padded_shape(a.shape, np.shape(psf))
    kft = wiener_kernel_ft(psf, shape, target_fwhm_pix / FWHM_PER_SIGMA, eps)
    out = sfft.irfft2(sfft.rfft2(a, s=shape) * kft, s=shape)
    return out[:a.shape[0], :a.shape[1]]


def noise_weights(weights: np.ndarray, psf: np.ndarray, target_fwhm_pix: float,
                  eps: float = WIENER_EPS) -> np.ndarray:
    """Weights ``w'`` with sum(w * deconvolve(n)) = sum(w' * n) for any noise image ``n``
    (the adjoint of the filter applied to ``w``), so the noise of a masked sum of the
    deconvolved stamp is :func:`dhs.cosmos.galaxy.weighted_noise` of ``w'``."""
    import scipy.fft as sfft

    w = np.asarray(weights, dtype=np.float64)
    shape = padded_shape(w.shape, np.shape(psf))
    kft = wiener_kernel_ft(psf, shape, target_fwhm_pix / FWHM_PER_SIGMA, eps)
    out = sfft.irfft2(sfft.rfft2(w, s=shape) * np.conj(kft), s=shape)
    return out[:w.shape[0], :w.shape[1]]


def kernel_image(psf: np.ndarray, target_fwhm_pix: float, eps: float = WIENER_EPS,
                 half: int = 32) -> np.ndarray:
    """The filter as a centred (2 half + 1)^2 image (unit sum): what a delta becomes."""
    n = 2 * half + 1
    delta = np.zeros((n, n))
    delta[half, half] = 1.0
    big = np.zeros((3 * n, 3 * n))
    big[n:2 * n, n:2 * n] = delta
    return deconvolve(big, psf, target_fwhm_pix, eps)[n:2 * n, n:2 * n]


def positive_part(values: np.ndarray, mask: np.ndarray, scale_pix: float = POSITIVITY_SIGMA_PIX
                  ) -> np.ndarray:
    """Non-negative image with the local flux of ``values`` inside ``mask`` (0 outside).

    The deconvolved noise is larger per pixel than the 1-pixel denoising leaves, so clipping
    negative pixels to 0 would add a positive pedestal (a few % of the flux over a wide mask).
    Instead each positive pixel is scaled by max(M, 0) / M+, with M and M+ the Gaussian
    (``scale_pix``) local means of the masked values and of their positive part: the image's
    local mean stays M wherever M > 0 (a flux-conserving redistribution on 0.05 arcsec scales,
    invisible at DR10 resolution), and only the smoothed noise is clipped.
    """
    from scipy import ndimage

    v = np.where(mask, values, 0.0)
    pos = np.clip(v, 0.0, None)
    m = ndimage.gaussian_filter(v, scale_pix, mode="constant")
    mp = ndimage.gaussian_filter(pos, scale_pix, mode="constant")
    ratio = np.where(mp > 0, np.clip(m, 0.0, None) / np.where(mp > 0, mp, 1.0), 0.0)
    return pos * ratio


def edge_taper(mask: np.ndarray, sigma_pix: float = TAPER_SIGMA_PIX) -> np.ndarray:
    """Weights in [0, 1]: 1 deep inside ``mask``, clip(2 G * mask - 1, 0, 1) with G a Gaussian
    of ``sigma_pix``, so 0 on the mask edge and outside.

    The mask is selected on the noisy stamp, so the noise just inside its edge is biased high
    and just outside low. The deconvolution sharpens: cut by a hard mask, its adjoint weights
    reach 2.1-2.5 inside the edge and -0.8 to -1.4 outside, and the two biases add (+12 % of
    the flux of Sersic templates of SNR ~15-20). Tapered over 2 pixels the weights stay in
    about [-0.4, 1.4] and the excess drops to ~4 % (the faint edge band keeps less of its
    light; a bright galaxy's template loses < 0.2 % of its flux).
    """
    from scipy import ndimage

    if sigma_pix <= 0:
        return mask.astype(np.float64)
    # "nearest": the taper falls at the mask's own edge, not where the stamp box cuts it (the
    # box-cut galaxies stay visible to the ``truncated`` rejection)
    g = ndimage.gaussian_filter(mask.astype(np.float64), sigma_pix, mode="nearest")
    return np.where(mask, np.clip(2.0 * g - 1.0, 0.0, 1.0), 0.0)
