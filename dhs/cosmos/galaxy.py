"""One real galaxy stamp -> one clean unit-sum template: pure NumPy/photutils, no files, no config.

A RealGalaxyCatalog stamp is the galaxy plus HST sky noise (correlated by the drizzling), often
neighbours, and the HST PSF. Injected into a DR10 stamp at the requested magnitude, every noise
pixel of a raw stamp is magnified and scaled with the galaxy, so the template is cleaned first.
Steps (all in the stamp's own pixels; the caller converts radii to arcsec):

1. subtract the catalog's noise mean (``NOISE_MEAN``, stamp units); the noise is
   ``sigma = sqrt(NOISE_VARIANCE)`` per pixel with the catalog's correlation function
   (``NOISE_FILENAME``, e.g. ``acs_I_unrot_sci_20_cf.fits``; white noise when there is none);
2. segmentation (photutils ``detect_sources``): the stamp smoothed by a Gaussian of
   ``smooth_sigma_pix`` is thresholded at ``nsigma`` times the noise of the *smoothed* image,
   computed exactly from the correlation function (:func:`smoothed_noise_factor`; the drizzled
   ACS noise of COSMOS keeps 0.37 of its sigma after a 1.5-pixel smoothing where white noise
   would keep 0.19), regions of at least ``min_pixels`` connected pixels;
3. the central galaxy is the segment holding the brightest segmented pixel of the central half
   of the stamp (RealGalaxyCatalog stamps are centred on their galaxy). Its mask is that segment
   dilated by ``dilate_pix`` pixels (the faint wings just under the threshold); every other
   segment (a neighbour) and its dilation are excluded, and every pixel outside the mask (pure
   noise) is set to exactly 0;
4. noise suppression inside the mask: the stamp is smoothed by a Gaussian of
   ``denoise_sigma_pix`` (0.03 arcsec for COSMOS: below the HST PSF, far below DR10 seeing) and
   negative values are set to 0 (the clipping adds at most ~1% of the flux; the galaxy's flux in
   the mask is 0.99 of the catalog's stamp flux at the median on the 100 embedded galaxies),
   except inside *real negative structure*: a region of at least ``NEG_MIN_PIXELS`` pixels of
   the smoothed stamp below ``-NEG_NSIGMA`` times its noise that touches the mask (an
   over-subtracted sky or a masked defect, not noise). Such a template keeps those negative
   pixels and ``negative_structure`` is True, so the renderer's warning marks it;
5. rejections: no segment (``undetected``), mask flux not positive (``nonpositive_flux``), more
   than ``MAX_EDGE_FLUX`` of the flux on the stamp's outer pixel ring or outside the template
   box (``truncated``: the stamp box cuts the galaxy), template SNR below ``min_snr``
   (``low_snr``). The template SNR is the mask flux over the exact noise of that flux,
   ``sigma * sqrt(w . (rho * w))`` with ``w`` the mask smoothed like the values, ``rho`` the
   correlation function: the noise that stays in the template, which the stamps inherit scaled
   by the injected flux;
6. light centroid (first moment of the clean template), crop or zero-pad to ``size x size`` by
   an integer shift that puts it within half a pixel of the template centre (no resampling),
   half-light radius (circular, about the centroid, interpolated between pixel-centre radii),
   normalise to unit sum.

The HST PSF (FWHM ~0.1 arcsec in F814W, with wide wings) is removed by default
(``cosmos_bank.deconvolve_psf``): with ``psf`` given, step 4's smoothing is the Wiener
deconvolution of the stamp by its catalog PSF to a Gaussian of ``target_fwhm_pix``
(:mod:`dhs.cosmos.hstpsf`; 0.07 arcsec) tapered to 0 across the mask edge, the template SNR
uses the weights of that filter, and the clipping is the flux-conserving positivity
:func:`dhs.cosmos.hstpsf.positive_part` (the deconvolved noise is larger per pixel). Left
in, the HST PSF changes DR10 arcs (0.262 arcsec pixels, seeing 0.9-1.3 arcsec) by 10-21 % in
relative L2 for Sersic sources near the caustic (4-10 % on the real templates), because lensing
magnifies the source-plane blur; removed, bright templates match an analytic truth to <= 1 %
(tests/cosmos/test_cosmos_psf.py, docs/injection.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Why a galaxy is not turned into a template (the counts in the build summary use these keys).
REASONS = ("missing_file", "missing_hdu", "unreadable_hdu", "missing_psf", "empty_stamp", "nan_pixels",
           "undetected", "nonpositive_flux", "truncated", "low_snr")
MIN_PIXELS = 8
DILATE_PIX = 2
DENOISE_SIGMA_PIX = 1.0
NEG_NSIGMA = 4.0
NEG_MIN_PIXELS = 5
MAX_EDGE_FLUX = 0.02
MIN_SNR = 15.0


class GalaxyRejected(Exception):
    """A stamp cannot become a template; ``reason`` is one of REASONS."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True)
