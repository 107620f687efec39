"""The dhs_emr Hydra launcher: Hydra's own launcher suites, EMR sweeps, local sweeps."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.executors.emr_helpers import clusters_of, emr_overrides, finishing

ROOT = Path(__file__).resolve().parents[2]
DHS = str(Path(sys.executable).parent / "dhs")


def _dhs(args, cwd, timeout=180):
    return subprocess.run([DHS, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_hydra_launcher_suites_pass(tmp_path):
    """LauncherTestSuite + IntegrationTestSuite (mode=local), found by Hydra's namespace scan."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "launchers")}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(ROOT / "tests/executors/launcher_suite_impl.py"), "-q",
         "-p", "no:cacheprovider", "-p", "no:xdist", f"--basetemp={tmp_path / 'suite'}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    tail = proc.stdout[-4000:] + proc.stderr[-2000:]
    assert proc.returncode == 0, tail
    passed = re.search(r"(\d+) passed", proc.stdout)
    assert passed and int(passed.group(1)) >= 20 and "failed" not in proc.stdout.splitlines()[-1], tail


def test_local_mode_records_the_steps_and_runs_jobs_as_the_cluster_would(tmp_path):
    sweep = tmp_path / "sweep"
    proc = _dhs(["-m", "stage=plan", "source=sersic,cosmos", "bands=[g,r,z]", "cluster=emr",
                 "cluster.emr.region=us-west-2", "cluster.emr.staging_uri=s3://b/staging",
                 f"paths.data_root={tmp_path / 'data'}", "hydra/launcher=dhs_emr",
                 "hydra.launcher.mode=local", "hydra.launcher.local_master='local[1]'",
                 f"hydra.sweep.dir={sweep}", "hydra.sweep.subdir=${hydra.job.num}"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    steps = json.loads((sweep / "emr_steps.json").read_text())
    assert [s["job"] for s in steps] == [0, 1]
    for entry, source in zip(steps, ["sersic", "cosmos"]):
        args = entry["step"]["HadoopJarStep"]["Args"]
        assert entry["step"]["HadoopJarStep"]["Jar"] == "command-runner.jar"
        assert args[0] == "spark-submit" and args[-2:] == ["cluster=spark_local", "cluster.spark_master=yarn"]
        assert f"source={source}" in args and "bands=[g,r,z]" in args
    for num, source in ((0, "sersic"), (1, "cosmos")):
        record = json.loads((sweep / str(num) / "dhs_run.json").read_text())
        assert record["status"] == "ok"
        cfg = (sweep / str(num) / ".hydra" / "config.yaml").read_text()
        assert "name: spark_local" in cfg and "spark_master: local[1]" in cfg
        assert f"name: {source}" in cfg
        # the job directory and reported overrides stay the sweep's own
        assert f"source={source}" in (sweep / str(num) / ".hydra" / "overrides.yaml").read_text()


@pytest.mark.s3
def test_sweep_submits_every_job_as_a_step_on_one_cluster(moto, wheel, tmp_path):
    bucket = moto.make_bucket("dhs-launcher-sweep")
    args = emr_overrides(moto, "us-west-2", bucket, f"cluster.emr.wheel={wheel}",
                         source="sersic,cosmos")
    sweep = tmp_path / "sweep"
    with finishing(moto, bucket, "COMPLETED"):
        proc = _dhs(["-m", *args, "hydra/launcher=dhs_emr", f"hydra.sweep.dir={sweep}"], tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (cluster,) = clusters_of(moto, bucket)
    steps = moto.client("emr").list_steps(ClusterId=cluster.id)["Steps"][::-1]
    assert [s["Status"]["State"] for s in steps] == ["COMPLETED", "COMPLETED"]
    for step, source in zip(steps, ["sersic", "cosmos"]):
        step_args = step["Config"]["Args"]
        assert f"source={source}" in step_args and "bands=[g,r,z]" in step_args
        assert "source=sersic,cosmos" not in step_args
    recorded = json.loads((sweep / "emr_steps.json").read_text())
    assert [r["step"]["state"] for r in recorded if "job" in r] == ["COMPLETED", "COMPLETED"]


@pytest.mark.s3
def test_sweep_with_a_failed_step_fails_and_names_the_logs(moto, wheel, tmp_path):
    bucket = moto.make_bucket("dhs-launcher-fail")
    args = emr_overrides(moto, "us-west-2", bucket, f"cluster.emr.wheel={wheel}",
                         source="sersic,cosmos")
    with finishing(moto, bucket, "FAILED", "Step failed with exitCode 1"):
        proc = _dhs(["-m", *args, "hydra/launcher=dhs_emr", f"hydra.sweep.dir={tmp_path / 's'}"],
                    tmp_path)
    assert proc.returncode != 0
    (cluster,) = clusters_of(moto, bucket)
    assert f"s3://{bucket}/logs/{cluster.id}/steps/" in proc.stdout + proc.stderr
    assert "FAILED" in proc.stdout + proc.stderr


@pytest.mark.slow
def test_joblib_launcher_runs_a_local_sweep(tmp_path):
    sweep = tmp_path / "sweep"
    proc = _dhs(["-m", "stage=plan", "source=sersic,cosmos",
                 f"paths.data_root={tmp_path / 'data'}", "hydra/launcher=joblib",
                 "hydra.launcher.n_jobs=2", f"hydra.sweep.dir={sweep}",
                 "hydra.sweep.subdir=${hydra.job.num}"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    choices = set()
    for num in range(2):
        record = json.loads((sweep / str(num) / "dhs_run.json").read_text())
        assert record["status"] == "ok"
        choices.add((record["choices"]["source"], record["choices"]["psf"]))
    assert choices == {("sersic", "moffat"), ("cosmos", "moffat")}
