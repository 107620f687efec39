"""The default supersampling factor of a stamp, from its source's size and the lens's stretch.

A pixel's flux is the mean of ``K x K`` sub-pixel rays (see :mod:`dhs.physics.raytrace`). The
error of that sum is set by how many rays cross the smallest scale of the lensed image: the
source scale ``s`` times the smallest stretch of the Jacobian at the primary image (an image
compressed along one axis, ``stretch < 1``, needs finer rays; a stretched one does not need
coarser rays, so the stretch is capped at 1):

    K = clip(ceil(SAMPLES_PER_SCALE * pixscale / (s * min(1, radial, tangential))),
             MIN_FACTOR, MAX_FACTOR)

with ``s`` the Sersic's minor-axis scale ``R_sersic sqrt(q) / n`` (arcsec) or a template's
half-light-equivalent radius (its RMS radius / 1.5, arcsec). Measured against a converged render
(``benchmarks/bench_render.py`` and ``tests/physics/test_sampling.py``, 200 random rows of every
shipped grid, Sersic n = 1 sources of the grid's src_reff and clean COSMOS templates): the
lensed flux error stays within 1 % for at least 99 % of rows, where the earlier fixed factor 5
gave p99 errors of 2-12 % (up to 18 %) on the Sersic rows of the shipped grids.
"""

from __future__ import annotations

import numpy as np

from dhs.physics.source import SersicBatch, TemplateBatch

SAMPLES_PER_SCALE = 4.5
MIN_FACTOR = 7
MAX_FACTOR = 41
RMS_TO_HLR = 1.5  #: RMS radius / half-light radius of an exponential disk (sqrt(6)/1.678)


def source_scale(src: SersicBatch | TemplateBatch) -> np.ndarray:
    """Smallest source-plane scale (arcsec) per stamp that the rays must resolve."""
    if isinstance(src, SersicBatch):
        return src.R_sersic * np.sqrt(src.axis_ratio()) / np.maximum(src.n_sersic, 1.0)
    t = np.clip(src.templates.astype(np.float64), 0.0, None)
    h, w = t.shape[1:]
    yy, xx = np.indices((h, w), dtype=np.float64)
    total = np.maximum(t.sum(axis=(1, 2)), 1e-300)
    cy = (t * yy).sum(axis=(1, 2)) / total
    cx = (t * xx).sum(axis=(1, 2)) / total
    r2 = (t * ((yy[None] - cy[:, None, None]) ** 2 + (xx[None] - cx[:, None, None]) ** 2)
          ).sum(axis=(1, 2)) / total
    return np.sqrt(np.maximum(r2, 0.25)) * src.pixscale / RMS_TO_HLR


def sampling_factors(src: SersicBatch | TemplateBatch, radial_stretch: np.ndarray,
                     tangential_stretch: np.ndarray, pixscale: float) -> np.ndarray:
    """Supersampling factor (int64, per stamp) of the rule in the module docstring."""
    squeeze = np.minimum(1.0, np.minimum(np.abs(radial_stretch), np.abs(tangential_stretch)))
    squeeze = np.where(np.isfinite(squeeze) & (squeeze > 0), squeeze, 1.0)
    scale = np.maximum(source_scale(src) * squeeze, 1e-6)
    k = np.ceil(SAMPLES_PER_SCALE * pixscale / scale - 1e-9)
    return np.clip(k, MIN_FACTOR, MAX_FACTOR).astype(np.int64)
