import numpy as np
import pytest

from dhs.physics.lens import LensBatch
from dhs.physics.psf import psf_kernel
from dhs.physics.raytrace import render_uniform
from dhs.physics.render import (
    WARNING_BITS,
    render_batch,
    stamp_center_offset,
    warning_names,
)
from dhs.physics.source import SersicBatch, TemplateBatch, sersic_amplitude

from .conftest import cosmos_like, lenstronomy_image

PIX = 0.262


def _lenses(rng: np.random.Generator, n: int, **over: np.ndarray) -> LensBatch:
    kw = dict(theta_E=rng.uniform(0.6, 2.0, n), q=rng.uniform(0.4, 1.0, n),
              phi=rng.uniform(0, np.pi, n), gamma=rng.uniform(0, 0.12, n),
              phi_gamma=rng.uniform(0, np.pi, n), center_x=rng.uniform(-0.2, 0.2, n),
              center_y=rng.uniform(-0.2, 0.2, n))
    kw.update(over)
    return LensBatch.from_q_phi(**kw)


def _sersics(rng: np.random.Generator, n: int) -> SersicBatch:
    return SersicBatch.from_q_phi(rng.uniform(0.15, 0.6, n), rng.uniform(0.6, 3.0, n),
                                  rng.uniform(0.4, 1.0, n), rng.uniform(0, np.pi, n),
                                  rng.uniform(-0.4, 0.4, n), rng.uniform(-0.4, 0.4, n))


def _templates(rng: np.random.Generator, n: int, size: int = 48) -> TemplateBatch:
    return TemplateBatch(cosmos_like(rng, n, size=size), rng.uniform(0.03, 0.05, n),
                         rng.uniform(-0.4, 0.4, n), rng.uniform(-0.4, 0.4, n),
                         rng.uniform(-np.pi, np.pi, n))


def _lens_kw(lens: LensBatch, k: int) -> list[dict]:
    return [{"theta_E": lens.theta_E[k], "e1": lens.e1[k], "e2": lens.e2[k], "gamma": 2.0,
             "center_x": lens.center_x[k], "center_y": lens.center_y[k]},
            {"gamma1": lens.gamma1[k], "gamma2": lens.gamma2[k], "ra_0": lens.center_x[k],
             "dec_0": lens.center_y[k]}]


def _light_kw(src: SersicBatch | TemplateBatch, lens: LensBatch, k: int,
              flux: float) -> tuple[str, dict]:
    cx, cy = lens.center_x[k] + src.x[k], lens.center_y[k] + src.y[k]
    if isinstance(src, SersicBatch):
        return "SERSIC_ELLIPSE", {
            "amp": float(sersic_amplitude(flux, src.R_sersic[k], src.n_sersic[k])),
            "R_sersic": src.R_sersic[k], "n_sersic": src.n_sersic[k], "e1": src.e1[k],
            "e2": src.e2[k], "center_x": cx, "center_y": cy}
    t = src.templates[k]
    return "INTERPOL", {"image": t / src.pixscale[k] ** 2, "amp": flux / t.sum(),
                        "center_x": cx, "center_y": cy, "phi_G": src.angle[k],
                        "scale": src.pixscale[k]}


@pytest.mark.parametrize("kind", ["sersic", "template"])
def test_images_match_lenstronomy(kind: str) -> None:
    from lenstronomy.Data.imaging_data import ImageData
    from lenstronomy.Data.psf import PSF
    from lenstronomy.ImSim.image_model import ImageModel
    from lenstronomy.LensModel.lens_model import LensModel
    from lenstronomy.LightModel.light_model import LightModel

    rng = np.random.default_rng(11 if kind == "sersic" else 12)
    n, size, ss = 20, 48, 3
    lens = _lenses(rng, n)
    src = _sersics(rng, n) if kind == "sersic" else _templates(rng, n)
    flux = {"r": rng.uniform(1.0, 50.0, n)}
    fwhm = {"r": rng.uniform(0.9, 1.6, n)}
    res64 = render_batch(lens, src, flux, fwhm, stamp_size=size, supersample=ss,
                         dtype=np.float64)
    res32 = render_batch(lens, src, flux, fwhm, stamp_size=size, supersample=ss,
                         dtype=np.float32)
    c0 = -0.5 * (size - 1) * PIX
    data = ImageData(image_data=np.zeros((size, size)), ra_at_xy_0=c0, dec_at_xy_0=c0,
                     transform_pix2angle=np.eye(2) * PIX)
    for k in range(n):
        name, light_kw = _light_kw(src, lens, k, flux["r"][k])
        kernel = psf_kernel(fwhm["r"][k], PIX, stamp_size=size)
        model = ImageModel(data, PSF(psf_type="PIXEL", kernel_point_source=kernel),
                           lens_model_class=LensModel(["EPL", "SHEAR"]),
                           source_model_class=LightModel([name]),
                           kwargs_numerics={"supersampling_factor": ss,
                                            "supersampling_convolution": False})
        ref = model.image(kwargs_lens=_lens_kw(lens, k), kwargs_source=[light_kw])
        for img, tol in ((res64.images["r"][k], 1e-6), (res32.images["r"][k], 1e-4)):
            rel = np.linalg.norm(img - ref) / np.linalg.norm(ref)
            assert rel <= tol, (k, rel)
        assert abs(res64.images["r"][k].sum() / ref.sum() - 1.0) <= 1e-6
        assert np.linalg.norm(ref) > 0


