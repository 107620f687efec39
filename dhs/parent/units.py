"""Unit checks on input columns: point-source depths and PSF sizes recognised from their values.

DR10 uses two conventions for a depth: the catalogs' ``PSFDEPTH_X`` / ``GALDEPTH_X`` and the
``-depth-`` maps are flux inverse variances (1/nmgy^2), while the per-brick summary table
``survey-bricks-dr10-south.fits.gz`` gives 5-sigma AB magnitudes. dhs works in 1/nmgy^2; a
magnitude read as an inverse variance is off by orders of magnitude (24.5 mag read as 24.5/nmgy^2
is a 22.49 mag depth). PSF sizes are FWHM in arcsec everywhere in DR10, but CCD tables give the
FWHM in pixels (``survey-ccds`` ``fwhm``).

Rules (on the finite, positive values of a column; zero, negative and NaN mean "no data"):

depth (``depth_to_ivar``)
    magnitudes   when the 0.5th to 99.5th percentiles lie within [18, 30] mag (an inverse
                 variance there would mean every value had a 5-sigma depth of 22.3-22.7 mag),
                 converted with ``ivar = 25 * 10**(0.8 (m5 - 22.5))``;
    mixed        refused when at least 20 % of the values lie in [18, 30] and at least 20 % above
                 1000 (a 5-sigma depth beyond 24.5 mag in the same column);
    1/nmgy^2     otherwise, unchanged.
PSF size (``psfsize_to_arcsec``)
    arcsec       median in [0.4, 3.0] and 99th percentile <= 6;
    pixels       median in [3.3, 15] and 1st percentile >= 1.5; converted with the pixel scale;
    refused      otherwise (e.g. a median between 3.0 and 3.3, or below 0.4).

Within one table every depth column must come out in the same unit (``check_depth_columns``).
``units`` forces a reading ("ivar"/"mag", "arcsec"/"pixel") instead of "auto". Refusals raise
``InputUnitError`` naming the file, the column, the values seen and the fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from dhs.errors import DhsError

MAG_RANGE = (18.0, 30.0)
MIXED_FRACTION = 0.2
MIXED_IVAR_MIN = 1000.0
ARCSEC_MEDIAN = (0.4, 3.0)
ARCSEC_P99_MAX = 6.0
PIXEL_MEDIAN = (3.3, 15.0)
PIXEL_P01_MIN = 1.5
DEPTH_UNITS = ("auto", "ivar", "mag")
PSFSIZE_UNITS = ("auto", "arcsec", "pixel")


class InputUnitError(DhsError):
    """A column's values are not in a unit dhs recognises; the message names file, column, fix."""


@dataclass(frozen=True)
class UnitCheck:
    """What a check found: the column, the unit it was read in and whether it was converted."""

    column: str
    unit: str          # '1/nmgy^2', 'mag', 'arcsec' or 'pixel'
    converted: bool
    n_values: int
    median: float

    def note(self, where: str) -> str:
        if not self.converted:
            return ""
        target = "1/nmgy^2" if self.unit == "mag" else "arcsec"
        return (f"{where}: column {self.column!r} holds {self.unit} (median {self.median:.4g}); "
                f"converted to {target}")


def _positive(values: np.ndarray) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    return v[np.isfinite(v) & (v > 0)]


def mag_to_ivar(m5: np.ndarray) -> np.ndarray:
    """5-sigma point-source AB depth -> flux inverse variance (1/nmgy^2); <= 0 or NaN -> 0."""
    m5 = np.asarray(m5, dtype=np.float64)
    ok = np.isfinite(m5) & (m5 > 0)
    return np.where(ok, 25.0 * 10.0 ** (0.8 * (np.where(ok, m5, 22.5) - 22.5)), 0.0)


def ivar_to_mag(ivar: np.ndarray) -> np.ndarray:
    """Flux inverse variance (1/nmgy^2) -> 5-sigma AB depth; <= 0 -> NaN."""
    ivar = np.asarray(ivar, dtype=np.float64)
    ok = np.isfinite(ivar) & (ivar > 0)
    return np.where(ok, 22.5 - 2.5 * np.log10(5.0 / np.sqrt(np.where(ok, ivar, 1.0))), np.nan)