class Template:
    """A clean unit-sum template and what was measured on it (lengths in template pixels)."""

    image: np.ndarray          #: (size, size) float32, sums to 1, 0 outside the galaxy mask
    hlr_pix: float             #: circular half-light radius about the centroid (pixels)
    flux: float                #: sum of the clean template before normalising (stamp units)
    centroid_yx: tuple[float, float]  #: light centroid in the original stamp (pixels)
    snr: float = float("nan")  #: flux / noise of the flux that stays in the template
    negative_structure: bool = False  #: real negative structure kept (see the module doc)
    mask_pixels: int = 0       #: pixels of the galaxy mask


def noise_sigma(stamp: np.ndarray, noise_variance: float) -> float:
    """Per-pixel noise sigma: sqrt(NOISE_VARIANCE), or a MAD estimate when it is not usable."""
    if np.isfinite(noise_variance) and noise_variance > 0:
        return float(np.sqrt(noise_variance))
    mad = float(np.median(np.abs(stamp - np.median(stamp))))
    return 1.4826 * mad if mad > 0 else float(np.finfo(np.float64).tiny)


def normalised_correlation(cf: np.ndarray | None) -> np.ndarray | None:
    """A noise correlation-function image as an odd, centred kernel with 1 at its centre
    (the peak), or None (white noise) when ``cf`` is missing or unusable."""
    if cf is None:
        return None
    cf = np.asarray(cf, dtype=np.float64)
    if cf.ndim != 2 or 0 in cf.shape or not np.isfinite(cf).all():
        return None
    py, px = np.unravel_index(int(np.argmax(cf)), cf.shape)
    if not cf[py, px] > 0:
        return None
    h = min(py, px, cf.shape[0] - 1 - py, cf.shape[1] - 1 - px)
    return cf[py - h:py + h + 1, px - h:px + h + 1] / cf[py, px]


def _correlate(w: np.ndarray, rho: np.ndarray | None) -> np.ndarray:
    if rho is None:
        return w
    from scipy.signal import fftconvolve

    return fftconvolve(w, rho, mode="same")


def weighted_noise(weights: np.ndarray, rho: np.ndarray | None) -> float:
    """Standard deviation (in units of the per-pixel sigma) of ``sum(weights * noise)`` for
    unit-variance noise with correlation ``rho`` (None: white)."""
    w = np.asarray(weights, dtype=np.float64)
    return float(np.sqrt(max(float((w * _correlate(w, rho)).sum()), 0.0)))


def smoothed_noise_factor(sigma_pix: float, rho: np.ndarray | None) -> float:
    """Noise sigma of a Gaussian-smoothed (``sigma_pix``) image over that of the image."""
    from scipy import ndimage

    half = int(np.ceil(4 * sigma_pix)) + 1
    delta = np.zeros((2 * half + 1, 2 * half + 1))
    delta[half, half] = 1.0
    return weighted_noise(ndimage.gaussian_filter(delta, sigma_pix, mode="constant"), rho)


