"""Injection priors: drawn values inside the documented ranges with the documented shapes, the
lens oriented by the galaxy's light, the earlier system's draws unchanged, and on the embedded
survey arcs fainter than their lenses with SNRs across the recovery transition."""

from __future__ import annotations

import numpy as np
import pytest

from dhs import draws
from dhs.stages import layout
from dhs.io import datasets as dio
from dhs.manifest import priors as P
from dhs.stages.settings import grid as grid_settings
from tests.helpers import compose_config, run_experiment

KEY = draws.mix(np.arange(20000, dtype=np.uint64))
PRI = P.Priors()


def test_source_magnitudes_follow_the_number_count_slope_inside_the_range():
    m = P.source_mag_r(KEY, PRI, 42)
    lo, hi = PRI.src_mag_r_range
    assert m.min() >= lo and m.max() <= hi and (lo, hi) == (22.0, 25.5)
    assert np.mean(m > 25.0) == pytest.approx(0.5 / 3.5, abs=0.015)  # uniform by default
    # field-count weighting p(m) ~ 10**(0.3 m) on [22.5, 26]: P(m > 25) = (1 - 10**-0.3) / (1 - 10**-1.05)
    counts = P.source_mag_r(KEY, P.Priors(src_mag_r_range=(22.5, 26.0), src_mag_count_slope=0.3), 42)
    assert counts.min() >= 22.5 and counts.max() <= 26.0
    assert np.mean(counts > 25.0) == pytest.approx((1 - 10**-0.3) / (1 - 10**-1.05), abs=0.015)


def test_source_sizes_are_log_normal_and_truncated():
    r = P.source_reff(KEY, PRI, 42)
    assert r.min() >= PRI.src_reff_range[0] and r.max() <= PRI.src_reff_range[1]
    assert np.median(r) == pytest.approx(PRI.src_reff_median, rel=0.03)
    assert np.std(np.log10(r)) == pytest.approx(PRI.src_reff_sigma_dex, rel=0.08)


def test_lens_axis_ratio_prior_and_uniform_angle():
    e, pa = P.lens_shape(KEY, PRI, 42, "prior")
    q = (1 - e) / (1 + e)
    assert q.min() >= PRI.lens_q_range[0] - 1e-12 and q.max() <= PRI.lens_q_range[1] + 1e-12
    assert np.mean(q) == pytest.approx(0.78, abs=0.02)
    assert pa.min() >= 0 and pa.max() < np.pi and abs(np.mean(pa) - np.pi / 2) < 0.05


def test_lens_follows_the_light_with_the_documented_scatter():
    n = len(KEY)
    q_light, pa_light = 0.7, np.deg2rad(35.0)
    e = (1 - q_light) / (1 + q_light)
    e1, e2 = np.full(n, e * np.cos(2 * pa_light)), np.full(n, e * np.sin(2 * pa_light))
    e1[:100], e2[:100] = 0.0, 0.0    # round (REX/PSF): the prior
    e1[100:200] = np.nan             # no shape: the prior
    lens_e, pa = P.lens_shape(KEY, PRI, 42, "light", e1, e2)
    q = (1 - lens_e) / (1 + lens_e)
    lit = slice(200, None)
    assert np.median(q[lit] / q_light) == pytest.approx(1.0, abs=0.01)
    assert np.std(q[lit] / q_light) == pytest.approx(PRI.lens_q_light_scatter, rel=0.1)
    dpa = np.rad2deg((pa[lit] - pa_light + np.pi / 2) % np.pi - np.pi / 2)
    assert np.std(dpa) == pytest.approx(PRI.lens_pa_light_scatter_deg, rel=0.05)
    prior_e, prior_pa = P.lens_shape(KEY, PRI, 42, "prior")
    assert np.array_equal(lens_e[:200], prior_e[:200]) and np.array_equal(pa[:200], prior_pa[:200])


def test_uniform_mode_reproduces_the_earlier_draws():
    d = draws.frozen_draws(KEY, np.ones(len(KEY)), 42)
    e, pa = P.lens_shape(KEY, PRI, 42, "uniform")
    assert np.array_equal(e, d["lens_e"]) and np.array_equal(pa, d["lens_phi_rad"])


def test_shipped_grids_cover_observed_einstein_radii():
    for name in ("grid_lenses", "grid_lenses_small"):
        g = grid_settings(compose_config([f"grid={name}"]))
        assert g.theta_e.min() == pytest.approx(0.8) and g.theta_e.max() == pytest.approx(3.0)
        assert np.median(np.unique(g.theta_e)) >= 1.2  # SLACS median 1.23 arcsec
        assert g.source_mag == "prior" and g.lens_shape == "light"
        assert "_dmprior_rfprior_" in g.config_ids[0]
    old = grid_settings(compose_config(["grid=grid_medium"]))
    assert old.config_ids[0] == "grid_medium_0000_te0.25_dm0.5_rf0.05_e0.0_sh0.0"


@pytest.fixture(scope="module")
def sersic_run(mini_base):
    over = [*mini_base, "stage=4c", "source=sersic", "inject.run_name=priors_test"]
    cfg, exp = run_experiment(over)
    return cfg, dio.read_dataset(layout.metrics_dir(cfg, exp)).to_pandas()


def test_embedded_survey_arcs_are_fainter_than_lenses_and_span_the_snr_transition(sersic_run):
    cfg, m = sersic_run
    assert cfg.grid.name == "grid_lenses_small"
    inj = m[(m.is_control == 0) & (m.metrics_ok == 1)]
    assert len(inj) >= 100
    lens_flux = 10 ** (-0.4 * (inj.rmag - 22.5))
    fainter = np.mean(inj.injected_flux_r < lens_flux)
    assert fainter > 0.6, fainter
    snr = inj.arc_snr.to_numpy()
    assert np.mean(snr < 5) > 0.15 and np.mean(snr > 20) > 0.15, np.percentile(snr, [10, 25, 50, 75, 90])
    # drawn quantities stay inside their documented ranges
    assert inj.src_mag_r.between(22.0, 25.5).all() and inj.src_reff_arcsec.between(0.05, 1.0).all()
    q = (1 - inj.lens_e) / (1 + inj.lens_e)
    assert q.between(0.5 - 1e-9, 0.99 + 1e-9).all()
    assert np.allclose(inj.src_dmag, inj.src_mag_r - inj.rmag)
