"""Regions (nested HEALPix cells of brick centres) and hashed train/val/test splits."""

from __future__ import annotations

import numpy as np
import pytest

from dhs.parent import regions
from dhs.survey import bricks


def test_region_is_the_healpix_cell_holding_the_position():
    from astropy_healpix import HEALPix
    import astropy.units as u

    rng = np.random.default_rng(3)
    ra, dec = rng.uniform(0, 360, 500), np.degrees(np.arcsin(rng.uniform(-1, 1, 500)))
    ids = regions.region_ids(ra, dec, 32)
    hp = HEALPix(nside=32, order="nested")
    # the cell's own boundary polygon contains the point: its distance to the cell centre is
    # below the largest centre-to-corner distance of that cell
    lon_c, lat_c = hp.healpix_to_lonlat(ids)
    corners = hp.boundaries_lonlat(ids, step=1)
    from astropy.coordinates import SkyCoord

    centre = SkyCoord(lon_c, lat_c)
    d_point = centre.separation(SkyCoord(ra * u.deg, dec * u.deg))
    d_corner = np.max([centre.separation(SkyCoord(corners[0][:, k], corners[1][:, k])).deg
                       for k in range(4)], axis=0)
    assert np.all(d_point.deg <= d_corner + 1e-9)
    assert ids.min() >= 0 and ids.max() < 12 * 32 ** 2


def test_splits_are_pure_functions_of_the_region():
    ids = np.arange(12 * 32 ** 2)
    full = regions.split_names(ids, 32, (0.7, 0.15, 0.15), seed=13)
    sub = np.random.default_rng(0).permutation(ids)[:500]
    np.testing.assert_array_equal(regions.split_names(sub, 32, (0.7, 0.15, 0.15), seed=13), full[sub])
    np.testing.assert_array_equal(regions.split_names(ids, 32, (0.7, 0.15, 0.15), seed=13), full)
    # fractions are honoured over the 12288 cells (binomial sigma ~ 0.004)
    frac = {s: np.mean(full == s) for s in regions.SPLITS}
    assert frac["train"] == pytest.approx(0.7, abs=0.02)
    assert frac["val"] == pytest.approx(0.15, abs=0.02) and frac["test"] == pytest.approx(0.15, abs=0.02)
    # another seed or nside re-draws the splits
    assert np.mean(regions.split_names(ids, 32, (0.7, 0.15, 0.15), seed=14) != full) > 0.3
    assert np.mean(regions.split_names(ids, 64, (0.7, 0.15, 0.15), seed=13) != full) > 0.3


def test_every_galaxy_of_a_brick_shares_its_region():
    b = bricks.brick_at(150.3, 2.1)
    ra = np.linspace(b.ra1 + 1e-6, b.ra2 - 1e-6, 5)
    dec = np.linspace(b.dec1 + 1e-6, b.dec2 - 1e-6, 5)
    names = np.unique(bricks.radec_to_brickname(*np.meshgrid(ra, dec)))
    assert names.tolist() == [b.brickname]
    centre = bricks.brick_from_name(names[0])
    assert regions.region_ids([centre.ra], [centre.dec]).tolist() == regions.region_ids([b.ra], [b.dec]).tolist()


@pytest.mark.parametrize("bad", [(0.7, 0.2), (0.7, 0.2, 0.2), (1.1, -0.05, -0.05)])
def test_bad_fractions_are_refused(bad):
    with pytest.raises(ValueError, match="fractions"):
        regions.check_fractions(bad)


def test_nside_must_be_a_power_of_two():
    with pytest.raises(ValueError, match="nside"):
        regions.region_ids([1.0], [2.0], 48)