def classify_depth(values: np.ndarray, column: str, where: str) -> str:
    """'mag', 'ivar' (also for a column without data), or InputUnitError for a mixed column."""
    v = _positive(values)
    if v.size == 0:
        return "ivar"
    lo, hi = np.percentile(v, [0.5, 99.5])
    if MAG_RANGE[0] <= lo and hi <= MAG_RANGE[1]:
        return "mag"
    in_mag = np.mean((v >= MAG_RANGE[0]) & (v <= MAG_RANGE[1]))
    high = np.mean(v > MIXED_IVAR_MIN)
    if in_mag >= MIXED_FRACTION and high >= MIXED_FRACTION:
        raise InputUnitError(
            f"{where}: column {column!r} mixes units: {in_mag:.0%} of its values lie in "
            f"[{MAG_RANGE[0]:g}, {MAG_RANGE[1]:g}] (5-sigma AB magnitudes?) and {high:.0%} above "
            f"{MIXED_IVAR_MIN:g} (inverse variances, 1/nmgy^2). Write the column in one unit "
            "(1/nmgy^2 = 25 * 10**(0.8 (m5 - 22.5))).")
    return "ivar"


def depth_to_ivar(values: np.ndarray, column: str, where: str,
                  units: str = "auto") -> tuple[np.ndarray, UnitCheck]:
    """A depth column in 1/nmgy^2 (float64), converted from magnitudes when recognised as such."""
    if units not in DEPTH_UNITS:
        raise InputUnitError(f"{where}: depth units {units!r} for column {column!r}; use one of "
                             f"{', '.join(DEPTH_UNITS)}")
    v = np.asarray(values, dtype=np.float64)
    unit = classify_depth(v, column, where) if units == "auto" else units
    pos = _positive(v)
    med = float(np.median(pos)) if pos.size else float("nan")
    if unit == "mag":
        return mag_to_ivar(v), UnitCheck(column, "mag", True, int(pos.size), med)
    return v, UnitCheck(column, "1/nmgy^2", False, int(pos.size), med)


def check_depth_columns(columns: Mapping[str, np.ndarray], where: str,
                        units: str = "auto") -> tuple[dict[str, np.ndarray], list[UnitCheck]]:
    """Every depth column of one table in 1/nmgy^2; refuses a table whose columns disagree."""
    out, checks = {}, []
    for name, values in columns.items():
        out[name], chk = depth_to_ivar(values, name, where, units)
        checks.append(chk)
    found = {c.unit for c in checks if c.n_values}
    if len(found) > 1:
        mags = [c.column for c in checks if c.unit == "mag"]
        ivar = [c.column for c in checks if c.unit == "1/nmgy^2" and c.n_values]
        raise InputUnitError(
            f"{where}: depth columns disagree on units: {mags} look like 5-sigma AB magnitudes, "
            f"{ivar} like inverse variances (1/nmgy^2). Write every depth column in one unit.")
    return out, checks


def psfsize_to_arcsec(values: np.ndarray, column: str, where: str, pixscale: float,
                      units: str = "auto") -> tuple[np.ndarray, UnitCheck]:
    """A PSF FWHM column in arcsec (float64), converted from pixels (``pixscale`` arcsec/pixel)."""
    if units not in PSFSIZE_UNITS:
        raise InputUnitError(f"{where}: PSF size units {units!r} for column {column!r}; use one "
                             f"of {', '.join(PSFSIZE_UNITS)}")
    v = np.asarray(values, dtype=np.float64)
    pos = _positive(v)
    if pos.size == 0:
        return v, UnitCheck(column, "arcsec", False, 0, float("nan"))
    med = float(np.median(pos))
    unit = units
    if units == "auto":
        p01, p99 = np.percentile(pos, [1.0, 99.0])
        if ARCSEC_MEDIAN[0] <= med <= ARCSEC_MEDIAN[1] and p99 <= ARCSEC_P99_MAX:
            unit = "arcsec"
        elif PIXEL_MEDIAN[0] <= med <= PIXEL_MEDIAN[1] and p01 >= PIXEL_P01_MIN:
            unit = "pixel"
        else:
            raise InputUnitError(
                f"{where}: column {column!r} (PSF FWHM) has median {med:.3g} and 1st-99th "
                f"percentiles {p01:.3g}-{p99:.3g}: neither a FWHM in arcsec (median "
                f"{ARCSEC_MEDIAN[0]:g}-{ARCSEC_MEDIAN[1]:g}) nor in pixels of {pixscale:g} arcsec "
                f"(median {PIXEL_MEDIAN[0]:g}-{PIXEL_MEDIAN[1]:g}). Write the PSF FWHM in arcsec.")
    if unit == "pixel":
        return v * float(pixscale), UnitCheck(column, "pixel", True, int(pos.size), med)
    return v, UnitCheck(column, "arcsec", False, int(pos.size), med)
