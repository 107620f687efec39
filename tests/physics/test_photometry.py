import numpy as np
import pytest

from dhs.physics.photometry import (
    EXTINCTION_R,
    band_fluxes,
    band_mags,
    extinction_mag,
    mag_to_nmgy,
    nmgy_to_mag,
)


def test_zero_point_and_round_trip() -> None:
    assert mag_to_nmgy(22.5) == pytest.approx(1.0)
    assert mag_to_nmgy(20.0) == pytest.approx(10.0)
    m = np.linspace(15, 28, 20)
    np.testing.assert_allclose(nmgy_to_mag(mag_to_nmgy(m)), m, rtol=1e-12)
    assert nmgy_to_mag(0.0) == np.inf


def test_colors_to_band_fluxes() -> None:
    mags = band_mags(np.array([21.0, 22.0]), {"g-r": 0.8, "r-z": np.array([0.5, 0.3])})
    np.testing.assert_allclose(mags["g"], [21.8, 22.8])
    np.testing.assert_allclose(mags["z"], [20.5, 21.7])
    flux = band_fluxes(21.0, {"g-r": 1.0, "r-z": 0.0})
    assert flux["g"][0] == pytest.approx(mag_to_nmgy(22.0))
    assert flux["z"][0] == pytest.approx(flux["r"][0])


def test_extinction_dims_flux() -> None:
    assert EXTINCTION_R == {"g": 3.214, "r": 2.165, "i": 1.592, "z": 1.211}
    f0 = band_fluxes(20.0, {"g-r": 0.5, "r-z": 0.5})
    f1 = band_fluxes(20.0, {"g-r": 0.5, "r-z": 0.5}, ebv=0.1)
    for b in "grz":
        assert f1[b][0] == pytest.approx(f0[b][0] * 10 ** (-0.4 * EXTINCTION_R[b] * 0.1))
    assert extinction_mag("g", 0.05) == pytest.approx(0.1607)


def test_bad_photometry_inputs() -> None:
    with pytest.raises(ValueError, match=r"mag_r\[1\]"):
        band_fluxes(np.array([20.0, np.nan]), {"g-r": 0.5, "r-z": 0.5})
    with pytest.raises(ValueError, match="band 'i'"):
        band_fluxes(20.0, {"g-r": 0.5}, bands=("g", "r", "i"))
    with pytest.raises(ValueError, match=r"ebv\[0\]"):
        band_fluxes(20.0, {"g-r": 0.5, "r-z": 0.5}, ebv=-0.1)
