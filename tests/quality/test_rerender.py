"""stage=validate validate.target=4c re-renders a random sample of rows with lenstronomy from the
saved columns: it passes on what 4c wrote and fails when a saved column disagrees with the stamps."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dhs.stages import layout
from dhs.io import datasets as dio
from dhs.quality.rerender import run_check, sample_rows
from dhs.stages.settings import inject_settings
from tests.helpers import compose_config, run_stage


@pytest.fixture(scope="module", params=["cosmos", "sersic"])
def run4c(mini_base, request):
    over = [*mini_base, f"source={request.param}", "output.save_arc=true",
            f"inject.run_name=rerender_{request.param}"]
    run_stage(["stage=4c", *over])
    cfg = compose_config(["stage=validate", *over])
    exp = layout.experiment_ids(cfg)[0]
    return over, cfg, exp


def test_validate_4c_reports_lenstronomy_agreement_per_band(run4c):
    over, cfg, exp = run4c
    summary = run_stage(["stage=validate", "validate.target=4c", "validate.rerender_rows=6", *over])
    report = json.loads(open(summary["reports"][0]).read())
    rr = report["rerender"]
    assert rr["reference"] == "stored arc" and rr["rows"] == 6 and rr["ok"]
    assert set(rr["bands"]) == {"g", "r", "z"}
    for band in rr["bands"].values():
        assert band["l2_max"] <= 0.05 and band["flux_max"] <= 0.02
    check = next(c for c in report["checks"] if c["name"] == "lenstronomy_rerender")
    assert check["status"] == "pass"


def test_a_wrong_saved_column_fails_the_rerender(run4c):
    _, cfg, exp = run4c
    df = dio.read_dataset(layout.metrics_dir(cfg, exp)).to_pandas()
    s = inject_settings(cfg)
    bank = None
    if cfg.source.name == "cosmos":
        from dhs.cosmos.bank import load_bank

        bank = load_bank(str(cfg.paths.cosmos_bank))
    good = run_check(df, s, layout.stamps_dir(cfg, exp), bank, 4, 42, 0.05, 0.02)
    assert good["ok"]
    bad = df.copy()
    bad["src_x_arcsec"] = bad["src_x_arcsec"] + 0.3  # the saved offset no longer made these arcs
    res = run_check(bad, s, layout.stamps_dir(cfg, exp), bank, 4, 42, 0.05, 0.02)
    assert not res["ok"] and max(b["l2_max"] for b in res["bands"].values()) > 0.05


def test_sample_is_a_pure_function_of_the_task_ids(run4c):
    _, cfg, exp = run4c
    df = dio.read_dataset(layout.metrics_dir(cfg, exp)).to_pandas()
    a = sample_rows(df, 5, 42).task_id.tolist()
    b = sample_rows(df.iloc[::-1], 5, 42).task_id.tolist()
    assert a == b and len(set(a)) == 5
    assert (df.set_index("task_id").loc[a, "is_control"] == 0).all()
    assert not np.array_equal(a, sample_rows(df, 5, 43).task_id.tolist())
