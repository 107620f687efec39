"""The built-in arc finder: a classical, training-free lens finder on stamp pixels.

In the spirit of RingFinder (Gavazzi et al. 2014, ApJ 785, 144) and YattaLens (Sonnenfeld et
al. 2018, PASJ 70, S29): remove the lens galaxy's light, find significant connected residuals in
an annulus around it, and score them by significance and arc geometry. It sees the pixels,
inverse variances and maskbits of each stamp, the band names and the pixel scale, nothing else
(never the Einstein radius, the PSF or any injection column). Stamps are centred on the lens
galaxy (pixel (S//2, S//2)). Every step works on a whole chunk of stamps at once.

Algorithm (parameters of :class:`ArcFinderSettings` in ``code`` type; arcsec unless pixels):

1. Crop to the ``r_out`` annulus plus the smoothing margin. Good pixels: finite, invvar > 0 in
   some band, none of ``mask_bits`` set (bright-star, saturation and all-exposures-masked bits
   of the stamp's bands, bail-out).
2. Lens shape: adaptive second moments of the ``red_band`` image (elliptical Gaussian weight,
   started at ``moment_sigma``): centre, axis ratio, orientation.
3. Lens-light removal, ``lens_subtraction``:
   - ``colour`` (default; RingFinder): ``D = blue_band - alpha red_band``, alpha fitted by least
     squares on the pixels within ``core_radius`` of the centre, so light of the lens's colour
     cancels and a bluer arc stays; then a smooth elliptical profile (the median of the pixels in
     elliptical annuli of ``profile_bin`` pixels, interpolated in radius) is subtracted from D:
     it removes what a PSF mismatch between the bands or a colour gradient leaves, while an arc
     covering less than half an annulus survives the median. ``S = (D - model) / sigma_D``;
   - ``profile`` (YattaLens-like): the elliptical profile subtracted from every band, and the
     residuals combined with the weights of an arc spectrum (colours ``arc_gr``, ``arc_rz``, a
     matched filter in colour): ``S = sum_b c_b iv_b R_b / sqrt(sum_b c_b^2 iv_b)``.
   In both, ``model_error`` times the lens model is added to the noise (the model is never
   perfect where the lens is bright).
4. Detection: ``S`` smoothed by a Gaussian of ``smooth_sigma`` pixels, renormalised to unit noise;
   pixels above ``detect_nsigma`` between ``r_in`` and ``r_out`` of the lens centre form
   8-connected segments (``segmentation``: ``batch``, one ``scipy.ndimage.label`` call per chunk,
   or ``photutils``, ``detect_sources`` per stamp: the same segments); segments of fewer than
   ``min_pixels`` pixels drop.
5. Colour veto (bands g and r present): a segment redder than ``max_segment_gr`` by more than
   ``red_veto_nsigma`` sigma (g residual flux below 10^(-0.4 max_segment_gr) times the r one) is
   a red companion, not an arc, and drops.
6. Geometry (``dhs.finders.segments``): per segment its SNR, tangential elongation ``sig_t /
   sig_r`` about the lens centre (radial width floored at ``width_floor`` pixels; curvature about
   the lens raises it), Cartesian curvature and azimuthal span; per stamp the angular coverage of
   the kept segments over ``n_sectors`` sectors and the number of images (kept segments with
   SNR >= ``image_snr``).
7. Score: ``sum_j SNR_j w_j x (1 + coverage_weight x coverage)`` over kept segments, with
   ``w_j = round_weight + (1 - round_weight) clip((elongation_j - 1) / (full_elongation - 1), 0,
   1)``: a significant, tangentially stretched residual, or several images around the lens, scores
   high; a round blob earns ``round_weight`` of its SNR. Without a kept segment the score is
   ``min(peak - detect_nsigma, 1) - 1`` (<= 0; peak: the highest smoothed significance in the
   annulus), so every stamp is ranked.

Stamps without a good pixel in the annulus are flagged ``no_pixels`` (score NaN). The defaults
were chosen on the embedded survey with arcs dimmed to the faint regime (``benchmarks/
bench_score.py`` and ``tests/finders`` measure them); they are not tuned on real DR10 lenses.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Sequence

import numpy as np

from dhs.finders import base, lenslight, segments
from dhs.finders.settings import ArcFinderSettings  # noqa: F401  (the settings class lives there, numpy-free)
from dhs.survey import maskbits as mbits

#: Stamps processed together (small enough for the CPU caches).
CHUNK = 64
#: Offsets of band magnitudes from r for an arc of colours (g-r, r-z).
_BAND_FROM_R = {"g": (1.0, 0.0), "r": (0.0, 0.0), "i": (0.0, -0.5), "z": (0.0, -1.0)}


def bad_bits(names: Sequence[str], bands: Sequence[str]) -> int:
    """The maskbits value of ``names`` (SATUR and ALLMASK: those of every band in ``bands``)."""
    bits = 0
    for name in names:
        if name in ("SATUR", "ALLMASK"):
            table = mbits.SATUR if name == "SATUR" else mbits.ALLMASK
            bits |= sum(table[b] for b in bands if b in table)
        else:
            bits |= mbits.NAMES[name]
    return bits


def arc_weights(bands: Sequence[str], gr: float, rz: float) -> np.ndarray:
    """Relative flux per band of an arc of colours g-r and r-z (r = 1)."""
    out = []
    for b in bands:
        if b not in _BAND_FROM_R:
            raise base.FinderError(f"arcfinder: band {b!r} has no arc colour; bands g, r, i, z are known")
        a, c = _BAND_FROM_R[b]
        out.append(10 ** (-0.4 * (a * gr - c * rz)))
    return np.asarray(out)


def _with_model_error(iv: np.ndarray, model: np.ndarray, frac: float) -> np.ndarray:
    """Inverse variance with a systematic term (frac x model)^2 added to the variance."""
    if frac <= 0:
        return iv
    return iv / (1.0 + iv * (frac * model) ** 2)


def significance(images: np.ndarray, iv: np.ndarray, good: np.ndarray, use: np.ndarray,
                 shape: lenslight.CoreShape, bands: tuple[str, ...], pixscale: float, st: ArcFinderSettings
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-pixel significance (n, S, S) of the light left once the lens (of ``shape``) is removed;
    the g and r residuals (n, 2, S, S) for the colour veto (empty without both bands); alpha (n,)
    (colour mode, else NaN). ``iv`` is 0 on bad pixels; the profile model is fitted on the good
    pixels of ``use`` (the annulus and its smoothing margin) and only valid there."""
    n, nb, size, _ = images.shape
    red = bands.index(st.red_band)
    r_ell = lenslight.elliptical_radius(size, shape)
    veto = [bands.index(b) for b in ("g", "r")] if {"g", "r"} <= set(bands) else []
    if st.lens_subtraction == "profile":
        model = lenslight.elliptical_median_model(images, use, r_ell, st.profile_bin)
        resid = images - model
        c = arc_weights(bands, st.arc_gr, st.arc_rz)[None, :, None, None]
        w = _with_model_error(iv, model, st.model_error)
        den = np.sqrt((c * c * w).sum(axis=1))
        sig = (c * w * resid).sum(axis=1) / np.where(den > 0, den, 1.0)
        return sig, resid[:, veto], np.full(n, np.nan)
    blue = bands.index(st.blue_band)
    x, y = lenslight.grid(size)
    core = np.hypot(x, y) <= st.core_radius / pixscale
    diff, iv_d, alpha = lenslight.colour_difference(images[:, blue], images[:, red], iv[:, blue], iv[:, red],
                                                    core, good)
    model = lenslight.elliptical_median_model(np.concatenate([diff[:, None], images[:, veto]], axis=1), use,
                                              r_ell, st.profile_bin)
    lens = alpha[:, None, None] * np.abs(images[:, red]) + np.abs(model[:, 0])
    sig = (diff - model[:, 0]) * np.sqrt(_with_model_error(iv_d, lens, st.model_error))
    return sig, images[:, veto] - model[:, 1:], alpha


