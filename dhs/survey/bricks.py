"""DR10 brick geometry: RA/Dec -> brick, brick centres and bounds, the list of all bricks.

The sky is cut into rows of Dec 0.25 deg centred on multiples of 0.25 deg (row 0 is the south
pole, row 720 the north pole). Row ``i`` holds ``ncol[i]`` bricks of equal RA width
``360 / ncol[i]``, where ``ncol[i]`` is the even number >= ``1440 cos(|dec_c| - 0.125 deg)``; the
poles are single bricks. This is desiutil's ``brick.py`` algorithm and gives 662,174 bricks
(BRICKID 1..662174, numbered row by row from the south, RA increasing within a row).

Names are ``AAAAcBBB``: the first four digits of ``'{:07.0f}'.format(ra_c * 1e4)`` (the RA of
the centre in units of 0.1 deg, without float truncation errors), ``p``/``m`` for the sign of
Dec_centre and ``%03d`` of ``int(10 |dec_c|)``. The primary (unique) area of a brick is
RA1..RA2 x DEC1..DEC2. All angles are in degrees. Functions accept scalars or arrays.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

BRICK_SIZE_DEG = 0.25
N_ROWS = 721
N_BRICKS = 662_174
#: DR10 south (DECam) covers Dec <= 32.375 deg.
DR10_SOUTH_DEC_MAX = 32.375

_NAME_RE = re.compile(r"^(\d{4})([pm])(\d{3})$")


@dataclass(frozen=True)
class Brick:
    """One brick: name, id, row/column, centre and primary-area bounds (degrees)."""

    brickname: str
    brickid: int
    brickrow: int
    brickcol: int
    ra: float
    dec: float
    ra1: float
    ra2: float
    dec1: float
    dec2: float

    def contains(self, ra: float, dec: float) -> bool:
        """True if (ra, dec) lies in the primary area (RA1 <= ra < RA2, DEC1 <= dec < DEC2)."""
        ra = float(ra) % 360.0
        return bool(self.ra1 <= ra < self.ra2 and self.dec1 <= dec < self.dec2)


@lru_cache(maxsize=1)
def ncol_per_row() -> np.ndarray:
    """Number of bricks in each of the 721 Dec rows (int64; 1 at the poles)."""
    dec_c = -90.0 + BRICK_SIZE_DEG * np.arange(N_ROWS)
    n = (360.0 / BRICK_SIZE_DEG) * np.cos(np.deg2rad(np.abs(dec_c) - BRICK_SIZE_DEG / 2))
    ncol = (np.ceil(n / 2) * 2).astype(np.int64)
    ncol[0] = ncol[-1] = 1
    ncol.setflags(write=False)
    return ncol


@lru_cache(maxsize=1)
def _row_offsets() -> np.ndarray:
    """BRICKID of the first brick of each row minus 1."""
    off = np.concatenate([[0], np.cumsum(ncol_per_row())[:-1]]).astype(np.int64)
    off.setflags(write=False)
    return off


def radec_to_rowcol(ra, dec) -> tuple[np.ndarray, np.ndarray]:
    """Row and column (int64 arrays) of the brick holding each (ra, dec)."""
    ra = np.mod(np.asarray(ra, dtype=np.float64), 360.0)
    dec = np.asarray(dec, dtype=np.float64)
    if np.any(np.abs(dec) > 90) or not np.all(np.isfinite(dec)) or not np.all(np.isfinite(ra)):
        raise ValueError("dec must be finite and within [-90, 90] deg, ra finite")
    row = np.floor((dec + 90.0 + BRICK_SIZE_DEG / 2) / BRICK_SIZE_DEG).astype(np.int64)
    row = np.clip(row, 0, N_ROWS - 1)
    ncol = ncol_per_row()[row]
    col = np.floor(ra / 360.0 * ncol).astype(np.int64)
    col = np.minimum(col, ncol - 1)
    return row, col


def rowcol_to_center(row, col) -> tuple[np.ndarray, np.ndarray]:
    """Centre (ra_c, dec_c) in degrees of bricks given by row and column."""
    row = np.asarray(row, dtype=np.int64)
    col = np.asarray(col, dtype=np.int64)
    ncol = ncol_per_row()[row]
    ra_c = (col + 0.5) * 360.0 / ncol
    ra_c = np.where(ncol == 1, 0.0, ra_c)
    dec_c = -90.0 + BRICK_SIZE_DEG * row
    return ra_c, dec_c


def rowcol_to_bounds(row, col) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Primary-area bounds (ra1, ra2, dec1, dec2) in degrees; Dec clipped to [-90, 90]."""
    row = np.asarray(row, dtype=np.int64)
    col = np.asarray(col, dtype=np.int64)
    ncol = ncol_per_row()[row]
    ra1 = col * 360.0 / ncol
    ra2 = (col + 1) * 360.0 / ncol
    dec_c = -90.0 + BRICK_SIZE_DEG * row
    dec1 = np.maximum(dec_c - BRICK_SIZE_DEG / 2, -90.0)
    dec2 = np.minimum(dec_c + BRICK_SIZE_DEG / 2, 90.0)
    return ra1, ra2, dec1, dec2


