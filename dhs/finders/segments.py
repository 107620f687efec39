"""Connected residuals of a batch of significance maps, and their arc geometry, in one pass.

:func:`label_batch` labels the connected (8-neighbour) pixels of a detection mask (n, S, S) with
``scipy.ndimage.label`` and a structure that connects pixels within a stamp only, so one call
segments a whole shard; it gives the same segments as ``photutils.segmentation.detect_sources``
run on each stamp (:func:`label_photutils`, tested, and about ten times slower; see
``benchmarks/bench_score.py``). :func:`segment_stats` measures every segment with ``np.bincount``
over the labels (no per-segment Python loop).

Geometry is measured about the lens centre (x0, y0) (pixels, as ``dhs.finders.lenslight.grid``)
with the positive significance as weight w:

- ``r_mean``: weighted mean distance from the lens centre (pixels);
- ``sig_r``: weighted rms of the distance about r_mean (radial width, pixels);
- ``sig_t``: r_mean times the weighted rms of the azimuth about its circular mean (tangential
  length, pixels); ``elongation = sig_t / max(sig_r, floor)``: > 1 for a tangentially stretched
  segment. A segment bent around the lens has a smaller radial spread than a straight one of the
  same length (whose ends drift outwards by the sagitta), so curvature about the lens raises it;
- ``curvature = b / max(sig_r, floor)``, b the minor-axis rms of the Cartesian second moments:
  about 1 for a straight or compact segment, > 1 for one bent around the lens centre;
- ``span``: azimuthal extent, sqrt(12) sig_t / r_mean (rad; exact for a uniform arc);
- ``snr``: sum of the per-pixel significance over the segment / sqrt(npix).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: 8-connectivity inside each stamp, no connection between stamps.
STRUCTURE = np.zeros((3, 3, 3), dtype=bool)
STRUCTURE[1] = True


def label_batch(values: np.ndarray, threshold: float, valid: np.ndarray) -> tuple[np.ndarray, int]:
    """Segments of the ``valid`` pixels with ``values > threshold``: labels (n, S, S) int64
    (0: background, 1..m: segments in raster order, stamp after stamp) and m."""
    from scipy import ndimage

    labels, m = ndimage.label(valid & (values > threshold), structure=STRUCTURE)
    return labels.astype(np.int64, copy=False), int(m)


def label_photutils(values: np.ndarray, threshold: float, valid: np.ndarray) -> tuple[np.ndarray, int]:
    """The same segments from ``photutils.segmentation.detect_sources`` run stamp by stamp
    (8-connected, one pixel minimum; invalid pixels masked): the reference of :func:`label_batch`."""
    from photutils.segmentation import detect_sources

    labels = np.zeros(values.shape, np.int64)
    m = 0
    for i in range(values.shape[0]):
        seg = detect_sources(values[i], threshold, 1, connectivity=8, mask=~valid[i])
        if seg is None:
            continue
        lab = np.asarray(seg.data, np.int64)
        if not lab.any():
            continue
        labels[i] = np.where(lab > 0, lab + m, 0)
        m += int(lab.max())
    return labels, m


@dataclass(frozen=True)
class Segments:
    """Per segment (m,): ``stamp`` index and the measures of the module docstring."""

    stamp: np.ndarray
    npix: np.ndarray
    snr: np.ndarray
    r_mean: np.ndarray
    sig_r: np.ndarray
    sig_t: np.ndarray
    elongation: np.ndarray
    curvature: np.ndarray
    span: np.ndarray
    phi_mean: np.ndarray

    def __len__(self) -> int:
        return int(self.stamp.shape[0])


def segment_stats(labels: np.ndarray, m: int, signif: np.ndarray, weight: np.ndarray,
                  x0: np.ndarray, y0: np.ndarray, width_floor: float) -> Segments:
    """Measures of the m segments of ``labels`` (n, S, S): ``signif`` per-pixel significance,
    ``weight`` (>= 0) the geometry weight, (x0, y0) (n,) the lens centre (pixels from pixel
    (S//2, S//2)), ``width_floor`` the smallest radial width (pixels) an elongation divides by."""
    n, size, _ = labels.shape
    flat = labels.ravel()
    sel = flat > 0
    lab = flat[sel] - 1
    c = size // 2
    yy, xx = np.indices((size, size), dtype=np.float64)
    x = np.broadcast_to(xx - c, labels.shape).reshape(-1)[sel] - np.repeat(x0, size * size)[sel]
    y = np.broadcast_to(yy - c, labels.shape).reshape(-1)[sel] - np.repeat(y0, size * size)[sel]
    stamp_of_pix = np.repeat(np.arange(n), size * size)[sel]
    s = signif.reshape(-1)[sel].astype(np.float64)
    w = np.clip(weight.reshape(-1)[sel].astype(np.float64), 1e-12, None)

    def tot(v: np.ndarray) -> np.ndarray:
        return np.bincount(lab, weights=v, minlength=m)

    npix = np.bincount(lab, minlength=m).astype(np.float64)
    stamp = np.zeros(m, np.int64)
    stamp[lab] = stamp_of_pix
    wsum = tot(w)
    r = np.hypot(x, y)
    phi = np.arctan2(y, x)
    r_mean = tot(w * r) / wsum
    sig_r = np.sqrt(np.maximum(tot(w * r * r) / wsum - r_mean ** 2, 0.0))
    cbar, sbar = tot(w * np.cos(phi)) / wsum, tot(w * np.sin(phi)) / wsum
    phi_mean = np.arctan2(sbar, cbar)
    dphi = np.angle(np.exp(1j * (phi - phi_mean[lab])))
    sig_t = r_mean * np.sqrt(np.maximum(tot(w * dphi * dphi) / wsum - (tot(w * dphi) / wsum) ** 2, 0.0))
    mx, my = tot(w * x) / wsum, tot(w * y) / wsum
    dx, dy = x - mx[lab], y - my[lab]
    qxx, qyy, qxy = tot(w * dx * dx) / wsum, tot(w * dy * dy) / wsum, tot(w * dx * dy) / wsum
    minor = np.sqrt(np.maximum(0.5 * (qxx + qyy - np.sqrt((qxx - qyy) ** 2 + 4 * qxy ** 2)), 0.0))
    floor = np.maximum(sig_r, width_floor)
    return Segments(stamp=stamp, npix=npix, snr=tot(s) / np.sqrt(np.maximum(npix, 1.0)), r_mean=r_mean,
                    sig_r=sig_r, sig_t=sig_t, elongation=sig_t / floor, curvature=minor / floor,
                    span=np.sqrt(12.0) * sig_t / np.maximum(r_mean, 1e-9), phi_mean=phi_mean)


def per_stamp_sum(stamp: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Sum of per-segment ``values`` per stamp (n,)."""
    return np.bincount(stamp, weights=values, minlength=n)


def per_stamp_max(stamp: np.ndarray, values: np.ndarray, n: int, empty: float = 0.0) -> np.ndarray:
    """Max of per-segment ``values`` per stamp (n,), ``empty`` where a stamp has none."""
    out = np.full(n, -np.inf)
    np.maximum.at(out, stamp, values)
    return np.where(np.isfinite(out), out, empty)


def segment_sums(labels: np.ndarray, m: int, values: np.ndarray) -> np.ndarray:
    """Sum of ``values`` (n, S, S) over each of the m segments of ``labels``."""
    flat = labels.ravel()
    sel = flat > 0
    return np.bincount(flat[sel] - 1, weights=values.reshape(-1)[sel].astype(np.float64), minlength=m)


def coverage(labels: np.ndarray, keep: np.ndarray, x0: np.ndarray, y0: np.ndarray,
             n_sectors: int) -> np.ndarray:
    """(n,) fraction of ``n_sectors`` equal azimuth sectors about the lens centre that hold a pixel
    of a kept segment (``keep``: (m,) bool)."""
    n, size, _ = labels.shape
    flat = labels.reshape(n, -1)
    on = flat > 0
    on[on] = keep[flat[on] - 1]
    c = size // 2
    yy, xx = np.indices((size, size), dtype=np.float64)
    phi = np.arctan2((yy - c).ravel()[None] - y0[:, None], (xx - c).ravel()[None] - x0[:, None])
    sector = np.minimum(((phi + np.pi) / (2 * np.pi) * n_sectors).astype(np.int64), n_sectors - 1)
    idx = (np.arange(n)[:, None] * n_sectors + sector)[on]
    hit = np.zeros(n * n_sectors, bool)
    hit[idx] = True
    return hit.reshape(n, n_sectors).mean(axis=1)