def smooth(sig: np.ndarray, sigma_pix: float) -> np.ndarray:
    """Gaussian-smoothed significance renormalised to unit noise for independent unit-noise pixels
    (sum of the squared unit-sum kernel is 1 / (4 pi sigma^2))."""
    from scipy.ndimage import gaussian_filter

    out = gaussian_filter(sig, sigma=(0.0, sigma_pix, sigma_pix), mode="constant", truncate=3.0)
    return out * np.sqrt(4.0 * np.pi) * sigma_pix


def score_batch(images: np.ndarray, invvar: np.ndarray, maskbits: np.ndarray, *, bands: Sequence[str],
                pixscale: float, settings: ArcFinderSettings | None = None) -> base.FinderResult:
    """Arc-finder scores of a batch (see the module docstring); features per stamp:
    n_segments, n_images, best_snr, best_elongation, best_curvature, best_span (rad), coverage,
    total_snr, lens_q, alpha (colour mode). Works through the batch :data:`CHUNK` stamps at a time
    (the arrays of a chunk stay in the CPU caches); each stamp's numbers depend on it alone."""
    st = settings or ArcFinderSettings()
    img, iv, mb, bands = base.check_batch(images, invvar, maskbits, bands, pixscale)
    for key in ("red_band",) + (("blue_band",) if st.lens_subtraction == "colour" else ()):
        if getattr(st, key) not in bands:
            raise base.FinderError(f"arcfinder {key}={getattr(st, key)!r} is not among the stamp bands {bands}; "
                                   f"set finder.{key} to one of them")
    img, iv, mb = crop(img, iv, mb, st.r_out / pixscale + 3.0 * st.smooth_sigma + 2.0)
    parts = [_score_chunk(img[i:i + CHUNK], iv[i:i + CHUNK], mb[i:i + CHUNK], bands, pixscale, st)
             for i in range(0, max(img.shape[0], 1), CHUNK)]
    scores = np.concatenate([p[0] for p in parts])
    failed = np.concatenate([p[1] for p in parts])
    feats = {k: np.concatenate([p[2][k] for p in parts]) for k in parts[0][2]}
    return base.finish(scores, img.shape[0], who="arcfinder", failed=failed, features=feats)