def correlated_noise(shape: tuple[int, int], rho: np.ndarray | None,
                     rng: np.random.Generator) -> np.ndarray:
    """Unit-variance Gaussian noise of ``shape`` with correlation ``rho`` (odd, centred, 1 at
    the centre; None: white), by FFT synthesis on a grid padded so the wrap stays outside."""
    if rho is None:
        return rng.standard_normal(shape)
    h = rho.shape[0] // 2
    big = (shape[0] + 2 * h, shape[1] + 2 * h)
    emb = np.zeros(big)
    emb[:h + 1, :h + 1] = rho[h:, h:]
    emb[:h + 1, -h:] = rho[h:, :h]
    emb[-h:, :h + 1] = rho[:h, h:]
    emb[-h:, -h:] = rho[:h, :h]
    power = np.clip(np.fft.rfft2(emb).real, 0.0, None)
    white = np.fft.rfft2(rng.standard_normal(big))
    return np.fft.irfft2(np.sqrt(power) * white, s=big)[:shape[0], :shape[1]]


def _disk(radius: int) -> np.ndarray:
    yy, xx = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    return xx * xx + yy * yy <= radius * radius


def _segment(image: np.ndarray, threshold: float, min_pixels: int):  # noqa: ANN202
    """photutils ``detect_sources`` (8-connected) without its no-detection warning; None if
    nothing rises above ``threshold``."""
    import warnings

    from photutils.segmentation import detect_sources

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return detect_sources(image, threshold, min_pixels)


def galaxy_mask(det: np.ndarray, threshold: float, min_pixels: int,
                dilate_pix: int) -> tuple[np.ndarray, np.ndarray]:
    """(mask, segment) of the central galaxy in the smoothed stamp ``det`` (photutils
    segmentation); both empty when nothing is detected. Neighbours are cut out of the mask."""
    from scipy import ndimage

    empty = np.zeros(det.shape, dtype=bool)
    segm = _segment(det, threshold, min_pixels)
    if segm is None:
        return empty, empty
    labels = np.asarray(segm.data)
    ny, nx = det.shape
    y0, y1 = ny // 4, max(ny - ny // 4, ny // 4 + 1)
    x0, x1 = nx // 4, max(nx - nx // 4, nx // 4 + 1)
    central = np.where(labels[y0:y1, x0:x1] > 0, det[y0:y1, x0:x1], -np.inf)
    py, px = np.unravel_index(int(np.argmax(central)), central.shape)
    label = labels[y0 + py, x0 + px]
    if label == 0:
        return empty, empty
    segment = labels == label
    others = (labels > 0) & ~segment
    mask = segment.copy()
    if dilate_pix > 0:
        grown = ndimage.binary_dilation(segment, _disk(dilate_pix))
        mask |= grown & ~ndimage.binary_dilation(others, _disk(dilate_pix))
    return mask, segment


def negative_structure(det: np.ndarray, det_sigma: float, mask: np.ndarray,
                       nsigma: float = NEG_NSIGMA, min_pixels: int = NEG_MIN_PIXELS
                       ) -> np.ndarray:
    """(H, W) bool: regions of the smoothed stamp ``det`` of at least ``min_pixels`` pixels
    below ``-nsigma * det_sigma`` that touch ``mask`` (real negative structure, not noise)."""
    segm = _segment(-det, nsigma * det_sigma, min_pixels)
    if segm is None:
        return np.zeros(det.shape, dtype=bool)
    labels = np.asarray(segm.data)
    touching = np.unique(labels[mask & (labels > 0)])
    return np.isin(labels, touching) & (labels > 0)


def light_centroid(img: np.ndarray, footprint: np.ndarray) -> tuple[float, float]:
    """(y, x) first moment of the positive pixels inside ``footprint`` (pixels)."""
    w = np.where(footprint, np.clip(img, 0.0, None), 0.0)
    total = w.sum()
    if not total > 0:
        raise GalaxyRejected("undetected", "no positive flux inside the footprint")
    yy, xx = np.indices(img.shape)
    return float((w * yy).sum() / total), float((w * xx).sum() / total)


