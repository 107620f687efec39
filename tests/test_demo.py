"""`dhs stage=all` (what `make demo` runs) on the embedded survey: every step succeeds, the built-in
arc finder scores the stamps, and the seeing wall emerges from its scores at a false-positive rate
set on the controls (no rule on theta_E, the PSF or the arc SNR makes it)."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from dhs.completeness.surfaces import depth_mag, wilson_interval


def _surface(base: str, name: str):
    (path,) = glob.glob(f"{base}/surfaces/by_{name}/region_split=all/*.parquet")
    return pq.read_table(path).to_pandas()


def _pooled(t, z: float = 1.96) -> tuple[float, float, float]:
    """Completeness of the rows of a surface pooled, with its Wilson interval of ``z`` sigma."""
    k, n = int(t.n_recovered.sum()), int(t.n_valid.sum())
    lo, hi = wilson_interval([k], [n], z)
    return k / n, float(lo[0]), float(hi[0])


@pytest.mark.slow
def test_stage_all_runs_the_pipeline_and_the_finder_shows_the_seeing_wall(tmp_path):
    dhs = Path(sys.executable).parent / "dhs"
    out = subprocess.run([str(dhs), "stage=all"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=900, env={**os.environ, "COLUMNS": "200"})
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    assert "dhs stage=all: summary" in out.stdout
    (run,) = [p for p in (tmp_path / "outputs" / "runs").rglob("dhs_run.json") if "_all" in str(p.parent)]
    rec = json.loads(run.read_text())
    steps = rec["summary"]["steps"]
    assert len(steps) == 11 and all(s["status"] == "ok" for s in steps), steps
    assert [s["step"].split()[0] for s in steps].count("score") == 1
    (base,) = glob.glob(str(tmp_path / "outputs/data/phase4d/*/*/arcfinder/grid_*"))
    summary = json.loads(Path(base, "summary.json").read_text())
    assert summary["finder"] == "arcfinder" and summary["threshold_method"] == "fpr"
    fp = summary["control_fpr"]
    assert fp["n"] >= 100 and fp["lo"] <= 0.01 <= fp["hi"]

    # the surfaces are the finder's scores at the recorded threshold, recomputed here from the scores
    (scores_dir,) = glob.glob(str(tmp_path / "outputs/data/phase4c/*/*/scores/arcfinder/grid_*"))
    (metrics_dir,) = glob.glob(str(tmp_path / "outputs/data/phase4c/*/*/metrics/grid_*"))
    scores = pq.read_table(scores_dir).to_pandas().set_index("task_id")
    metrics = pq.read_table(metrics_dir, columns=["task_id", "is_control", "theta_e_arcsec", "psfsize_r"]) \
        .to_pandas().set_index("task_id")
    inj = metrics[metrics.is_control == 0].join(scores[["score", "score_ok"]])
    found = (inj.score_ok == 1) & (inj.score >= summary["threshold"])
    resolution = _surface(base, "resolution")
    assert set(resolution.finder) == {"arcfinder"} and set(resolution.threshold) == {summary["threshold"]}
    res = (inj.theta_e_arcsec / inj.psfsize_r).to_numpy()
    low_mask = res < 0.4
    assert int(found[low_mask].sum()) == int(resolution[resolution.resolution_hi <= 0.4].n_recovered.sum())

    # completeness rises with theta_E / PSF: the unresolved bin lies below the resolved ones
    c_low, _, hi_low = _pooled(resolution[resolution.resolution_hi <= 0.4])
    c_high, lo_high, _ = _pooled(resolution[resolution.resolution_lo >= 0.8])
    assert resolution[resolution.resolution_hi <= 0.4].n_valid.sum() >= 100
    assert c_high > c_low and lo_high > hi_low, (c_low, c_high)
    # ... and with source brightness: the brightest sources are found more often than the faintest
    dmag = _surface(base, "src_dmag").sort_values("src_dmag")
    bright, faint = _pooled(dmag.iloc[:1]), _pooled(dmag.iloc[-1:])
    assert bright[0] > faint[0] + 0.03, (bright, faint)
    # at equal theta_E (and depth: the embedded survey's seeing and depth vary brick by brick),
    # completeness is lower in worse seeing: within each theta_E x depth cell the stamps are split at
    # the cell's median PSF; the difference (better minus worse seeing), pooled over the cells with
    # weights n_good n_bad / n, is positive, and most of all at the smallest theta_E
    metrics = pq.read_table(metrics_dir, columns=["task_id", "is_control", "cutout_ok", "theta_e_arcsec",
                                                  "psfsize_r", "psfdepth_r"]).to_pandas().set_index("task_id")
    rows = metrics[(metrics.is_control == 0) & (metrics.cutout_ok == 1)].join(scores[["score", "score_ok"]])
    rows["found"] = (rows.score_ok == 1) & (rows.score >= summary["threshold"])
    rows["depth_bin"] = np.floor(depth_mag(rows.psfdepth_r.to_numpy()) / 0.25 + 1e-9)
    pooled = {}
    for (theta, _), cell in rows.groupby(["theta_e_arcsec", "depth_bin"]):
        med = cell.psfsize_r.median()
        good, bad = cell[cell.psfsize_r < med], cell[cell.psfsize_r > med]
        if min(len(good), len(bad)) < 5:
            continue
        w = len(good) * len(bad) / (len(good) + len(bad))
        num, den = pooled.get(theta, (0.0, 0.0))
        pooled[theta] = (num + w * (good.found.mean() - bad.found.mean()), den + w)
    assert len(pooled) >= 3
    overall = sum(n for n, _ in pooled.values()) / sum(d for _, d in pooled.values())
    smallest = pooled[min(pooled)][0] / pooled[min(pooled)][1]
    assert overall > 0 and smallest > 0.05 and smallest >= overall, (overall, pooled)
    plots = glob.glob(f"{base}/plots/*.png")
    assert len(plots) == 4 and all(Path(p).stat().st_size > 20_000 for p in plots)