def _score_chunk(img: np.ndarray, iv: np.ndarray, mb: np.ndarray, bands: tuple[str, ...], pixscale: float,
                 st: ArcFinderSettings) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """(scores, no-pixel flags, features) of a chunk of cropped stamps."""
    n, nb, size, _ = img.shape
    finite = np.isfinite(img).all(axis=1) & np.isfinite(iv).all(axis=1)
    good = finite & (iv > 0).any(axis=1) & ((mb & bad_bits(st.mask_bits, bands)) == 0)
    img = np.where(finite[:, None], img, 0.0).astype(np.float64)
    iv = np.where(good[:, None] & (iv > 0), iv, 0.0).astype(np.float64)
    red = bands.index(st.red_band)
    shape = lenslight.core_shape(img[:, red], good & (iv[:, red] > 0), st.moment_sigma / pixscale)
    x, y = lenslight.grid(size)
    r = np.hypot(x[None] - shape.dx[:, None, None], y[None] - shape.dy[:, None, None]) * pixscale
    use = good & (r <= st.r_out + (3.0 * st.smooth_sigma + 1.0) * pixscale)
    sig, resid_gr, alpha = significance(img, iv, good, use, shape, bands, pixscale, st)
    sm = smooth(np.where(use, sig, 0.0), st.smooth_sigma)
    annulus = good & (r >= st.r_in) & (r <= st.r_out)
    label = segments.label_photutils if st.segmentation == "photutils" else segments.label_batch
    labels, m = label(sm, st.detect_nsigma, annulus)
    seg = segments.segment_stats(labels, m, sig, sm, shape.dx, shape.dy, st.width_floor)
    keep = seg.npix >= int(st.min_pixels)
    if resid_gr.shape[1] == 2:
        keep &= _not_red(labels, m, resid_gr, iv[:, bands.index("g")], iv[:, bands.index("r")], st)
    geom = np.clip((seg.elongation - 1.0) / (st.full_elongation - 1.0), 0.0, 1.0)
    weight = st.round_weight + (1.0 - st.round_weight) * geom
    seg_score = np.where(keep, np.clip(seg.snr, 0.0, None) * weight, 0.0)
    cov = segments.coverage(labels, keep, shape.dx, shape.dy, int(st.n_sectors))
    total = segments.per_stamp_sum(seg.stamp, seg_score, n)
    scores = total * (1.0 + st.coverage_weight * cov)
    peak = np.where(annulus, sm, -np.inf).max(axis=(1, 2))
    scores = np.where(total > 0, scores, np.minimum(peak - st.detect_nsigma, 1.0) - 1.0)
    best = _best_segment(seg.stamp, seg_score, n)
    has = best >= 0
    pick = np.maximum(best, 0)

    def best_of(v: np.ndarray) -> np.ndarray:
        return np.where(has, v[pick], np.nan) if m else np.full(n, np.nan)

    feats = {
        "n_segments": segments.per_stamp_sum(seg.stamp, keep.astype(float), n),
        "n_images": segments.per_stamp_sum(seg.stamp, (keep & (seg.snr >= st.image_snr)).astype(float), n),
        "best_snr": best_of(seg.snr), "best_elongation": best_of(seg.elongation),
        "best_curvature": best_of(seg.curvature), "best_span": best_of(seg.span),
        "coverage": cov, "total_snr": segments.per_stamp_sum(seg.stamp, np.where(keep, seg.snr, 0.0), n),
        "lens_q": shape.q, "alpha": alpha,
    }
    return scores, ~annulus.any(axis=(1, 2)), feats