def crop_or_pad(img: np.ndarray, cy: float, cx: float, size: int) -> tuple[np.ndarray, int, int]:
    """``size x size`` cut of ``img`` (zero outside it) whose centre is nearest (cy, cx).

    Returns the cut and the offsets (oy, ox): template pixel (j, i) is stamp pixel
    (j + oy, i + ox), so the centroid lands at (cy - oy, cx - ox).
    """
    half = (size - 1) / 2.0
    oy, ox = int(np.floor(cy - half + 0.5)), int(np.floor(cx - half + 0.5))
    out = np.zeros((size, size), dtype=img.dtype)
    sy0, sx0 = max(oy, 0), max(ox, 0)
    sy1, sx1 = min(oy + size, img.shape[0]), min(ox + size, img.shape[1])
    if sy1 > sy0 and sx1 > sx0:
        out[sy0 - oy:sy1 - oy, sx0 - ox:sx1 - ox] = img[sy0:sy1, sx0:sx1]
    return out, oy, ox


def half_light_radius(img: np.ndarray, cy: float, cx: float,
                      footprint: np.ndarray | None = None) -> float:
    """Circular half-light radius (pixels) of the positive flux (inside ``footprint``)."""
    yy, xx = np.indices(img.shape)
    keep = img > 0 if footprint is None else (img > 0) & footprint
    r = np.hypot(yy[keep] - cy, xx[keep] - cx)
    f = img[keep].astype(np.float64)
    if f.size == 0 or not f.sum() > 0:
        return float("nan")
    order = np.argsort(r, kind="stable")
    r, cum = r[order], np.cumsum(f[order])
    half = 0.5 * cum[-1]
    k = int(np.searchsorted(cum, half))
    r_prev, c_prev = (r[k - 1], cum[k - 1]) if k > 0 else (0.0, 0.0)
    if cum[k] <= c_prev:
        return float(r[k])
    return float(r_prev + (r[k] - r_prev) * (half - c_prev) / (cum[k] - c_prev))


def _edge_fraction(values: np.ndarray) -> float:
    ring = np.ones(values.shape, dtype=bool)
    ring[1:-1, 1:-1] = False
    total = np.abs(values).sum()
    return float(np.abs(values[ring]).sum() / total) if total > 0 else 0.0


def clean_stamp(img: np.ndarray, sigma: float, rho: np.ndarray | None, *,
                smooth_sigma_pix: float = 1.5, nsigma: float = 1.5,
                min_pixels: int = MIN_PIXELS, dilate_pix: int = DILATE_PIX,
                denoise_sigma_pix: float = DENOISE_SIGMA_PIX,
                psf: np.ndarray | None = None, target_fwhm_pix: float = 0.0) -> dict:
    """Steps 2-4 on a mean-subtracted stamp: ``values`` (clean image, stamp units), ``mask``,
    ``negative`` (real negative structure), ``weights`` (noise weights of the flux).

    With ``psf`` (the stamp's HST PSF image), step 4's smoothing is the deconvolution to a
    Gaussian of ``target_fwhm_pix`` (:func:`dhs.cosmos.hstpsf.deconvolve`), which suppresses
    the noise beyond the target's resolution, tapered to 0 at the mask edge
    (:func:`dhs.cosmos.hstpsf.edge_taper`), with the flux-conserving positivity."""
    from scipy import ndimage

    det = ndimage.gaussian_filter(img, smooth_sigma_pix, mode="constant")
    det_sigma = sigma * smoothed_noise_factor(smooth_sigma_pix, rho)
    mask, _ = galaxy_mask(det, nsigma * det_sigma, min_pixels, dilate_pix)
    if not mask.any():
        raise GalaxyRejected("undetected", f"no {min_pixels} connected pixels above {nsigma} "
                                           f"sigma after smoothing")
    neg = negative_structure(det, det_sigma, mask)
    if psf is not None:
        from dhs.cosmos import hstpsf

        taper = hstpsf.edge_taper(mask)
        smooth = taper * hstpsf.deconvolve(img, psf, target_fwhm_pix)
        weights = hstpsf.noise_weights(taper, psf, target_fwhm_pix)
    elif denoise_sigma_pix > 0:
        smooth = ndimage.gaussian_filter(img, denoise_sigma_pix, mode="constant")
        weights = ndimage.gaussian_filter(mask.astype(np.float64), denoise_sigma_pix,
                                          mode="constant")
    else:
        smooth, weights = img.copy(), mask.astype(np.float64)
    if psf is not None:
        clipped = hstpsf.positive_part(smooth, mask & ~neg)
    else:
        clipped = np.clip(smooth, 0.0, None)
    values = np.where(mask, np.where(neg, smooth, clipped), 0.0)
    return {"values": values, "mask": mask, "negative": neg & mask, "weights": weights}