def rowcol_to_brickid(row, col) -> np.ndarray:
    """BRICKID (1-based) of bricks given by row and column."""
    return _row_offsets()[np.asarray(row, dtype=np.int64)] + np.asarray(col, dtype=np.int64) + 1


def center_to_name(ra_c, dec_c) -> np.ndarray | str:
    """Brick names from brick centres (desiutil formatting); a str for scalar input."""
    scalar = np.ndim(ra_c) == 0 and np.ndim(dec_c) == 0
    ra_c, dec_c = np.broadcast_arrays(np.atleast_1d(np.asarray(ra_c, dtype=np.float64)),
                                      np.atleast_1d(np.asarray(dec_c, dtype=np.float64)))
    # '{:07.0f}'.format(x)[:4] == first 4 of 7 digits of round-half-even(x): rint(x) // 1000
    ra_digits = (np.rint(ra_c * 1e4).astype(np.int64) // 1000).astype(str)
    dec_digits = (np.abs(dec_c) * 10).astype(np.int64).astype(str)
    pm = np.where(dec_c >= 0, "p", "m")
    names = np.char.add(np.char.add(np.char.zfill(ra_digits, 4), pm), np.char.zfill(dec_digits, 3))
    return str(names[0]) if scalar else names.astype(object).astype(str)


def radec_to_brickname(ra, dec) -> np.ndarray | str:
    """Name of the brick holding each (ra, dec); a str for scalar input."""
    scalar = np.ndim(ra) == 0 and np.ndim(dec) == 0
    row, col = radec_to_rowcol(np.atleast_1d(ra), np.atleast_1d(dec))
    names = center_to_name(*rowcol_to_center(row, col))
    return str(names[0]) if scalar else names


def _brick(row: int, col: int) -> Brick:
    ra_c, dec_c = rowcol_to_center(row, col)
    ra1, ra2, dec1, dec2 = rowcol_to_bounds(row, col)
    return Brick(str(center_to_name(float(ra_c), float(dec_c))), int(rowcol_to_brickid(row, col)),
                 int(row), int(col), float(ra_c), float(dec_c), float(ra1), float(ra2),
                 float(dec1), float(dec2))


def brick_at(ra: float, dec: float) -> Brick:
    """The brick (name, id, centre, bounds) holding the position (ra, dec)."""
    row, col = radec_to_rowcol(np.atleast_1d(ra), np.atleast_1d(dec))
    return _brick(int(row[0]), int(col[0]))


def brick_from_name(brickname: str) -> Brick:
    """The brick of a given name (its exact centre and bounds from the geometry).

    Names are not exactly invertible (the RA is truncated to 0.1 deg), so the brick is found by
    recomputing the names of the row's bricks near the named RA.
    """
    m = _NAME_RE.match(str(brickname))
    if not m:
        raise ValueError(f"brick name {brickname!r} is not of the form AAAAcBBB (e.g. 1126p222)")
    ra_approx = int(m.group(1)) / 10.0
    dec_abs = int(m.group(3)) / 10.0
    sign = 1.0 if m.group(2) == "p" else -1.0
    # |dec_c| is a multiple of 0.25 and the name truncates 10|dec_c|: round up to the grid.
    dec_c = sign * float(np.round((dec_abs + 0.025) / BRICK_SIZE_DEG)) * BRICK_SIZE_DEG
    if abs(dec_c) > 90:
        raise ValueError(f"brick name {brickname!r}: declination {dec_c} is outside [-90, 90]")
    row = round((dec_c + 90.0) / BRICK_SIZE_DEG)
    ncol = int(ncol_per_row()[row])
    guess = int(ra_approx / 360.0 * ncol)
    cols = np.arange(max(guess - 2, 0), min(guess + 3, ncol))
    names = center_to_name(*rowcol_to_center(np.full(cols.size, row), cols))
    hit = np.nonzero(names == brickname)[0]
    if hit.size != 1:
        raise ValueError(f"brick name {brickname!r} does not name a DR10 brick")
    return _brick(row, int(cols[hit[0]]))


def all_bricks() -> dict[str, np.ndarray]:
    """Every brick as columns: brickname, brickid, brickrow, brickcol, ra, dec, ra1, ra2, dec1, dec2.

    662,174 rows ordered by BRICKID (the layout of ``survey-bricks.fits.gz``).
    """
    ncol = ncol_per_row()
    row = np.repeat(np.arange(N_ROWS, dtype=np.int64), ncol)
    col = np.arange(row.size, dtype=np.int64) - _row_offsets()[row]
    ra_c, dec_c = rowcol_to_center(row, col)
    ra1, ra2, dec1, dec2 = rowcol_to_bounds(row, col)
    return {
        "brickname": center_to_name(ra_c, dec_c), "brickid": rowcol_to_brickid(row, col),
        "brickrow": row, "brickcol": col, "ra": ra_c, "dec": dec_c,
        "ra1": ra1, "ra2": ra2, "dec1": dec1, "dec2": dec2,
    }


def n_bricks() -> int:
    """Total number of bricks (662,174)."""
    return int(ncol_per_row().sum())
