"""stage=validate validate.target=4c: passes on a good dataset, fails naming the broken check otherwise."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from dhs.stages import layout
from dhs.stages import validate
from tests import synth4c as synth
from tests.synth4c import write_experiment


def _run(exp, ctx):
    exp.cfg.stage.name = "validate"
    return validate.run(exp.cfg, ctx)


def test_good_dataset_passes_and_writes_report(experiment, ctx):
    summary = _run(experiment, ctx)
    assert summary["passed"]
    report = json.loads(open(summary["reports"][0]).read())
    names = {c["name"]: c["status"] for c in report["checks"]}
    for check in ("schema_cosmos_columns", "source_mode_single", "source_mode_matches_run",
                  "cosmos_index_in_bank", "cosmos_hlr_in_bank_range", "stamp_shape"):
        assert names[check] == "pass"
    frame = experiment.frame
    assert report["rows"] == len(frame) and report["bank"]["n_sources"] == synth.BANK_SIZE
    train = report["per_split"]["train"]
    assert train["rows"] == int((frame.region_split == "train").sum())
    assert train["n_controls"] == int(((frame.region_split == "train") & (frame.is_control == 1)).sum())
    inj = frame[(frame.is_control == 0) & (frame.metrics_ok == 1)]
    assert report["per_split"]["all"]["arc_snr_percentiles"]["p50"] == pytest.approx(
        np.percentile(inj.arc_snr, 50), abs=1e-5)
    assert report["per_split"]["all"]["arc_snr_frac_above"]["10"] == pytest.approx(
        float(np.mean(inj.arc_snr > 10)), abs=1e-5)
    assert report["per_split"]["all"]["error_codes"]["edge"] == int((frame.error_code == "edge").sum())
    assert report["cosmos_unique_indices"] == inj_unique(frame)
    assert report["expected_stamp_shape"] == [3, 16, 16]
    assert sorted(os.path.basename(p) for p in summary["plots"]) == ["arc_snr_by_split.png",
                                                                     "hlr_intrinsic_vs_lensed.png"]
    assert all(os.path.getsize(p) > 10_000 for p in summary["plots"])
    assert summary["reports"][0].startswith(layout.validate_dir(experiment.cfg, "4c", synth.EXP))


def inj_unique(frame):
    return int(frame.loc[frame.is_control == 0, "cosmos_index"].nunique())


def test_cosmos_index_beyond_bank_fails(data_root, frame, ctx):
    frame.loc[frame.index[frame.is_control == 0][:3], "cosmos_index"] = synth.BANK_SIZE + 7
    exp = write_experiment(data_root, frame, stage="validate")
    with pytest.raises(validate.ValidationFailed, match=r"cosmos_index_in_bank \(3 injection\(s\).*57"):
        _run(exp, ctx)


def test_missing_column_and_mixed_source_mode_fail(data_root, frame, ctx):
    frame = frame.drop(columns=["cosmos_hlr_arcsec"])
    frame.loc[frame.index[:2], "source_mode"] = "sersic"
    exp = write_experiment(data_root, frame, stage="validate")
    with pytest.raises(validate.ValidationFailed) as err:
        _run(exp, ctx)
    msg = str(err.value)
    assert "schema_cosmos_columns" in msg and "cosmos_hlr_arcsec" in msg
    assert "source_mode_single" in msg and "cosmos_index_in_bank" not in msg


def test_wrong_stamp_shape_fails(data_root, frame, ctx):
    stamps = synth.stamps_table(frame, size=12)  # arrays of 12x12 where the rows say 16
    exp = write_experiment(data_root, frame, stage="validate", stamps=stamps)
    with pytest.raises(validate.ValidationFailed, match=r"stamp_shape \(stamp .*has 432 values, expected 768"):
        _run(exp, ctx)
    report = json.loads(open(os.path.join(layout.validate_dir(exp.cfg, "4c", synth.EXP), "report.json")).read())
    assert report["failed"] == ["stamp_shape"]


def test_sersic_run_and_hlr_outside_bank(data_root, ctx):
    frame = synth.metrics_frame(source_mode="sersic")
    exp = write_experiment(data_root, frame, stage="validate", extra=["source=sersic"])
    assert _run(exp, ctx)["passed"]
    frame = synth.metrics_frame()
    frame.loc[frame.index[frame.is_control == 0][0], "cosmos_hlr_arcsec"] = 2.5
    exp = write_experiment(data_root, frame, stage="validate")
    with pytest.raises(validate.ValidationFailed, match="cosmos_hlr_in_bank_range"):
        _run(exp, ctx)


def test_unknown_target_is_rejected(experiment, ctx):
    experiment.cfg.validate.target = "4z"
    with pytest.raises(ValueError, match="validate.target='4z'"):
        validate.run(experiment.cfg, ctx)
