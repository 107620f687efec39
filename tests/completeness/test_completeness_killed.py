"""A 4d run killed (SIGKILL) at several moments, then rerun, leaves the bytes of an uninterrupted
run; a second 4d run refuses while the first writes."""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dhs.io import locks
from dhs.io.locks import DatasetLockedError
from dhs.stages import layout
from tests.helpers import run_stage
from tests.killed import digest, held_lock, kill_after
from tests.synth4c import EXP, metrics_frame, write_experiment


def _overrides(data_root, frame):
    """A synthetic 4c experiment and finder scores; the 4d overrides that read them (threshold set
    on the controls for FPR 0.05, so the TPR-at-FPR curves are written too)."""
    path = data_root / "scores.parquet"
    snr = frame["arc_snr"].fillna(0).to_numpy()
    score = np.where(frame["is_control"] == 1, np.linspace(0.0, 0.6, len(frame)), snr / (snr + 5.0))
    pq.write_table(pa.table({"task_id": frame["task_id"], "score": score}), path)
    extra = [f"completeness.scores={path}", "completeness.fpr=0.05", "finder=python"]
    exp = write_experiment(data_root, frame, extra=extra)
    return ["stage=4d", f"paths.data_root={data_root}", f"experiment_id={EXP}", "source=cosmos",
            f"paths.cosmos_bank={exp.bank}", "validate.rerender_rows=0", *extra], exp.cfg


@pytest.mark.parametrize("after", ["surfaces/by_theta_e", "regions/by_theta_e_depth", "tpr_at_fpr"])
def test_killed_4d_resumes_to_the_same_bytes(data_root, tmp_path, after):
    over, cfg = _overrides(data_root, metrics_frame())
    out = layout.completeness_dir(cfg, EXP)
    first = run_stage(over)["experiments"][0]
    assert first["threshold_method"] == "fpr" and os.path.isdir(os.path.join(out, "tpr_at_fpr"))
    ref = digest(out)
    kill_after([*over, "force=true"], os.path.join(out, after), 1, tmp_path, fresh=True)
    assert not os.path.exists(os.path.join(out, "_SUCCESS"))  # the killed run had cleared it
    again = run_stage(over)["experiments"][0]
    assert not again["status"].startswith("skipped")
    assert digest(out) == ref
    assert [n for n in os.listdir(os.path.dirname(out)) if n.startswith(".")] == []  # no lock left


def test_a_live_4d_writer_makes_the_second_run_refuse(data_root):
    over, cfg = _overrides(data_root, metrics_frame())
    out = layout.completeness_dir(cfg, EXP)
    lock = locks.lock_uri(out)
    with held_lock(out, "dhs stage=4d") as pid:
        with pytest.raises(DatasetLockedError, match=f"pid {pid}, started 2026-01-01T00:00:00Z"):
            run_stage(over)
        assert not os.path.exists(out)
    res = run_stage(over)["experiments"][0]  # its owner is dead: the lock is taken over
    assert res["status"] == "ok" and os.path.exists(os.path.join(out, "_SUCCESS")) and not os.path.exists(lock)


def test_a_rerun_with_other_settings_leaves_nothing_of_the_earlier_outputs(data_root):
    over, cfg = _overrides(data_root, metrics_frame())
    out = layout.completeness_dir(cfg, EXP)
    run_stage(over)
    assert os.path.isdir(os.path.join(out, "tpr_at_fpr"))
    res = run_stage([*over, "finder=snr_proxy", "score.run_name=python"])["experiments"][0]  # no curves
    assert res["threshold_method"] == "snr_proxy" and not os.path.exists(os.path.join(out, "tpr_at_fpr"))
    assert not any(p.endswith("tpr_at_fpr_by_resolution.png") for p in os.listdir(os.path.join(out, "plots")))