def _not_red(labels: np.ndarray, m: int, resid_gr: np.ndarray, iv_g: np.ndarray, iv_r: np.ndarray,
             st: ArcFinderSettings) -> np.ndarray:
    """(m,) False for segments significantly redder than ``max_segment_gr``: g residual flux below
    rho = 10^(-0.4 max_segment_gr) times the r one by more than ``red_veto_nsigma`` sigma."""
    rho = 10 ** (-0.4 * st.max_segment_gr)
    with np.errstate(divide="ignore"):
        var = np.where(iv_g > 0, 1.0 / iv_g, 0.0) + rho ** 2 * np.where(iv_r > 0, 1.0 / iv_r, 0.0)
    excess = segments.segment_sums(labels, m, resid_gr[:, 0] - rho * resid_gr[:, 1])
    return excess >= -st.red_veto_nsigma * np.sqrt(segments.segment_sums(labels, m, var))


def crop(img: np.ndarray, iv: np.ndarray, mb: np.ndarray, half_pix: float
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The central (2h+1)^2 pixels (h = ceil(half_pix)) around pixel (S//2, S//2), when smaller
    than the stamp: nothing outside the annulus and its smoothing margin is needed."""
    size = img.shape[-1]
    h = int(np.ceil(half_pix))
    c = size // 2
    if 2 * h + 1 >= size or c - h < 0:
        return img, iv, mb
    sl = slice(c - h, c + h + 1)
    return img[..., sl, sl], iv[..., sl, sl], mb[..., sl, sl]


def _best_segment(stamp: np.ndarray, seg_score: np.ndarray, n: int) -> np.ndarray:
    """Index of each stamp's highest-scoring segment (-1: none)."""
    if stamp.size == 0:
        return np.full(n, -1)
    order = np.lexsort((-seg_score, stamp))
    first = np.full(n, -1)
    s = stamp[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    first[s[starts]] = order[starts]
    return first


class ArcFinder:
    """The arc finder as a :class:`dhs.finders.base.Finder`."""

    name = "arcfinder"

    def __init__(self, settings: ArcFinderSettings | None = None):
        self._settings = settings or ArcFinderSettings()

    @property
    def settings(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self._settings).items()}

    @property
    def checksum(self) -> str:
        return ""

    def __call__(self, images: np.ndarray, invvar: np.ndarray, maskbits: np.ndarray, *,
                 bands: Sequence[str], pixscale: float) -> base.FinderResult:
        return score_batch(images, invvar, maskbits, bands=bands, pixscale=pixscale, settings=self._settings)
