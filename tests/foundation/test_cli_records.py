"""The entry point, run records, redaction, dhs-diff and sweeps, through the real console scripts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dhs import provenance

BIN = Path(sys.executable).parent


def dhs(args: list[str], cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([str(BIN / "dhs"), *args], capture_output=True, text=True, cwd=cwd,
                          timeout=180, env=full_env)


def run_dirs(root: Path) -> list[Path]:
    return sorted(p.parent for p in root.rglob(provenance.RUN_RECORD))


def test_plan_writes_a_run_record_with_resolved_values_and_redacted_secrets(tmp_path):
    out = dhs(["stage=plan", f"paths.data_root={tmp_path}/data", f"paths.runs_root={tmp_path}/runs",
               "storage.aws_secret_access_key=hunter2", "storage.aws_access_key_id=AKIAEXAMPLE",
               "psf=gaussian"], tmp_path)
    assert out.returncode == 0, out.stderr + out.stdout
    assert "resolved choices" in out.stdout and "datasets per stage" in out.stdout
    (run,) = run_dirs(tmp_path / "runs")
    assert (run / ".hydra" / "config.yaml").is_file() and (run / ".hydra" / "overrides.yaml").is_file()
    rec = json.loads((run / provenance.RUN_RECORD).read_text())
    assert rec["status"] == "ok" and rec["ended"] and rec["wall_s"] >= 0
    cfg = rec["config"]
    # interpolations resolved
    assert cfg["paths"]["cache_root"] == f"{tmp_path}/data/coadd_cache"
    assert cfg["survey"]["base_url"] == f"{tmp_path}/data/mock_survey/coadd"
    # secrets redacted everywhere, including argv and overrides
    text = (run / provenance.RUN_RECORD).read_text()
    assert "hunter2" not in text and "AKIAEXAMPLE" not in text
    assert cfg["storage"]["aws_secret_access_key"] == "***"
    assert rec["choices"]["psf"] == "gaussian"
    assert rec["versions"]["dhs"] and rec["versions"]["hydra-core"].startswith("1.3")
    assert rec["host"] and rec["started"]


def test_redact_nested_structures():
    red = provenance.redact({"a": {"my_token": "x", "ok": 1}, "b": [{"password": "p"}], "c": None})
    assert red == {"a": {"my_token": "***", "ok": 1}, "b": [{"password": "***"}], "c": None}


def test_bad_value_fails_before_any_work_with_exit_2(tmp_path):
    out = dhs(["stage=plan", "psf.beta=0.5", f"paths.runs_root={tmp_path}/runs"], tmp_path)
    assert out.returncode == 2
    assert "psf.beta=0.5 is invalid" in out.stderr and "Traceback" not in out.stderr + out.stdout
    (run,) = run_dirs(tmp_path / "runs")
    rec = json.loads((run / provenance.RUN_RECORD).read_text())
    assert rec["status"] == "failed" and "psf.beta" in rec["error"]


def test_dhs_diff_reports_changed_choice_and_leaf_and_exit_codes(tmp_path):
    runs = tmp_path / "runs"
    common = [f"paths.data_root={tmp_path}/data", "stage=plan"]
    for name, extra in [("a", ["psf=moffat"]), ("b", ["psf=gaussian", "seeds.split_seed=7"]),
                        ("c", ["psf=moffat"])]:
        out = dhs([*common, *extra, f"hydra.run.dir={runs}/{name}"], tmp_path)
        assert out.returncode == 0, out.stderr
    diff = BIN / "dhs-diff"
    res = subprocess.run([str(diff), str(runs / "a"), str(runs / "b"), "--json"], capture_output=True, text=True)
    assert res.returncode == 1, res.stderr
    d = json.loads(res.stdout)
    assert d["choices"]["psf"] == ["moffat", "gaussian"]
    assert d["changed"]["seeds.split_seed"] == [13, 7]
    assert d["changed"]["psf.name"] == ["moffat", "gaussian"]
    res = subprocess.run([str(diff), str(runs / "a"), str(runs / "b")], capture_output=True, text=True)
    assert res.returncode == 1 and "group choice" in res.stdout and "seeds.split_seed" in res.stdout
    res = subprocess.run([str(diff), str(runs / "a"), str(runs / "c")], capture_output=True, text=True)
    assert res.returncode == 0 and "no differences" in res.stdout
    res = subprocess.run([str(diff), str(runs / "a"), str(tmp_path / "missing")], capture_output=True, text=True)
    assert res.returncode == 2


def test_diff_records_added_and_removed_keys():
    a = {"choices": {"psf": "moffat"}, "config": {"psf": {"name": "moffat", "beta": 3.5}, "x": [1, 2]}}
    b = {"choices": {"psf": "moffat"}, "config": {"psf": {"name": "moffat", "fwhm": 1.2}, "x": [1, 2]}}
    d = provenance.diff_records(a, b)
    assert d["added"] == {"psf.fwhm": 1.2} and d["removed"] == {"psf.beta": 3.5}
    assert not d["equal"] and d["changed"] == {} and d["choices"] == {}
    assert provenance.diff_records(a, a)["equal"]


def test_diff_of_dataset_records(tmp_path):
    from dhs.context import make_context
    from tests.helpers import compose_config

    ctx = make_context(tmp_path / "run")
    for name, psf in [("ds1", "moffat"), ("ds2", "gaussian")]:
        cfg = compose_config([f"psf={psf}", f"paths.data_root={tmp_path}"])
        ctx.record_dataset(str(tmp_path / name), cfg, inputs={}, counts={"rows": 3})
    d = provenance.diff_records(provenance.load_record(tmp_path / "ds1"), provenance.load_record(tmp_path / "ds2"))
    assert not d["equal"] and d["changed"]["psf.name"] == ["moffat", "gaussian"]
    assert provenance.diff_main([str(tmp_path / "ds1"), str(tmp_path / "ds1")]) == 0


@pytest.mark.parametrize("launcher", ["basic", "joblib"])
def test_sweep_writes_one_record_per_job(tmp_path, launcher):
    args = ["-m", "stage=plan", "source=sersic,cosmos", "psf=moffat,gaussian",
            f"paths.data_root={tmp_path}/data", f"hydra.sweep.dir={tmp_path}/sweep"]
    if launcher == "joblib":
        args += ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
    out = dhs(args, tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    recs = [json.loads((d / provenance.RUN_RECORD).read_text()) for d in run_dirs(tmp_path / "sweep")]
    assert len(recs) == 4
    combos = sorted((r["choices"]["source"], r["choices"]["psf"]) for r in recs)
    assert combos == sorted((s, p) for s in ("sersic", "cosmos") for p in ("moffat", "gaussian"))
    assert all(r["status"] == "ok" for r in recs)


def test_hydra_copies_are_redacted_too(tmp_path):
    out = dhs(["stage=plan", f"hydra.run.dir={tmp_path}/run", "storage.aws_secret_access_key=hunter2"], tmp_path)
    assert out.returncode == 0, out.stderr
    for path in (tmp_path / "run" / ".hydra").glob("*.yaml"):
        assert "hunter2" not in path.read_text(), path


@pytest.mark.parametrize("text,secret", [
    ("storage:\n  aws_access_key_id: null\n  aws_secret_access_key: null\n", False),
    ("storage:\n  aws_secret_access_key: ~\nbands: [g, r]\n", False),
    ("storage:\n  aws_secret_access_key: hunter2\n", True),
    ("my_token:\n  a: 1\n", True),  # a mapping under a secret's key
    ("- storage.aws_secret_access_key=hunter2\n", True),  # an override
    ("x: {password: 1}\n", True),
])
def test_hydra_copies_are_rewritten_only_when_they_hold_a_secret(text, secret):
    from dhs.config.records import _may_hold_secret

    assert _may_hold_secret(text) is secret


def test_dhs_diff_prints_brackets_as_written(tmp_path):
    runs = tmp_path / "runs"
    for name, bands in [("bands=[g,r,z]", "[g,r,z]"), ("b", "[g,r]")]:
        out = dhs(["stage=plan", f"paths.data_root={tmp_path}/data", f"bands={bands}",
                   f"hydra.run.dir='{runs}/{name}'"], tmp_path)
        assert out.returncode == 0, out.stderr
    res = subprocess.run([str(BIN / "dhs-diff"), "runs/bands=[g,r,z]", "runs/b"], capture_output=True, text=True,
                         cwd=tmp_path, env={**os.environ, "COLUMNS": "200"})
    assert res.returncode == 1, res.stderr
    assert "dhs-diff runs/bands=[g,r,z] runs/b" in res.stdout
    assert "['g', 'r', 'z']" in res.stdout and "['g', 'r']" in res.stdout
