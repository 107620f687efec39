"""AB magnitudes, nanomaggies and Milky Way extinction (DESI Legacy Surveys conventions).

``flux_nmgy = 10 ** (-0.4 * (mag - 22.5))``; Legacy Survey images are in nanomaggies
per pixel. Extinction ``A_band = R_band * E(B-V)`` with the DR10 coefficients below.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from dhs.physics.validate import check_finite_array, check_range

ZERO_POINT = 22.5
EXTINCTION_R: dict[str, float] = {"g": 3.214, "r": 2.165, "i": 1.592, "z": 1.211}


def mag_to_nmgy(mag: np.ndarray | float) -> np.ndarray:
    """AB magnitude -> flux in nanomaggies (zero point 22.5)."""
    mag = np.asarray(mag, dtype=np.float64)
    check_finite_array("mag", np.atleast_1d(mag))
    return 10.0 ** (-0.4 * (mag - ZERO_POINT))


def nmgy_to_mag(flux: np.ndarray | float) -> np.ndarray:
    """Flux in nanomaggies -> AB magnitude; non-positive flux gives +inf."""
    flux = np.asarray(flux, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(flux > 0, ZERO_POINT - 2.5 * np.log10(np.where(flux > 0, flux, 1.0)),
                        np.inf)


def extinction_mag(band: str, ebv: np.ndarray | float) -> np.ndarray:
    """Milky Way extinction A_band (mag) for E(B-V) (mag)."""
    if band not in EXTINCTION_R:
        raise ValueError(f"band {band!r}: no extinction coefficient (known: {sorted(EXTINCTION_R)})")
    ebv = np.asarray(ebv, dtype=np.float64)
    check_range("ebv", np.atleast_1d(ebv), lo=0.0)
    return EXTINCTION_R[band] * ebv


def band_mags(
    mag_r: np.ndarray | float,
    colors: Mapping[str, np.ndarray | float],
    bands: Sequence[str] = ("g", "r", "z"),
) -> dict[str, np.ndarray]:
    """Per-band magnitudes from an r magnitude and colours.

    colors: keys ``"<a>-<b>"`` (e.g. ``"g-r"``, ``"r-z"``, ``"r-i"``) chaining every band
    to r; values in mag (scalar or per stamp).
    """
    mag_r = np.atleast_1d(np.asarray(mag_r, dtype=np.float64))
    check_finite_array("mag_r", mag_r)
    mags: dict[str, np.ndarray] = {"r": mag_r}
    pending = dict(colors)
    for key, val in pending.items():
        check_finite_array(f"colors[{key!r}]", np.atleast_1d(np.asarray(val, dtype=np.float64)))
        if key.count("-") != 1:
            raise ValueError(f"colour key {key!r}: expected '<band>-<band>'")
    progress = True
    while pending and progress:
        progress = False
        for key in list(pending):
            a, b = key.split("-")
            val = np.asarray(pending[key], dtype=np.float64)
            if b in mags and a not in mags:
                mags[a] = mags[b] + val
            elif a in mags and b not in mags:
                mags[b] = mags[a] - val
            elif a not in mags:
                continue
            del pending[key]
            progress = True
    out = {}
    for band in bands:
        if band not in mags:
            raise ValueError(f"band {band!r}: no colour links it to r (colors: {sorted(colors)})")
        out[band] = np.broadcast_to(mags[band], mag_r.shape).astype(np.float64)
    return out


def band_fluxes(
    mag_r: np.ndarray | float,
    colors: Mapping[str, np.ndarray | float],
    bands: Sequence[str] = ("g", "r", "z"),
    ebv: np.ndarray | float | None = None,
) -> dict[str, np.ndarray]:
    """Per-band total source flux (nanomaggies) from an r magnitude and colours.

    ``mag_r`` and ``colors`` are intrinsic (extinction-free); with ``ebv`` (E(B-V), mag)
    the fluxes are dimmed by Milky Way extinction, as observed in the survey images.
    """
    mags = band_mags(mag_r, colors, bands)
    out = {}
    for band, m in mags.items():
        if ebv is not None:
            m = m + extinction_mag(band, ebv)
        out[band] = mag_to_nmgy(m)
    return out
