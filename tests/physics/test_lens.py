import numpy as np
import pytest

from dhs.physics.lens import (
    LensBatch,
    deflection,
    hessian,
    image_position,
    local_lensing,
    ray_shoot,
)


def _random_lenses(rng: np.random.Generator, n: int) -> LensBatch:
    return LensBatch.from_q_phi(
        theta_E=rng.uniform(0.3, 3.0, n), q=rng.uniform(0.2, 1.0, n),
        phi=rng.uniform(-np.pi, np.pi, n), gamma=rng.uniform(0.0, 0.2, n),
        phi_gamma=rng.uniform(-np.pi, np.pi, n), center_x=rng.uniform(-0.3, 0.3, n),
        center_y=rng.uniform(-0.3, 0.3, n))


def _lenstronomy_kwargs(lens: LensBatch, k: int, profile: str) -> list[dict]:
    main = {"theta_E": lens.theta_E[k], "e1": lens.e1[k], "e2": lens.e2[k],
            "center_x": lens.center_x[k], "center_y": lens.center_y[k]}
    if profile == "EPL":
        main["gamma"] = 2.0
    shear = {"gamma1": lens.gamma1[k], "gamma2": lens.gamma2[k],
             "ra_0": lens.center_x[k], "dec_0": lens.center_y[k]}
    return [main, shear]


def test_deflection_and_jacobian_match_lenstronomy() -> None:
    """Oracle: lenstronomy EPL with gamma = 2 (the SIE, analytic deflection and Hessian).

    lenstronomy's "SIE" is an NIE with a 1e-10 arcsec core and a finite-difference
    Hessian; it is checked at its own accuracy.
    """
    from lenstronomy.LensModel.lens_model import LensModel

    rng = np.random.default_rng(1)
    n_lens, n_pts = 25, 48
    lens = _random_lenses(rng, n_lens)
    round_ = np.arange(n_lens) < 2
    lens = LensBatch(**{**lens.__dict__, "e1": np.where(round_, 0.0, lens.e1),
                        "e2": np.where(round_, 0.0, lens.e2)})
    x = rng.uniform(-5, 5, (n_lens, n_pts))
    y = rng.uniform(-5, 5, (n_lens, n_pts))
    ax, ay = deflection(lens, x, y)
    fxx, fxy, fyy = hessian(lens, x, y)
    epl = LensModel(["EPL", "SHEAR"])
    sie = LensModel(["SIE", "SHEAR"])
    worst = {"alpha": 0.0, "hess": 0.0, "sie_alpha": 0.0, "sie_hess": 0.0}
    for k in range(n_lens):
        kw = _lenstronomy_kwargs(lens, k, "EPL")
        lx, ly = epl.alpha(x[k], y[k], kw)
        hxx, hxy, _hyx, hyy = epl.hessian(x[k], y[k], kw)
        worst["alpha"] = max(worst["alpha"], np.abs(ax[k] - lx).max(), np.abs(ay[k] - ly).max())
        worst["hess"] = max(worst["hess"], np.abs(fxx[k] - hxx).max(),
                            np.abs(fxy[k] - hxy).max(), np.abs(fyy[k] - hyy).max())
        kw = _lenstronomy_kwargs(lens, k, "SIE")
        lx, ly = sie.alpha(x[k], y[k], kw)
        hxx, hxy, _hyx, hyy = sie.hessian(x[k], y[k], kw)
        worst["sie_alpha"] = max(worst["sie_alpha"], np.abs(ax[k] - lx).max(),
                                 np.abs(ay[k] - ly).max())
        worst["sie_hess"] = max(worst["sie_hess"], np.abs(fxx[k] - hxx).max(),
                                np.abs(fxy[k] - hxy).max(), np.abs(fyy[k] - hyy).max())
    assert n_lens * n_pts >= 1000
    assert worst["alpha"] <= 1e-10
    assert worst["hess"] <= 1e-10
    assert worst["sie_alpha"] <= 1e-7
    assert worst["sie_hess"] <= 1e-4