def test_conftest_oracle_unlensed_template_total() -> None:
    rng = np.random.default_rng(13)
    t = cosmos_like(rng, 1, size=40)[0]
    kernel = psf_kernel(1.2, PIX, stamp_size=48)
    img = lenstronomy_image(None, "INTERPOL", {"image": t / 0.03**2, "amp": 5.0 / t.sum(),
                                               "center_x": 0.0, "center_y": 0.0,
                                               "phi_G": 0.3, "scale": 0.03},
                            kernel, 48, PIX, 5)
    res = render_batch(LensBatch(theta_E=[1e-12], e1=0, e2=0, center_x=0, center_y=0,
                                 gamma1=0, gamma2=0),
                       TemplateBatch(t, 0.03, 0.0, 0.0, 0.3), {"r": np.array([5.0])},
                       {"r": np.array([1.2])}, stamp_size=48, supersample=5,
                       dtype=np.float64)
    assert np.linalg.norm(res.images["r"][0] - img) / np.linalg.norm(img) < 1e-6


@pytest.mark.parametrize("kind", ["sersic", "template"])
def test_adaptive_matches_uniform_at_same_factor(kind: str) -> None:
    rng = np.random.default_rng(14)
    n = 24
    lens = _lenses(rng, n, center_x=np.full(n, 0.131), center_y=np.full(n, 0.131))
    src = _sersics(rng, n) if kind == "sersic" else _templates(rng, n, size=96)
    flux = {"g": np.full(n, 5.0), "r": np.full(n, 10.0)}
    fwhm = {"g": np.full(n, 1.4), "r": np.full(n, 1.2)}
    for ss in (3, 5):
        uni = render_batch(lens, src, flux, fwhm, supersample=ss, dtype=np.float64)
        ada = render_batch(lens, src, flux, fwhm, supersample=ss, adaptive=True,
                           dtype=np.float64)
        for b in flux:
            diff = np.linalg.norm((ada.images[b] - uni.images[b]).reshape(n, -1), axis=1)
            norm = np.linalg.norm(uni.images[b].reshape(n, -1), axis=1)
            assert np.all(diff <= 1e-4 * norm)
        # only where the source's light lands: less than the whole stamp over the batch
        assert ada.metrics["supersampled_pixels"].sum() < 0.75 * n * 64 * 64


def test_sis_magnification_of_compact_source() -> None:
    theta_e = 1.5
    beta = np.array([0.3, 0.5, 0.8])
    n = beta.size
    lens = LensBatch.from_q_phi(theta_E=np.full(n, theta_e), q=1.0, phi=0.0)
    src = SersicBatch.from_q_phi(np.full(n, 0.04), 1.0, 1.0, 0.0, x=beta * 0.6, y=beta * 0.8)
    res = render_batch(lens, src, {"r": np.full(n, 10.0)}, {"r": np.full(n, 1.0)},
                       supersample=15, adaptive=True, dtype=np.float64)
    np.testing.assert_allclose(res.metrics["magnification"], 2 * theta_e / beta, rtol=0.02)
    np.testing.assert_allclose(res.metrics["injected_flux_r"],
                               10.0 * 2 * theta_e / beta, rtol=0.02)
    np.testing.assert_allclose(res.metrics["expected_arc_radius"], theta_e + beta, rtol=1e-6)
    np.testing.assert_allclose(res.metrics["tangential_stretch"], (theta_e + beta) / beta,
                               rtol=1e-6)
    np.testing.assert_allclose(res.metrics["radial_stretch"], 1.0, rtol=1e-9)
    np.testing.assert_allclose(res.metrics["magnification_proxy_1p1"], 11.0, rtol=1e-9)


