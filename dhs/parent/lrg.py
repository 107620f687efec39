"""The DESI LRG selection (Zhou et al. 2023, AJ 165, 58) on DR10 catalog columns: pure NumPy.

Magnitudes are Milky Way extinction-corrected AB magnitudes from the catalog fluxes (nanomaggies)
and ``MW_TRANSMISSION_X = 10**(-0.4 R_X EBV)``, clipped as desitarget does so that a flux <= 0
gives a finite (very faint) magnitude::

    m_X     = 22.5 - 2.5 log10(max(FLUX_X / MW_TRANSMISSION_X, 1e-7))        (X = g, r, z, W1)
    z_fib   = 22.5 - 2.5 log10(max(FIBERFLUX_Z / MW_TRANSMISSION_Z, 1e-7))

Quality cuts (desitarget ``notinLRG_mask``; the fluxes are positive before and after the MW
correction, so the correction does not matter here)::

    FLUX_IVAR_X > 0 and FLUX_X > 0                  for X = r, z, W1
    FIBERFLUX_Z > 0
    NOBS_G > 0 and NOBS_R > 0 and NOBS_Z > 0
    GAIA_PHOT_G_MEAN_MAG == 0 or GAIA_PHOT_G_MEAN_MAG > 18      (0: no Gaia match)
    FIBERTOTFLUX_Z < 10**(-0.4 (17.5 - 22.5)) = 100 nmgy          (observed, not MW-corrected)
    MASKBITS bits 1 (BRIGHT), 12 (GALAXY), 13 (CLUSTER) clear
    BRICK_PRIMARY true                              (tractor catalogs; sweeps hold primaries only)

Colour cuts, south (DECam; desitarget ``isLRG_colors``, main survey "version 260")::

    z_fib < 21.6                                                       faint limit
    z - W1 > 0.8 (r - z) - 0.6                                         non-stellar
    (g - W1 > 2.9) or (r - W1 > 1.8)                                   low-z
    [(r - W1 > 1.8 (W1 - 17.14)) and (r - W1 > W1 - 16.33)] or (r - W1 > 3.3)
                                                                       sliding cut, high-z extension

North (BASS/MzLS) uses 21.61, 2.97, 1.83 (W1 - 17.13), W1 - 16.31 and 3.4. Every inequality is
strict, as in desitarget. The cuts were tuned on DR9 photometry; applying them to DR10 south
unchanged is an approximation.

The earlier system's parent variants (``is_v1_pure_massive`` .. ``is_v5_very_relaxed``) are cuts
on the same MW-corrected magnitudes: ``z < zmax``, ``r - z > rz_min``, ``z - W1 > zw1_min`` (values in
``VARIANT_CUTS``); here they are applied after the same quality cuts. v5 contains v1 to v4.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from dhs.parent.names import DESI_FLAG, FLAGS, VARIANT_CUTS  # noqa: F401  (part of this module's interface)

ZERO_POINT = 22.5
FLUX_FLOOR = 1e-7  # nmgy: desitarget's clip before the logarithm
#: MASKBITS that exclude a galaxy (desitarget geomask.get_default_maskbits for LRGs).
LRG_MASKBITS = (1, 12, 13)
GAIA_G_MIN = 18.0
FIBERTOT_Z_MAX_NMGY = 10.0 ** (-0.4 * (17.5 - ZERO_POINT))
#: Catalog columns the selection reads (lower case); brick_primary only when present.
COLUMNS = ("flux_g", "flux_r", "flux_z", "flux_w1", "flux_ivar_r", "flux_ivar_z", "flux_ivar_w1",
           "mw_transmission_g", "mw_transmission_r", "mw_transmission_z", "mw_transmission_w1",
           "fiberflux_z", "fibertotflux_z", "nobs_g", "nobs_r", "nobs_z", "gaia_phot_g_mean_mag",
           "maskbits")


@dataclass(frozen=True)
class ColourCuts:
    """Constants of the DESI LRG colour cuts (one footprint)."""

    zfib_max: float
    gw1_min: float
    rw1_min: float
    slide_slope: float
    slide_w1_a: float
    slide_w1_b: float
    highz_rw1: float
    nonstellar_slope: float = 0.8
    nonstellar_offset: float = -0.6


CUTS = {
    "south": ColourCuts(zfib_max=21.6, gw1_min=2.9, rw1_min=1.8, slide_slope=1.8, slide_w1_a=17.14,
                        slide_w1_b=16.33, highz_rw1=3.3),
    "north": ColourCuts(zfib_max=21.61, gw1_min=2.97, rw1_min=1.8, slide_slope=1.83,
                        slide_w1_a=17.13, slide_w1_b=16.31, highz_rw1=3.4),
}


def mw_mag(flux: np.ndarray, mw_transmission: np.ndarray) -> np.ndarray:
    """MW-corrected AB magnitude from a flux (nmgy) and its MW transmission, clipped at 1e-7 nmgy."""
    flux = np.asarray(flux, dtype=np.float64)
    trans = np.asarray(mw_transmission, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(trans > 0, flux / np.where(trans > 0, trans, 1.0), np.nan)
    ratio = np.where(np.isnan(ratio), np.nan, np.maximum(ratio, FLUX_FLOOR))
    return ZERO_POINT - 2.5 * np.log10(ratio)


def mw_mags(cat: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The MW-corrected magnitudes g, r, z, w1 and the z fibre magnitude zfib (float64)."""
    out = {b: mw_mag(cat[f"flux_{b}"], cat[f"mw_transmission_{b}"]) for b in ("g", "r", "z", "w1")}
    out["zfib"] = mw_mag(cat["fiberflux_z"], cat["mw_transmission_z"])
    return out


