"""Score thresholds set on the controls: exact counts, ties, unscored controls, a held-out
false-positive rate within the Wilson interval of the requested one, TPR-at-FPR curves, purity,
and stage 4d choosing its threshold on the controls of one split."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dhs.stages import layout
from dhs.completeness import surfaces as comp
from dhs.completeness import thresholds as th
from dhs.io.datasets import read_dataset
from dhs.stages import completeness as stage
from tests import synth4c as synth
from tests.synth4c import metrics_frame, write_experiment


def test_threshold_leaves_floor_fpr_n_controls_at_or_above_it():
    s = np.array([0.9, 0.1, 0.5, 0.7, 0.3, 0.8, 0.2, 0.6, 0.4, 0.0])
    for fpr, k in ((0.05, 0), (0.1, 1), (0.25, 2), (0.31, 3), (0.99, 9)):
        t = th.threshold_for_fpr(s, fpr)
        assert (s >= t).sum() == k, (fpr, t)
    assert th.threshold_for_fpr(s, 0.25) == pytest.approx(0.75)  # midway between the 2nd and 3rd
    ties = np.array([1.0, 1.0, 1.0, 0.0])
    assert (ties >= th.threshold_for_fpr(ties, 0.5)).sum() == 0  # never more than requested
    unscored = np.array([-np.inf, -np.inf, 0.2, 0.1])
    assert (unscored >= th.threshold_for_fpr(unscored, 0.5)).sum() == 2
    with pytest.raises(ValueError, match="no valid controls.*completeness.threshold"):
        th.threshold_for_fpr(np.array([]), 0.01)


def test_held_out_control_fpr_lies_in_the_wilson_interval_of_the_request():
    # the threshold is set on many controls, so the held-out count's own binomial noise dominates
    rng = np.random.default_rng(11)
    for fpr in (0.01, 0.05, 0.2):
        chosen, held = rng.normal(0, 1, 30000), rng.normal(0, 1, 3000)
        t = th.threshold_for_fpr(chosen, fpr)
        k = int((held >= t).sum())
        lo, hi = comp.wilson_interval([k], [held.size])
        assert lo[0] <= fpr <= hi[0], (fpr, k)


def test_purity_by_hand():
    assert th.purity(0.01, 0.8, 0.02) == pytest.approx(0.008 / (0.008 + 0.99 * 0.02))
    assert th.purity(0.5, 1.0, 0.0) == 1.0 and np.isnan(th.purity(0.1, 0.0, 0.0))


def _frame_with_scores(seed: int = 4):
    frame = metrics_frame(n_per=20, seed=seed)
    rng = np.random.default_rng(seed)
    ctl = frame["is_control"].to_numpy() == 1
    res = frame["theta_e_arcsec"].to_numpy() / frame["psfsize_r"].to_numpy()
    score = np.where(ctl, rng.normal(0, 1, len(frame)), rng.normal(0, 1, len(frame)) + 3.0 * res)
    return frame, pd.DataFrame({"task_id": frame["task_id"], "score": score})


def test_stage_4d_sets_the_threshold_on_one_split_and_measures_fpr_on_the_others(data_root, ctx):
    frame, scores = _frame_with_scores()
    path = data_root / "scores.parquet"
    pq.write_table(pa.Table.from_pandas(scores, preserve_index=False), path)
    exp = write_experiment(data_root, frame, extra=[f"completeness.scores={path}", "finder=python",
                                                    "completeness.fpr=0.1", "completeness.threshold_splits=[train]",
                                                    "completeness.fpr_grid=[0.05,0.1,0.3]",
                                                    "completeness.prevalence=0.01"])
    res = stage.run(exp.cfg, ctx)["experiments"][0]
    valid = (frame["cutout_ok"] == 1).to_numpy()
    ctl = valid & (frame["is_control"] == 1).to_numpy()
    train = (frame["region_split"] == "train").to_numpy()
    s = scores["score"].to_numpy()
    assert res["threshold_method"] == "fpr" and res["fpr_requested"] == 0.1
    assert res["n_controls_threshold"] == int((ctl & train).sum()) >= 40
    assert int((s[ctl & train] >= res["threshold"]).sum()) == int(0.1 * (ctl & train).sum())
    fp = res["control_fpr"]  # measured on the val and test controls, never used for the threshold
    assert fp["n"] == int((ctl & ~train).sum()) and fp["k"] == int((s[ctl & ~train] >= res["threshold"]).sum())
    assert fp["lo"] <= 0.1 <= fp["hi"]
    inj = valid & (frame["is_control"] == 0).to_numpy()
    tpr = (s[inj] >= res["threshold"]).mean()
    assert res["completeness"] == pytest.approx(tpr)
    assert res["purity"] == pytest.approx(0.01 * tpr / (0.01 * tpr + 0.99 * fp["rate"]))
    assert "finder=python" in res["recovery"] and f"{res['threshold']:.4g}" in res["recovery"]
    out = layout.completeness_dir(exp.cfg, synth.EXP)
    surf = read_dataset(f"{out}/surfaces/by_resolution").to_pandas()
    assert set(surf["finder"]) == {"python"} and set(surf["threshold"]) == {res["threshold"]}
    curves = read_dataset(f"{out}/tpr_at_fpr", partition_col=None).to_pandas()
    assert sorted(set(curves["fpr_target"])) == [0.05, 0.1, 0.3]
    at = curves[(curves["fpr_target"] == 0.1) & (curves["resolution_bin"] == "all")].iloc[0]
    assert at["threshold"] == res["threshold"] and at["tpr"] == pytest.approx(tpr)
    for target, g in curves.groupby("fpr_target"):  # completeness rises with theta_E/PSF (by construction)
        bins = g[g["resolution_bin"] != "all"].sort_values("resolution_lo")
        assert bins["tpr"].iloc[-1] > bins["tpr"].iloc[0]
        assert (bins["n_valid"].sum() == g.loc[g["resolution_bin"] == "all", "n_valid"]).all()
    assert any(p.endswith("tpr_at_fpr_by_resolution.png") for p in res["plots"])
    summary = json.loads(open(f"{out}/summary.json").read())
    assert summary["threshold"] == res["threshold"] and summary["finder"] == "python"


def test_stage_4d_without_controls_asks_for_them_or_a_threshold(data_root, ctx):
    frame, scores = _frame_with_scores()
    keep = frame["is_control"] == 0
    frame, scores = frame[keep].reset_index(drop=True), scores[keep.to_numpy()].reset_index(drop=True)
    path = data_root / "scores.parquet"
    pq.write_table(pa.Table.from_pandas(scores, preserve_index=False), path)
    exp = write_experiment(data_root, frame, extra=[f"completeness.scores={path}", "finder=python"])
    with pytest.raises(ValueError, match="no valid controls.*tier.control_frac.*completeness.threshold"):
        stage.run(exp.cfg, ctx)
    exp.cfg.completeness.threshold = 1.0
    res = stage.run(exp.cfg, ctx)["experiments"][0]
    assert res["threshold_method"] == "given" and res["control_fpr"]["n"] == 0