def test_einstein_ring_peaks_at_theta_e() -> None:
    n = 2
    theta_e = np.array([1.2, 2.0])
    lens = LensBatch.from_q_phi(theta_E=theta_e, q=1.0, phi=0.0)
    src = SersicBatch.from_q_phi(np.full(n, 0.05), 1.0, 1.0, 0.0)
    morph = render_uniform(lens, src, 64, PIX, 9)
    yy, xx = np.mgrid[:64, :64] - 31.5
    r = np.hypot(xx, yy) * PIX
    edges = np.arange(PIX, 4.0, PIX / 2)
    for k in range(n):
        prof = np.array([morph[k][(r >= a) & (r < b)].mean() if ((r >= a) & (r < b)).any()
                         else np.nan for a, b in zip(edges[:-1], edges[1:])])
        i = int(np.nanargmax(prof))
        peak = 0.5 * (edges[i] + edges[i + 1])
        assert abs(peak - theta_e[k]) <= 0.5 * PIX


def test_controls_and_edge_cases_are_finite() -> None:
    rng = np.random.default_rng(15)
    n = 6
    lens = LensBatch.from_q_phi(theta_E=[0.0, 1.2, 0.05, 1.0, 0.0, 1.5], q=[1.0, 1.0, 0.7, 0.8,
                                0.5, 0.6], phi=0.3, gamma=[0.0, 0.0, 0.05, 0.0, 0.1, 0.0])
    t = cosmos_like(rng, n, size=64, noise=0.05)
    assert (t < 0).any()
    sx = np.array([0.1, 0.0, 0.1, 30.0, 0.0, 0.2])
    sy = np.array([0.0, 0.1, 0.0, 30.0, 0.0, 0.0])
    src = TemplateBatch(t, 0.03, sx, sy, 0.0)
    ser = SersicBatch.from_q_phi(np.full(n, 0.3), 1.0, 0.7, 0.2, x=sx, y=sy)
    flux = {b: np.full(n, 8.0) for b in "grz"}
    fwhm = {b: np.full(n, 1.3) for b in "grz"}
    for s in (src, ser):
        res = render_batch(lens, s, flux, fwhm)
        for b in "grz":
            img = res.images[b]
            assert np.all(np.isfinite(img))
            assert not img[0].any() and not img[4].any()
            assert img[1].sum() > 8.0 and img[5].sum() > 8.0
            assert 8.0 < img[2].sum() < 1.5 * 8.0
        for key, val in res.metrics.items():
            assert np.all(np.isfinite(val)), key
        w = res.metrics["physics_warnings"]
        assert "control" in warning_names(w[0]) and "control" in warning_names(w[4])
        assert not w[1] & WARNING_BITS["control"]
        assert res.metrics["injected_flux_r"][0] == 0.0
        assert res.metrics["magnification"][3] < 1e-3
    assert res.metrics["tangential_stretch"][3] == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("kind", ["sersic", "template"])
def test_stamp_alone_equals_stamp_in_batch(kind: str) -> None:
    rng = np.random.default_rng(16)
    n = 64
    lens = _lenses(rng, n)
    src = _sersics(rng, n) if kind == "sersic" else _templates(rng, n, size=96)
    flux = {b: rng.uniform(1, 20, n) for b in "grz"}
    fwhm = {b: rng.uniform(0.8, 2.2, n) for b in "grz"}
    full = render_batch(lens, src, flux, fwhm)
    for k in (0, 17, 63):
        idx = np.array([k])
        one = render_batch(lens.take(idx), src.take(idx), {b: v[idx] for b, v in flux.items()},
                           {b: v[idx] for b, v in fwhm.items()})
        for b in "grz":
            assert np.array_equal(one.images[b][0], full.images[b][k])
        for key in full.metrics:
            assert np.array_equal(one.metrics[key][0], full.metrics[key][k]), key


