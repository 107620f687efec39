"""The mock survey's DR10 sweep-format catalogs: names, column units, fibre fluxes."""

from __future__ import annotations

import io

import numpy as np
import pytest
from astropy.io import fits

from dhs.mock_survey import sweeps
from dhs.mock_survey.plan import MockParams, plan_survey


def small_params(**kw) -> MockParams:
    base = dict(seed=2026, n_bricks=3, brick_size_pix=300, galaxies_per_brick=12, stars_per_brick=2,
                n_regions=3, psf_fwhm_r_range=(1.0, 1.6), depth_r_levels=(23.6, 24.2), split_seed=13)
    return MockParams(**{**base, **kw})


@pytest.fixture(scope="module")
def written():
    plans = plan_survey(small_params())
    rows = [sweeps.brick_rows(p, sweeps.brick_maps(p)) for p in plans]
    return plans, rows, sweeps.sweep_files(rows)


@pytest.mark.parametrize("ra,dec,box", [(3.2, -7.5, "000m010-010m005"), (359.9, 0.0, "350p000-360p005"),
                                        (112.6, 22.2, "110p020-120p025"), (45.0, -0.01, "040m005-050p000")])
def test_sweep_box_names(ra, dec, box):
    assert sweeps.sweep_box(ra, dec) == box


def test_files_hold_every_object_with_dr10_columns(written):
    plans, rows, files = written
    n = sum(len(r) for r in rows)
    got = 0
    for name, data in files.items():
        with fits.open(io.BytesIO(data)) as hdul:
            t = hdul[1].data
            got += len(t)
            assert {"RA", "DEC", "BRICKNAME", "OBJID", "TYPE", "FLUX_Z", "MW_TRANSMISSION_W1", "FIBERFLUX_Z",
                    "FIBERTOTFLUX_Z", "PSFDEPTH_R", "PSFSIZE_G", "NOBS_G", "MASKBITS",
                    "GAIA_PHOT_G_MEAN_MAG", "SHAPE_R", "SHAPE_E1", "EBV"} <= set(hdul[1].columns.names)
            for ra, dec in zip(t["RA"], t["DEC"]):
                assert f"sweep-{sweeps.sweep_box(ra, dec)}.fits" == name
    assert got == n
    # galaxies keep the mock's objid; every object of a brick has its own
    for plan, r in zip(plans, rows):
        assert len(set(r["OBJID"].tolist())) == len(r)
        gal = {g["objid"] for g in plan["galaxies"]}
        assert gal <= set(r["OBJID"].tolist())


def test_column_units_follow_dr10(written):
    plans, rows, _ = written
    for plan, r in zip(plans, rows):
        gal = r[r["TYPE"] == "DEV"][: len(plan["galaxies"])]
        cond = plan["conditions"]["bands"]
        for b in ("g", "r", "z"):
            # PSFSIZE in arcsec FWHM and PSFDEPTH in 1/nmgy^2, within the +-3 % / +-5 % map ramps
            np.testing.assert_allclose(gal[f"PSFSIZE_{b.upper()}"], cond[b]["fwhm"], rtol=0.04)
            np.testing.assert_allclose(gal[f"PSFDEPTH_{b.upper()}"], cond[b]["psfdepth"], rtol=0.12)
        ebv = plan["conditions"]["ebv"]
        np.testing.assert_allclose(r["MW_TRANSMISSION_R"], 10 ** (-0.4 * 2.165 * ebv), rtol=1e-6)
        np.testing.assert_allclose(r["MW_TRANSMISSION_W1"], 10 ** (-0.4 * 0.184 * ebv), rtol=1e-6)
        # observed fluxes: the mock catalog's observed magnitudes
        for g in plan["galaxies"]:
            row = r[r["OBJID"] == g["objid"]][0]
            assert 22.5 - 2.5 * np.log10(row["FLUX_R"]) == pytest.approx(g["mags"]["r"], abs=1e-5)  # float32 flux


def test_fiber_fraction_matches_a_direct_2d_integration():
    """Against the profile sampled 5 x 5 per 0.03 arcsec pixel, blurred by scipy's Gaussian filter."""
    from scipy.ndimage import gaussian_filter

    pix, n, sub = 0.03, 521, (np.arange(5) + 0.5) / 5 - 0.5
    yy, xx = (np.mgrid[0:n, 0:n] - n // 2) * pix
    inside = np.hypot(xx, yy) <= 0.75
    for re in (0.0, 0.4, 1.2):
        img = np.zeros((n, n))
        if re == 0:
            img[n // 2, n // 2] = 1.0
        else:
            for a in sub:
                for b in sub:
                    x = np.hypot(xx + a * pix, yy + b * pix) / re
                    img += np.exp(-7.669 * (x ** 0.25 - 1.0)) * 0.5 * (1 + np.cos(np.pi * np.clip(x - 4, 0, 1)))
        blurred = gaussian_filter(img, 1.0 / 2.3548200450309493 / pix, mode="constant", truncate=6.0)
        assert sweeps.fiber_fraction(re) == pytest.approx(blurred[inside].sum() / img.sum(), abs=0.005), re


def test_same_plans_give_the_same_bytes(written):
    plans, rows, files = written
    again = sweeps.sweep_files([sweeps.brick_rows(p, sweeps.brick_maps(p)) for p in plans])
    assert again == files
