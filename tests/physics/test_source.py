import numpy as np
import pytest

from dhs.physics.render import render_unlensed
from dhs.physics.source import SersicBatch, TemplateBatch, bilinear_lookup, sersic_sb

from .conftest import cosmos_like


def test_sersic_matches_lenstronomy_and_integrates_to_flux() -> None:
    from lenstronomy.LightModel.light_model import LightModel

    rng = np.random.default_rng(4)
    n = 12
    src = SersicBatch.from_q_phi(rng.uniform(0.1, 1.0, n), rng.uniform(0.5, 6.0, n),
                                 rng.uniform(0.3, 1.0, n), rng.uniform(0, np.pi, n),
                                 rng.uniform(-1, 1, n), rng.uniform(-1, 1, n))
    amp, bn, inv_n = src.profile_params()
    light = LightModel(["SERSIC_ELLIPSE"])
    x, y = rng.uniform(-3, 3, (2, 300))
    for k in range(n):
        u, v = src.take(np.array([k])).frame(x - src.x[k], y - src.y[k])
        ours = sersic_sb(np.hypot(u, v), src.R_sersic[k], amp[k], bn[k], inv_n[k])
        ref = light.surface_brightness(x, y, [{
            "amp": amp[k], "R_sersic": src.R_sersic[k], "n_sersic": src.n_sersic[k],
            "e1": src.e1[k], "e2": src.e2[k], "center_x": src.x[k], "center_y": src.y[k]}])
        np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-300)
        assert light.total_flux([{"amp": amp[k], "R_sersic": src.R_sersic[k],
                                  "n_sersic": src.n_sersic[k], "e1": src.e1[k],
                                  "e2": src.e2[k]}])[0] == pytest.approx(1.0, rel=1e-12)


def test_template_lookup_matches_lenstronomy_interpol() -> None:
    from lenstronomy.LightModel.light_model import LightModel

    rng = np.random.default_rng(5)
    t = cosmos_like(rng, 3, size=40)
    scale = np.array([0.03, 0.05, 0.04])
    src = TemplateBatch(t, scale, rng.uniform(-1, 1, 3), rng.uniform(-1, 1, 3),
                        rng.uniform(-3, 3, 3))
    x, y = rng.uniform(-1.5, 1.5, (2, 2000))
    for k in range(3):
        c, s = np.cos(src.angle[k]) / scale[k], np.sin(src.angle[k]) / scale[k]
        dx, dy = x - src.x[k], y - src.y[k]
        ours = bilinear_lookup(src.padded_sb, np.full(x.shape, k), c * dx + s * dy,
                               -s * dx + c * dy)
        light = LightModel(["INTERPOL"])
        ref = light.surface_brightness(x, y, [{
            "image": t[k] / scale[k] ** 2, "amp": 1.0 / t[k].sum(), "center_x": src.x[k],
            "center_y": src.y[k], "phi_G": src.angle[k], "scale": scale[k]}])
        np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-12 * np.abs(ref).max())
        assert np.count_nonzero(ours) > 100


def _flux_setup(n: int) -> tuple[dict, dict]:
    return ({"g": np.full(n, 3.0), "r": np.full(n, 7.5), "z": np.full(n, 12.0)},
            {"g": np.full(n, 1.5), "r": np.full(n, 1.3), "z": np.full(n, 1.2)})


def test_unlensed_flux_conservation_default_supersampling() -> None:
    rng = np.random.default_rng(6)
    n = 8
    flux, fwhm = _flux_setup(n)
    ser = SersicBatch.from_q_phi(rng.uniform(0.25, 0.6, n), rng.uniform(0.5, 1.5, n),
                                 rng.uniform(0.4, 1.0, n), rng.uniform(0, np.pi, n))
    tpl = TemplateBatch(cosmos_like(rng, n), 0.03, rng.uniform(-0.3, 0.3, n),
                        rng.uniform(-0.3, 0.3, n), rng.uniform(0, 2 * np.pi, n))
    for src in (ser, tpl):
        res = render_unlensed(src, flux, fwhm, stamp_size=96)
        for b in flux:
            ratio = res.images[b].sum(axis=(1, 2), dtype=np.float64) / flux[b]
            np.testing.assert_allclose(ratio, 1.0, atol=5e-3)
            np.testing.assert_allclose(res.metrics[f"injected_flux_{b}"] / flux[b], ratio,
                                       rtol=1e-6)


def test_cosmos_units_trap_flux_per_pixel_sums_to_requested_flux() -> None:
    """A template in flux per pixel at 0.03 arcsec: the rendered arc must not be 1111x
    too faint (INTERPOL surface brightness vs flux per pixel)."""
    rng = np.random.default_rng(7)
    t = cosmos_like(rng, 2, size=96) * 123.0
    flux = {"r": np.array([10.0, 0.25])}
    fwhm = {"r": np.array([1.2, 1.4])}
    src = TemplateBatch(t, 0.03, 0.0, 0.0, 0.0)
    res = render_unlensed(src, flux, fwhm, stamp_size=64)
    total = res.images["r"].sum(axis=(1, 2), dtype=np.float64)
    np.testing.assert_allclose(total, flux["r"], rtol=5e-3)
    scaled = render_unlensed(TemplateBatch(t / 1e4, 0.03, 0.0, 0.0, 0.0), flux, fwhm)
    np.testing.assert_allclose(scaled.images["r"], res.images["r"], rtol=1e-5, atol=1e-9)


def test_bad_source_parameters_raise() -> None:
    with pytest.raises(ValueError, match=r"R_sersic\[1\]"):
        SersicBatch.from_q_phi([0.3, -0.1], 1.0, 0.8, 0.0)
    with pytest.raises(ValueError, match=r"q\[0\]"):
        SersicBatch.from_q_phi([0.3, 0.2], 1.0, [0.0, 0.5], 0.0)
    with pytest.raises(ValueError, match=r"n_sersic\[1\]"):
        SersicBatch.from_q_phi([0.3, 0.2], [1.0, np.nan], 0.5, 0.0)
    t = np.ones((3, 8, 8))
    t[2, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"templates\[2\]"):
        TemplateBatch(t, 0.03, 0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match=r"pixscale\[1\]"):
        TemplateBatch(np.ones((2, 8, 8)), [0.03, 0.0], 0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match=r"templates\[0\] sums"):
        TemplateBatch(np.zeros((2, 8, 8)), 0.03, 0.0, 0.0, 0.0)
