"""Brick geometry against DR10 facts: names, count, ids and bounds of real bricks."""

from __future__ import annotations

import numpy as np
import pytest

from dhs.survey import bricks


def _desiutil_name(ra_c: float, dec_c: float) -> str:
    """desiutil's name formatting, written out with str.format for comparison."""
    pm = "p" if dec_c >= 0 else "m"
    return "{:s}{:s}{:03d}".format("{:07.0f}".format(ra_c * 1e4)[:4], pm, int(abs(dec_c) * 10))


def _center(row: int, col: int) -> tuple[float, float]:
    """Centre of (row, col) computed independently from the algorithm's definition."""
    dec_c = -90 + 0.25 * row
    n = 1440 * np.cos(np.deg2rad(abs(dec_c) - 0.125))
    ncol = 1 if row in (0, 720) else int(np.ceil(n / 2) * 2)
    return (col + 0.5) * 360.0 / ncol, dec_c


@pytest.mark.parametrize("name, row, col", [
    ("1126p222", 449, 417), ("0001m040", 344, 0), ("0238p302", 481, 82), ("0421p022", 369, 168),
])
def test_named_bricks_from_their_centres(name: str, row: int, col: int) -> None:
    ra_c, dec_c = _center(row, col)
    assert _desiutil_name(ra_c, dec_c) == name
    assert bricks.radec_to_brickname(ra_c, dec_c) == name
    b = bricks.brick_from_name(name)
    assert (b.brickrow, b.brickcol) == (row, col)
    assert b.ra == pytest.approx(ra_c, abs=1e-12) and b.dec == dec_c
    # any position inside the primary area maps back to the brick
    rng = np.random.default_rng(0)
    ra = rng.uniform(b.ra1, b.ra2, 200)
    dec = rng.uniform(b.dec1, b.dec2, 200)
    assert set(bricks.radec_to_brickname(ra, dec)) == {name}


def test_brick_1102p240_matches_legacypipe_header() -> None:
    # BRICKID, RAMIN/RAMAX, DECMIN/DECMAX, BRICKRA of the real obiwan coadd header
    b = bricks.brick_from_name("1102p240")
    assert b.brickid == 465217
    assert b.ra == pytest.approx(110.212443095599, abs=1e-9)
    assert b.ra1 == pytest.approx(110.075872534143, abs=1e-9)
    assert b.ra2 == pytest.approx(110.349013657056, abs=1e-9)
    assert (b.dec1, b.dec, b.dec2) == (23.875, 24.0, 24.125)


def test_all_bricks_count_unique_names_and_ids() -> None:
    t = bricks.all_bricks()
    assert bricks.n_bricks() == 662_174 == len(t["brickname"])
    assert len(set(t["brickname"].tolist())) == 662_174
    assert np.array_equal(t["brickid"], np.arange(1, 662_175))
    # bricks tile each row exactly
    assert np.all(t["ra2"] > t["ra1"]) and np.all(t["dec2"] > t["dec1"])
    sample = np.random.default_rng(1).integers(0, 662_174, 1000)
    for i in sample:
        assert _desiutil_name(t["ra"][i], t["dec"][i]) == t["brickname"][i]
        assert bricks.brick_from_name(t["brickname"][i]).brickid == t["brickid"][i]


def test_vectorized_lookup_matches_scalar_and_wraps_ra() -> None:
    rng = np.random.default_rng(2)
    ra = rng.uniform(0, 360, 500)
    dec = rng.uniform(-89.9, 89.9, 500)
    names = bricks.radec_to_brickname(ra, dec)
    assert [bricks.radec_to_brickname(r, d) for r, d in zip(ra[:50], dec[:50])] == list(names[:50])
    assert list(bricks.radec_to_brickname(ra + 360, dec)) == list(names)
    for r, d, n in zip(ra[:50], dec[:50], names[:50]):
        assert bricks.brick_from_name(n).contains(r, d)


def test_poles_are_single_bricks() -> None:
    assert bricks.ncol_per_row()[0] == bricks.ncol_per_row()[-1] == 1
    assert bricks.radec_to_brickname(123.0, 90.0) == bricks.radec_to_brickname(300.0, 89.9)


@pytest.mark.parametrize("bad", ["1126x222", "112p222", "9999p999", ""])
def test_bad_names_raise(bad: str) -> None:
    with pytest.raises(ValueError, match="brick name"):
        bricks.brick_from_name(bad)
