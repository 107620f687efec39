"""Unit checks: depths in 5-sigma AB magnitudes vs 1/nmgy^2, PSF FWHM in arcsec vs pixels."""

from __future__ import annotations

import numpy as np
import pytest

from dhs.errors import DhsError
from dhs.parent import units

WHERE = "bricks table /data/survey-bricks.fits"


def test_magnitude_depth_is_recognised_and_converted():
    # the DR10 per-brick summary gives 5-sigma depths in AB mag (24.5 in r)
    mags = np.array([24.5, 24.1, 23.8, 24.9, 0.0, np.nan])
    ivar, chk = units.depth_to_ivar(mags, "psfdepth_r", WHERE)
    assert chk.unit == "mag" and chk.converted
    # 5-sigma flux 5 / sqrt(ivar) nmgy is 24.5 mag: 22.5 - 2.5 log10(5 / sqrt(ivar)) = 24.5
    assert ivar[0] == pytest.approx(25.0 * 10 ** (0.8 * 2.0))
    assert 22.5 - 2.5 * np.log10(5 / np.sqrt(ivar[0])) == pytest.approx(24.5)
    assert ivar[4] == 0.0 and ivar[5] == 0.0  # no data stays no data
    assert "psfdepth_r" in chk.note(WHERE) and WHERE in chk.note(WHERE)


def test_inverse_variance_depth_is_kept():
    ivar = units.mag_to_ivar(np.linspace(22.6, 25.0, 50))  # 28 ... 2500 / nmgy^2
    out, chk = units.depth_to_ivar(ivar, "psfdepth_z", WHERE)
    assert chk.unit == "1/nmgy^2" and not chk.converted
    np.testing.assert_array_equal(out, ivar)


def test_shallow_inverse_variances_are_not_taken_for_magnitudes():
    # z-band depths 22.0-23.0 mag as inverse variances: 16 ... 63 /nmgy^2, half of them in [18, 30]
    ivar = units.mag_to_ivar(np.linspace(22.0, 23.0, 40))
    _, chk = units.depth_to_ivar(ivar, "psfdepth_z", WHERE)
    assert chk.unit == "1/nmgy^2"


def test_mixed_depth_column_is_refused_naming_file_and_column():
    mixed = np.concatenate([np.full(30, 24.5), units.mag_to_ivar(np.full(30, 24.8))])
    with pytest.raises(units.InputUnitError) as exc:
        units.depth_to_ivar(mixed, "psfdepth_r", WHERE)
    assert isinstance(exc.value, DhsError)
    assert "psfdepth_r" in str(exc.value) and WHERE in str(exc.value)


def test_depth_columns_of_one_table_must_agree():
    cols = {"psfdepth_g": np.array([24.9, 25.1]), "psfdepth_r": units.mag_to_ivar(np.array([24.2, 24.6]))}
    with pytest.raises(units.InputUnitError, match="psfdepth_g"):
        units.check_depth_columns(cols, WHERE)
    same = {"psfdepth_g": np.array([24.9, 25.1]), "psfdepth_r": np.array([24.4, 24.6])}
    out, checks = units.check_depth_columns(same, WHERE)
    assert all(c.unit == "mag" for c in checks)
    assert out["psfdepth_g"][0] == pytest.approx(units.mag_to_ivar(24.9))


def test_forced_units_override_the_rule():
    ivar_like_mag = np.full(5, 24.0)  # an inverse variance of 24 /nmgy^2 everywhere
    out, chk = units.depth_to_ivar(ivar_like_mag, "psfdepth_z", WHERE, units="ivar")
    assert not chk.converted and out[0] == 24.0
    with pytest.raises(units.InputUnitError, match="depth units"):
        units.depth_to_ivar(ivar_like_mag, "psfdepth_z", WHERE, units="nanomaggies")


def test_ivar_mag_round_trip():
    m = np.array([22.0, 23.5, 25.25])
    np.testing.assert_allclose(units.ivar_to_mag(units.mag_to_ivar(m)), m, rtol=0, atol=1e-12)


def test_psfsize_arcsec_kept_and_pixels_converted():
    arcsec = np.array([0.9, 1.1, 1.3, 1.6, 2.4, 0.0])
    out, chk = units.psfsize_to_arcsec(arcsec, "psfsize_r", WHERE, 0.262)
    assert chk.unit == "arcsec" and not chk.converted
    np.testing.assert_array_equal(out, arcsec)
    pix = arcsec[:-1] / 0.262  # 3.4 ... 9.2 pixels
    out, chk = units.psfsize_to_arcsec(pix, "psfsize_r", WHERE, 0.262)
    assert chk.unit == "pixel" and chk.converted
    np.testing.assert_allclose(out, arcsec[:-1])


@pytest.mark.parametrize("values", [np.full(10, 3.15), np.full(10, 0.2), np.full(10, 40.0)])
def test_psfsize_of_unknown_unit_is_refused(values):
    with pytest.raises(units.InputUnitError) as exc:
        units.psfsize_to_arcsec(values, "psfsize_g", WHERE, 0.262)
    assert "psfsize_g" in str(exc.value) and WHERE in str(exc.value) and "arcsec" in str(exc.value)
