"""`dhs stage=all` (what `make demo` runs) on the embedded survey: every step succeeds and the
seeing wall is visible in the completeness surfaces it writes."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest


@pytest.mark.slow
def test_stage_all_runs_the_pipeline_and_shows_the_seeing_wall(tmp_path):
    dhs = Path(sys.executable).parent / "dhs"
    out = subprocess.run([str(dhs), "stage=all"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=900, env={**os.environ, "COLUMNS": "200"})
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    assert "dhs stage=all: summary" in out.stdout
    (run,) = [p for p in (tmp_path / "outputs" / "runs").rglob("dhs_run.json") if "_all" in str(p.parent)]
    rec = json.loads(run.read_text())
    steps = rec["summary"]["steps"]
    assert len(steps) == 10 and all(s["status"] == "ok" for s in steps), steps
    (surface,) = glob.glob(str(tmp_path / "outputs/data/phase4d/*/*/grid_*/surfaces/by_resolution/"
                                          "region_split=all/*.parquet"))
    t = pq.read_table(surface).to_pandas()
    low = t[t.resolution_hi <= 0.6]
    high = t[t.resolution_lo >= 1.0]
    c_low = low.n_recovered.sum() / low.n_valid.sum()
    c_high = high.n_recovered.sum() / high.n_valid.sum()
    assert low.n_valid.sum() >= 50 and high.n_valid.sum() >= 50
    assert c_high > 0.8 and c_low < 0.2 and c_high - c_low > 0.5
    plots = glob.glob(str(tmp_path / "outputs/data/phase4d/*/*/grid_*/plots/*.png"))
    assert len(plots) == 3 and all(Path(p).stat().st_size > 20_000 for p in plots)