def prepare_template(stamp: np.ndarray, noise_mean: float, noise_variance: float, size: int,
                     smooth_sigma_pix: float = 1.5, nsigma: float = 1.5, *,
                     noise_correlation: np.ndarray | None = None,
                     min_snr: float = MIN_SNR, psf: np.ndarray | None = None,
                     target_fwhm_pix: float = 0.0) -> Template:
    """The clean unit-sum ``size x size`` template of one stamp; raises GalaxyRejected.

    ``noise_correlation``: the catalog's noise correlation-function image (None: white noise).
    ``psf``: the stamp's HST PSF image, replaced by a Gaussian of ``target_fwhm_pix`` FWHM
    (stamp pixels); None leaves the HST PSF in (see the module doc).
    """
    if stamp is None or np.ndim(stamp) != 2 or 0 in np.shape(stamp):
        raise GalaxyRejected("empty_stamp", f"shape {np.shape(stamp)}")
    img = np.asarray(stamp, dtype=np.float64)
    if not np.isfinite(img).all():
        raise GalaxyRejected("nan_pixels", f"{int((~np.isfinite(img)).sum())} non-finite pixels")
    mean = float(noise_mean) if np.isfinite(noise_mean) else 0.0
    img = img - mean
    sigma = noise_sigma(img, noise_variance)
    rho = normalised_correlation(noise_correlation)
    c = clean_stamp(img, sigma, rho, smooth_sigma_pix=smooth_sigma_pix, nsigma=nsigma, psf=psf,
                    target_fwhm_pix=target_fwhm_pix)
    values = c["values"]
    flux_all = float(values.sum())
    if not flux_all > 0:
        raise GalaxyRejected("nonpositive_flux", f"clean stamp sums to {flux_all:.4g}")
    edge = _edge_fraction(values)
    if edge > MAX_EDGE_FLUX:
        raise GalaxyRejected("truncated", f"{edge:.1%} of the flux on the stamp's edge pixels")
    cy, cx = light_centroid(values, c["mask"])
    cut, oy, ox = crop_or_pad(values, cy, cx, size)
    flux = float(cut.sum())
    if not flux >= (1.0 - MAX_EDGE_FLUX) * flux_all:
        raise GalaxyRejected("truncated", f"{1 - flux / flux_all:.1%} of the flux outside the "
                                          f"{size}x{size} template")
    snr = flux_all / (sigma * weighted_noise(c["weights"], rho))
    if not snr >= min_snr:
        raise GalaxyRejected("low_snr", f"template SNR {snr:.1f} < {min_snr:g}")
    hlr = half_light_radius(cut, cy - oy, cx - ox)
    if not np.isfinite(hlr):
        raise GalaxyRejected("nonpositive_flux", "no positive flux inside the cropped template")
    image = (cut / flux).astype(np.float32)
    return Template(image=image, hlr_pix=hlr, flux=flux, centroid_yx=(cy, cx), snr=float(snr),
                    negative_structure=bool(c["negative"].any()),
                    mask_pixels=int(c["mask"].sum()))