def test_stamp_center_offset_puts_lens_on_central_pixel() -> None:
    assert stamp_center_offset(64, PIX) == (pytest.approx(0.131), pytest.approx(0.131))
    assert stamp_center_offset(33, PIX) == (0.0, 0.0)
    cx, cy = stamp_center_offset(64, PIX)
    lens = LensBatch.from_q_phi(theta_E=[1.0], q=1.0, phi=0.0, center_x=cx, center_y=cy)
    src = SersicBatch.from_q_phi([0.1], 1.0, 1.0, 0.0)
    morph = render_uniform(lens, src, 64, PIX, 5)[0]
    assert morph[32, 33] == pytest.approx(morph[32, 31], rel=1e-9)
    assert morph[33, 32] == pytest.approx(morph[31, 32], rel=1e-9)


def test_bad_render_parameters_raise() -> None:
    rng = np.random.default_rng(17)
    n = 4
    lens = _lenses(rng, n)
    src = _sersics(rng, n)
    flux = {"r": np.full(n, 5.0)}
    fwhm = {"r": np.array([1.0, 1.0, 0.0, 1.0])}
    with pytest.raises(ValueError, match=r"psf_fwhm\['r'\]\[2\]"):
        render_batch(lens, src, flux, fwhm)
    with pytest.raises(ValueError, match=r"band_flux\['r'\]\[1\]"):
        render_batch(lens, src, {"r": np.array([1.0, np.nan, 1.0, 1.0])}, {"r": np.ones(n)})
    with pytest.raises(ValueError, match="supersample"):
        render_batch(lens, src, flux, {"r": np.ones(n)}, supersample=0)
    with pytest.raises(ValueError, match="psf_model"):
        render_batch(lens, src, flux, {"r": np.ones(n)}, psf_model="airy")
    with pytest.raises(ValueError, match=r"theta_E\[3\]"):
        LensBatch(theta_E=[1, 1, 1, np.nan], e1=0, e2=0, center_x=0, center_y=0, gamma1=0,
                  gamma2=0)


def test_kernel_width_and_cap_follow_the_psf_settings() -> None:
    """psf.kernel_fwhm_multiple / psf.max_kernel_pix size the kernel the renderer convolves with:
    lenstronomy convolving with a kernel of that size agrees, the default size does not."""
    from lenstronomy.Data.imaging_data import ImageData
    from lenstronomy.Data.psf import PSF
    from lenstronomy.ImSim.image_model import ImageModel
    from lenstronomy.LensModel.lens_model import LensModel
    from lenstronomy.LightModel.light_model import LightModel

    rng = np.random.default_rng(21)
    n, size, ss = 4, 48, 3
    lens, src = _lenses(rng, n), _sersics(rng, n)
    flux, fwhm = {"r": rng.uniform(5.0, 50.0, n)}, {"r": rng.uniform(1.2, 1.6, n)}
    wide = render_batch(lens, src, flux, fwhm, stamp_size=size, supersample=ss, dtype=np.float64,
                        kernel_fwhm_multiple=9.0, max_kernel_pix=41)
    default = render_batch(lens, src, flux, fwhm, stamp_size=size, supersample=ss, dtype=np.float64)
    c0 = -0.5 * (size - 1) * PIX
    data = ImageData(image_data=np.zeros((size, size)), ra_at_xy_0=c0, dec_at_xy_0=c0,
                     transform_pix2angle=np.eye(2) * PIX)
    for k in range(n):
        name, light_kw = _light_kw(src, lens, k, flux["r"][k])
        kernel = psf_kernel(fwhm["r"][k], PIX, stamp_size=size, fwhm_multiple=9.0, max_pix=41)
        assert kernel.shape == (41, 41)  # 9 FWHM would be wider than 41 pixels: capped
        model = ImageModel(data, PSF(psf_type="PIXEL", kernel_point_source=kernel),
                           lens_model_class=LensModel(["EPL", "SHEAR"]),
                           source_model_class=LightModel([name]),
                           kwargs_numerics={"supersampling_factor": ss, "supersampling_convolution": False})
        ref = model.image(kwargs_lens=_lens_kw(lens, k), kwargs_source=[light_kw])
        img = wide.images["r"][k]
        assert np.linalg.norm(img - ref) / np.linalg.norm(ref) <= 1e-6
        assert np.linalg.norm(default.images["r"][k] - ref) / np.linalg.norm(ref) > 1e-4
        assert "psf_kernel_capped" in warning_names(int(wide.metrics["physics_warnings"][k]))
        assert "psf_kernel_capped" not in warning_names(int(default.metrics["physics_warnings"][k]))