def test_round_limit_is_sis() -> None:
    x = np.array([[0.3, -1.2, 2.0, 0.0]])
    y = np.array([[0.4, 0.5, -2.0, 1e-3]])
    sis = LensBatch.from_q_phi(theta_E=[1.3], q=[1.0], phi=[0.4])
    ax, ay = deflection(sis, x, y)
    r = np.hypot(x, y)
    np.testing.assert_allclose(np.hypot(ax, ay), 1.3, rtol=1e-14)
    np.testing.assert_allclose(ax, 1.3 * x / r, rtol=1e-14)
    near = LensBatch.from_q_phi(theta_E=[1.3], q=[1.0 - 1e-12], phi=[0.4])
    bx, by = deflection(near, x, y)
    np.testing.assert_allclose(bx, ax, atol=1e-10)
    np.testing.assert_allclose(by, ay, atol=1e-10)
    loc = local_lensing(sis, x, y)
    np.testing.assert_allclose(loc.kappa, 1.3 / (2 * r), rtol=1e-12)
    np.testing.assert_allclose(loc.gamma, 1.3 / (2 * r), rtol=1e-12)
    np.testing.assert_allclose(loc.eig_tangential, 1 - 1.3 / r, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(loc.eig_radial, 1.0, atol=1e-12)
    assert np.all(np.isfinite(deflection(sis, np.zeros((1, 1)), np.zeros((1, 1)))))


def test_convergence_formula_and_magnification() -> None:
    rng = np.random.default_rng(2)
    lens = LensBatch.from_q_phi(theta_E=[1.5], q=[0.6], phi=[0.0])
    x, y = rng.uniform(-3, 3, (2, 1, 200))
    loc = local_lensing(lens, x, y)
    expect = 1.5 / (2 * np.sqrt(0.6 * x**2 + y**2 / 0.6))
    np.testing.assert_allclose(loc.kappa, expect, rtol=1e-12)
    np.testing.assert_allclose(loc.det_a, loc.eig_tangential * loc.eig_radial, rtol=1e-9,
                               atol=1e-12)


def test_image_position_solves_lens_equation() -> None:
    rng = np.random.default_rng(3)
    lens = _random_lenses(rng, 50)
    bx = lens.center_x + rng.uniform(-0.5, 0.5, 50)
    by = lens.center_y + rng.uniform(-0.5, 0.5, 50)
    xi, yi, res = image_position(lens, bx, by)
    sx, sy = ray_shoot(lens, xi, yi)
    assert np.all(res < 1e-9)
    np.testing.assert_allclose(sx, bx, atol=1e-9)
    np.testing.assert_allclose(sy, by, atol=1e-9)
    r_img = np.hypot(xi - lens.center_x, yi - lens.center_y)
    assert np.all(r_img > 0.5 * lens.theta_E)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"theta_E": [1.0, 1.0, np.nan], "q": 0.8, "phi": 0.0}, r"theta_E\[2\]"),
        ({"theta_E": [1.0, -1.0], "q": 0.8, "phi": 0.0}, r"theta_E\[1\]"),
        ({"theta_E": [1.0, 1.0], "q": [0.5, 0.0], "phi": 0.0}, r"q\[1\]"),
        ({"theta_E": [1.0, 1.0], "q": [1.2, 0.5], "phi": 0.0}, r"q\[0\]"),
        ({"theta_E": [1.0, 1.0], "q": 0.5, "phi": [0.0, np.inf]}, r"phi\[1\]"),
        ({"theta_E": [1.0, 1.0], "q": 0.5, "phi": 0.0, "gamma": [-0.1, 0.0]}, r"gamma\[0\]"),
    ],
)
def test_bad_lens_parameters_raise(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        LensBatch.from_q_phi(**kwargs)
