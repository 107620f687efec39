"""Per-task draws of source magnitude, source size and lens shape from physical priors.

Every value is a pure function of the task's draw key, a named salt and ``seed_base``
(``dhs.draws``). Distributions (README, "Injection priors", cites every default):

* unlensed source r magnitude: p(m) ~ 10**(s m) on [lo, hi] (galaxy number counts of slope s),
  drawn by inverting the CDF: m = log10(10**(s lo) + u (10**(s hi) - 10**(s lo))) / s;
* source half-light radius: log-normal (median, sigma in dex), truncated to [lo, hi] by
  inverting the truncated normal CDF;
* lens axis ratio: truncated normal (mean, sigma) on [lo, hi]; position angle uniform in
  [0, pi) East of North;
* lens shape from the light (``lens_shape=light``): q = q_light * (1 + f N(0, 1)) and
  PA = PA_light + N(0, sigma_PA), with q clipped into the prior's range; a galaxy whose
  catalog shape is round (e = 0: Tractor PSF and REX) or missing gets the prior instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr, ndtri

from dhs import draws
from dhs.physics.angles import tractor_shape_to_q_pa


@dataclass(frozen=True)
class Priors:
    """The grid's prior settings (cfg.grid.priors), as plain numbers."""

    src_mag_r_range: tuple[float, float] = (22.0, 25.5)
    src_mag_count_slope: float = 0.0
    src_reff_median: float = 0.25
    src_reff_sigma_dex: float = 0.2
    src_reff_range: tuple[float, float] = (0.05, 1.0)
    lens_q_mean: float = 0.78
    lens_q_sigma: float = 0.12
    lens_q_range: tuple[float, float] = (0.5, 0.99)
    lens_q_light_scatter: float = 0.11
    lens_pa_light_scatter_deg: float = 10.0

    @classmethod
    def from_config(cls, node: object) -> Priors:
        get = (lambda k: node[k]) if hasattr(node, "__getitem__") else (lambda k: getattr(node, k))
        kw = {}
        for f in cls.__dataclass_fields__:
            v = get(f)
            kw[f] = tuple(float(x) for x in v) if f.endswith("_range") else float(v)
        return cls(**kw)


def _truncated_normal(u: np.ndarray, mean: float, sigma: float, lo: float, hi: float) -> np.ndarray:
    a, b = ndtr((lo - mean) / sigma), ndtr((hi - mean) / sigma)
    p = np.clip(a + u * (b - a), 1e-15, 1 - 1e-15)
    return np.clip(mean + sigma * ndtri(p), lo, hi)


def source_mag_r(key: np.ndarray, p: Priors, seed: int) -> np.ndarray:
    """Unlensed source r magnitude (AB) per task."""
    lo, hi = p.src_mag_r_range
    s = p.src_mag_count_slope
    u = draws.uniform(key, "src_mag", seed)
    if s == 0:
        return lo + u * (hi - lo)
    a, b = 10.0 ** (s * lo), 10.0 ** (s * hi)
    return np.log10(a + u * (b - a)) / s


def source_reff(key: np.ndarray, p: Priors, seed: int) -> np.ndarray:
    """Source half-light radius (arcsec) per task."""
    lo, hi = p.src_reff_range
    logr = _truncated_normal(draws.uniform(key, "src_reff", seed), np.log10(p.src_reff_median),
                             p.src_reff_sigma_dex, np.log10(lo), np.log10(hi))
    return np.clip(10.0 ** logr, lo, hi)


def lens_shape(key: np.ndarray, p: Priors, seed: int, mode: str, shape_e1: np.ndarray | None = None,
               shape_e2: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(lens_e = (1 - q)/(1 + q), lens position angle East of North in [0, pi)) per task.

    ``mode``: 'uniform' (e uniform in [0.05, 0.5], the earlier system), 'prior' or 'light'
    (parent shape_e1/shape_e2 per task, see the module docstring)."""
    n = len(key)
    pa = np.pi * draws.uniform(key, "lens_phi", seed)
    if mode == "uniform":
        return 0.05 + 0.45 * draws.uniform(key, "lens_e", seed), pa
    lo, hi = p.lens_q_range
    q = _truncated_normal(draws.uniform(key, "lens_q", seed), p.lens_q_mean, p.lens_q_sigma, lo, hi)
    if mode == "light":
        e1 = np.full(n, np.nan) if shape_e1 is None else np.asarray(shape_e1, np.float64)
        e2 = np.full(n, np.nan) if shape_e2 is None else np.asarray(shape_e2, np.float64)
        use = np.isfinite(e1) & np.isfinite(e2) & (np.hypot(np.nan_to_num(e1), np.nan_to_num(e2)) > 0)
        q_light, pa_light = tractor_shape_to_q_pa(np.where(use, e1, 0.0), np.where(use, e2, 0.0))
        q_mass = np.clip(q_light * (1.0 + p.lens_q_light_scatter * draws.normal(key, "lens_q_light", seed)),
                         lo, hi)
        pa_mass = pa_light + np.deg2rad(p.lens_pa_light_scatter_deg) * draws.normal(key, "lens_pa_light", seed)
        q = np.where(use, q_mass, q)
        pa = np.where(use, np.mod(pa_mass, np.pi), pa)
    return (1.0 - q) / (1.0 + q), pa