def quality_cuts(cat: Mapping[str, np.ndarray]) -> list[tuple[str, np.ndarray]]:
    """(name, passes) of every quality cut, in funnel order."""
    def f(name: str) -> np.ndarray:
        return np.asarray(cat[name], dtype=np.float64)

    cuts = []
    if "brick_primary" in cat:
        cuts.append(("BRICK_PRIMARY", np.asarray(cat["brick_primary"]).astype(bool)))
    with np.errstate(invalid="ignore"):
        detected = np.ones(len(f("flux_r")), dtype=bool)
        for b in ("r", "z", "w1"):
            detected &= (f(f"flux_ivar_{b}") > 0) & (f(f"flux_{b}") > 0)
        cuts.append(("FLUX_X > 0 and FLUX_IVAR_X > 0 (r, z, W1)", detected))
        cuts.append(("FIBERFLUX_Z > 0", f("fiberflux_z") > 0))
        nobs = (f("nobs_g") > 0) & (f("nobs_r") > 0) & (f("nobs_z") > 0)
        cuts.append(("NOBS_G, NOBS_R, NOBS_Z > 0", nobs))
        gaia = f("gaia_phot_g_mean_mag")
        cuts.append(("GAIA_PHOT_G_MEAN_MAG == 0 or > 18", (gaia == 0) | (gaia > GAIA_G_MIN)))
        cuts.append(("FIBERTOTFLUX_Z < 100 nmgy (z_fibtot > 17.5)", f("fibertotflux_z") < FIBERTOT_Z_MAX_NMGY))
    bits = np.int64(sum(1 << b for b in LRG_MASKBITS))
    cuts.append(("MASKBITS 1, 12, 13 clear", (np.asarray(cat["maskbits"]).astype(np.int64) & bits) == 0))
    return cuts


def colour_cuts(m: Mapping[str, np.ndarray], footprint: str = "south") -> list[tuple[str, np.ndarray]]:
    """(name, passes) of the DESI colour cuts on MW-corrected magnitudes (``mw_mags`` output)."""
    c = CUTS[footprint]
    g, r, z, w1, zfib = (np.asarray(m[k], dtype=np.float64) for k in ("g", "r", "z", "w1", "zfib"))
    rw1 = r - w1
    with np.errstate(invalid="ignore"):
        return [
            (f"z_fib < {c.zfib_max}", zfib < c.zfib_max),
            (f"z - W1 > {c.nonstellar_slope} (r - z) {c.nonstellar_offset:+g}",
             z - w1 > c.nonstellar_slope * (r - z) + c.nonstellar_offset),
            (f"g - W1 > {c.gw1_min} or r - W1 > {c.rw1_min}", (g - w1 > c.gw1_min) | (rw1 > c.rw1_min)),
            (f"r - W1 > {c.slide_slope} (W1 - {c.slide_w1_a}) and r - W1 > W1 - {c.slide_w1_b}, "
             f"or r - W1 > {c.highz_rw1}",
             ((rw1 > c.slide_slope * (w1 - c.slide_w1_a)) & (rw1 > w1 - c.slide_w1_b))
             | (rw1 > c.highz_rw1)),
        ]


def variant_flags(m: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The earlier system's variant cuts on MW-corrected magnitudes (no quality cuts)."""
    z = np.asarray(m["z"], dtype=np.float64)
    rz = np.asarray(m["r"], dtype=np.float64) - z
    zw1 = z - np.asarray(m["w1"], dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return {name: (z < zmax) & (rz > rz_min) & (zw1 > zw1_min)
                for name, (zmax, rz_min, zw1_min) in VARIANT_CUTS.items()}


@dataclass
class Selection:
    """Flags of every row, the magnitudes they were computed from and the funnel counts."""

    quality: np.ndarray
    flags: dict[str, np.ndarray]
    mags: dict[str, np.ndarray]
    funnel: list[tuple[str, int]]

    @property
    def keep(self) -> np.ndarray:
        """Rows of the parent sample: quality cuts and at least one flag."""
        return np.logical_or.reduce([self.flags[k] for k in FLAGS])


def select(cat: Mapping[str, np.ndarray], footprint: str = "south") -> Selection:
    """Quality cuts, the DESI LRG flag and the variant flags of catalog rows (lower-case columns)."""
    n = len(np.asarray(cat["flux_r"]))
    funnel = [("catalog rows", n)]
    quality = np.ones(n, dtype=bool)
    for name, ok in quality_cuts(cat):
        quality &= ok
        funnel.append((name, int(quality.sum())))
    mags = mw_mags(cat)
    desi = quality.copy()
    for name, ok in colour_cuts(mags, footprint):
        desi &= ok
        funnel.append((f"DESI LRG: {name}", int(desi.sum())))
    flags = {DESI_FLAG: desi}
    for name, ok in variant_flags(mags).items():
        flags[name] = quality & ok
    return Selection(quality=quality, flags=flags, mags=mags, funnel=funnel)
