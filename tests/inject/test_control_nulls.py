"""Controls on a real small run (4a, 4c, validate, 4d): nulls where no lens, source or arc applies,
and the cutout unchanged; injections carry every such value."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pytest

from dhs import schema
from dhs.io import datasets as dio
from dhs.stages import layout
from tests.helpers import compose_config, run_stage


@pytest.fixture(scope="module")
def ctrl_run(mini_base):
    over = [*mini_base, "variant=ctrl_test", "tier.control_frac=0.2", "output.save_arc=true"]
    run_stage([*over, "stage=4a"])  # a paired-control manifest in this variant
    run_stage([*over, "stage=4c"])
    cfg = compose_config([*over, "stage=4c"])
    exp = layout.experiment_ids(cfg)[0]
    return over, cfg, exp


def _arrays(table, name, size):
    flat = np.asarray(pc.list_flatten(table.column(name)).to_numpy(zero_copy_only=False))
    return flat.reshape(table.num_rows, -1, size, size)


def test_manifest_controls_are_null_injections_are_not(ctrl_run):
    _, cfg, exp = ctrl_run
    t = dio.read_dataset(layout.manifest_dir(cfg, exp))
    ctrl = t.column("is_control").to_numpy() == 1
    assert 0 < ctrl.sum() < t.num_rows
    for col in schema.MANIFEST_CONTROL_NULL:
        valid = t.column(col).is_valid().to_numpy(zero_copy_only=False)
        assert not valid[ctrl].any(), col
        assert valid[~ctrl].all() and np.isfinite(t.column(col).to_numpy()[~ctrl]).all(), col
    # the lens galaxy's own columns stay on a control
    for col in ("ra", "dec", "rmag", "psfsize_r", "psfdepth_r", "psf_bin", "task_seed64"):
        assert t.column(col).null_count == 0, col


def test_metrics_controls_are_null_injections_are_not(ctrl_run):
    _, cfg, exp = ctrl_run
    m = dio.read_dataset(layout.metrics_dir(cfg, exp)).to_pandas()
    ctrl = m[m.is_control == 1]
    inj = m[(m.is_control == 0) & (m.metrics_ok == 1)]
    assert len(ctrl) > 0 and (ctrl.cutout_ok == 1).all() and (ctrl.metrics_ok == 1).all() and len(inj) > 0
    cols = schema.control_null_columns(cfg.bands)
    assert set(cols) <= set(m.columns)
    for col in cols:
        assert ctrl[col].isna().all(), col
    for col in schema.MANIFEST_CONTROL_NULL + schema.METRICS_INJECTION_SET + ("injected_flux_r", "arc_gain_r"):
        assert inj[col].notna().all(), col
    assert (inj.arc_snr > 0).all() and (inj.injected_flux_r > 0).all()
    for col in ("bad_pixel_frac", "wise_brightmask_frac", "psf_fwhm_used_r", "psf_source_r", "psf_model"):
        assert ctrl[col].notna().all(), col


def test_controls_are_the_unchanged_cutout(ctrl_run):
    _, cfg, exp = ctrl_run
    stamps = dio.read_dataset(layout.stamps_dir(cfg, exp))
    arc = _arrays(stamps, "arc", 64)
    is_ctrl = np.asarray(stamps.column("is_control").to_pylist()) == 1
    assert not arc[is_ctrl].any() and arc[~is_ctrl].any()


def test_validate_and_4d_pass_and_count_the_controls(ctrl_run):
    over, cfg, exp = ctrl_run
    assert run_stage([*over, "stage=validate", "validate.target=4a"])["passed"]
    rep = run_stage([*over, "stage=validate", "validate.target=4c"])
    assert rep["passed"], rep
    checks = {c["name"]: c for c in json.loads(Path(rep["reports"][0]).read_text())["checks"]}
    assert checks["controls_null"]["ok"] and checks["injections_not_null"]["ok"]
    res = run_stage([*over, "stage=4d", "finder=snr_proxy"])["experiments"][0]
    m = dio.read_dataset(layout.metrics_dir(cfg, exp)).to_pandas()
    n_ctrl = int((m.is_control == 1).sum())
    assert res["n_controls"] == n_ctrl and res["n_controls_valid"] == n_ctrl
    assert res["false_positive"]["all"]["n_false_positive"] == 0
    inj = m[(m.is_control == 0) & (m.metrics_ok == 1)]
    assert res["n_valid"] == len(inj)
    assert res["n_recovered"] == int((inj.arc_snr >= 5.0).sum())


def test_a_control_with_a_value_or_an_injection_with_a_null_fails_validate(ctrl_run):
    from dhs.quality.report import check_control_nulls

    _, cfg, exp = ctrl_run
    m = dio.read_dataset(layout.metrics_dir(cfg, exp)).to_pandas()
    assert all(c["ok"] for c in check_control_nulls(m, list(cfg.bands)))
    bad = m.copy()
    bad.loc[bad.index[bad.is_control == 1][0], "arc_snr"] = 0.0
    got = {c["name"]: c for c in check_control_nulls(bad, list(cfg.bands))}
    assert not got["controls_null"]["ok"] and "arc_snr (1)" in got["controls_null"]["detail"]
    bad = m.copy()
    bad.loc[bad.index[(bad.is_control == 0) & (bad.metrics_ok == 1)][0], "src_mag_r"] = np.nan
    got = {c["name"]: c for c in check_control_nulls(bad, list(cfg.bands))}
    assert got["controls_null"]["ok"] and not got["injections_not_null"]["ok"]
    assert "src_mag_r (1)" in got["injections_not_null"]["detail"]
