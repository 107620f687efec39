"""One real galaxy stamp -> one unit-sum template: pure NumPy, no files, no config objects.

Steps (all in the stamp's own pixels; the caller converts radii to arcsec):

1. subtract the catalog's noise mean (``NOISE_MEAN``, stamp units);
2. detection footprint: smooth with a Gaussian (``smooth_sigma_pix``), keep pixels above
   ``nsigma`` times the smoothed white-noise level ``sqrt(NOISE_VARIANCE) / (2 sqrt(pi) s)``;
   the footprint is the 8-connected region around the brightest smoothed pixel of the central
   half of the stamp (RealGalaxyCatalog stamps are centred on their galaxy);
3. light centroid: first moment of the positive pixels inside the footprint;
4. crop or zero-pad to ``size x size`` by an integer shift that puts the centroid within half a
   pixel of the template centre ``((size - 1) / 2, (size - 1) / 2)`` (no resampling, so pixel
   values and noise are untouched);
5. half-light radius (circular, about the centroid, positive-flux based): sort the footprint's
   positive pixels of the cropped template by distance of their centres from the centroid and
   take the radius where their cumulative flux reaches half their total, interpolating linearly
   between neighbouring pixel radii. Restricting to the footprint keeps sky-noise peaks far from
   the galaxy from inflating the radius of faint galaxies;
6. normalise the cropped, noise-subtracted stamp (negative noise pixels included) to unit sum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Why a galaxy is not turned into a template (the counts in the build summary use these keys).
REASONS = ("missing_file", "missing_hdu", "unreadable_hdu", "empty_stamp", "nan_pixels",
           "undetected", "nonpositive_flux")


class GalaxyRejected(Exception):
    """A stamp cannot become a template; ``reason`` is one of REASONS."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True)
class Template:
    """A unit-sum template and what was measured on it (lengths in template pixels)."""

    image: np.ndarray          #: (size, size) float32, sums to 1
    hlr_pix: float             #: circular half-light radius about the centroid (pixels)
    flux: float                #: sum of the cropped, noise-subtracted stamp (stamp units)
    centroid_yx: tuple[float, float]  #: light centroid in the original stamp (pixels)


def noise_sigma(stamp: np.ndarray, noise_variance: float) -> float:
    """Per-pixel noise sigma: sqrt(NOISE_VARIANCE), or a MAD estimate when it is not usable."""
    if np.isfinite(noise_variance) and noise_variance > 0:
        return float(np.sqrt(noise_variance))
    mad = float(np.median(np.abs(stamp - np.median(stamp))))
    return 1.4826 * mad if mad > 0 else float(np.finfo(np.float64).tiny)


def detection_footprint(img: np.ndarray, sigma: float, smooth_sigma_pix: float,
                        nsigma: float) -> np.ndarray:
    """Boolean footprint of the central galaxy (empty if nothing rises above the threshold)."""
    from scipy import ndimage

    smooth = ndimage.gaussian_filter(img, smooth_sigma_pix, mode="constant")
    threshold = nsigma * sigma / (2.0 * np.sqrt(np.pi) * smooth_sigma_pix)
    ny, nx = img.shape
    y0, y1 = ny // 4, max(ny - ny // 4, ny // 4 + 1)
    x0, x1 = nx // 4, max(nx - nx // 4, nx // 4 + 1)
    central = smooth[y0:y1, x0:x1]
    py, px = np.unravel_index(int(np.argmax(central)), central.shape)
    if not central[py, px] > threshold:
        return np.zeros(img.shape, dtype=bool)
    labels, _ = ndimage.label(smooth > threshold, structure=np.ones((3, 3), dtype=int))
    return labels == labels[y0 + py, x0 + px]


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


def prepare_template(stamp: np.ndarray, noise_mean: float, noise_variance: float, size: int,
                     smooth_sigma_pix: float = 1.5, nsigma: float = 2.0) -> Template:
    """The unit-sum ``size x size`` template of one stamp; raises GalaxyRejected."""
    if stamp is None or np.ndim(stamp) != 2 or 0 in np.shape(stamp):
        raise GalaxyRejected("empty_stamp", f"shape {np.shape(stamp)}")
    img = np.asarray(stamp, dtype=np.float64)
    if not np.isfinite(img).all():
        raise GalaxyRejected("nan_pixels", f"{int((~np.isfinite(img)).sum())} non-finite pixels")
    mean = float(noise_mean) if np.isfinite(noise_mean) else 0.0
    img = img - mean
    footprint = detection_footprint(img, noise_sigma(img, noise_variance), smooth_sigma_pix,
                                    nsigma)
    if not footprint.any():
        raise GalaxyRejected("undetected", f"no pixel above {nsigma} sigma after smoothing")
    cy, cx = light_centroid(img, footprint)
    cut, oy, ox = crop_or_pad(img, cy, cx, size)
    fp_cut, _, _ = crop_or_pad(footprint, cy, cx, size)
    flux = float(cut.sum())
    if not flux > 0:
        raise GalaxyRejected("nonpositive_flux", f"stamp sum {flux:.4g} after noise subtraction")
    hlr = half_light_radius(cut, cy - oy, cx - ox, fp_cut)
    if not np.isfinite(hlr):
        raise GalaxyRejected("nonpositive_flux", "no positive flux inside the cropped footprint")
    image = (cut / flux).astype(np.float32)
    return Template(image=image, hlr_pix=hlr, flux=flux, centroid_yx=(cy, cx))
