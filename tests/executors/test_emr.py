"""EMR submission against a moto server: staged files, the exact requests, waiting, reporting."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from rich.console import Console

from dhs.config import schema as dhs_config
from dhs.executors.emr import submit as dhs_emr
from dhs.executors.emr import api as rq
from dhs.executors.emr.bootstrap import bootstrap_script
from dhs.io import storage
from dhs.stages.settings import emr_settings
from tests.executors.emr_helpers import clusters_of, emr_overrides, finish_steps, finishing
from tests.s3_server import configure_storage

pytestmark = pytest.mark.s3
ROOT = Path(__file__).resolve().parents[2]


def quiet_console():
    return Console(file=io.StringIO(), width=200)


def test_step_arguments_are_a_list_and_keep_commas():
    overrides = ["stage=4c", "bands=[g,r,z]", "source=sersic", "cluster=emr",
                 "cluster.emr.region=us-west-2", "cluster.dry_run=true",
                 "storage.aws_secret_access_key=abc", "hydra/launcher=dhs_emr", "tier.stamp_sizes=[64,96]"]
    kept, dropped = rq.step_overrides(overrides)
    assert kept == ["stage=4c", "bands=[g,r,z]", "source=sersic", "tier.stamp_sizes=[64,96]",
                    "cluster=spark_local", "cluster.spark_master=yarn"]
    assert sorted(dropped) == sorted(["cluster=emr", "cluster.emr.region=us-west-2",
                                      "cluster.dry_run=true", "storage.aws_secret_access_key=abc",
                                      "hydra/launcher=dhs_emr"])
    emr = rq.EmrSettings(python="python3.11", deploy_mode="cluster",
                         spark_submit_args=("--num-executors", "4"))
    args = rq.spark_submit_args(emr, "s3://b/s/dhs_driver.py", kept)
    assert args[:5] == ["spark-submit", "--master", "yarn", "--deploy-mode", "cluster"]
    assert "spark.executorEnv.NUMBA_CACHE_DIR=/tmp/numba_cache" in args
    driver = args.index("s3://b/s/dhs_driver.py")
    assert args[driver - 2:driver] == ["--num-executors", "4"]
    assert args[driver + 1:] == kept
    assert rq.step_overrides(["stage=4a"], master="local[2]")[0][-1] == "cluster.spark_master='local[2]'"


def test_missing_region_and_local_data_root_fail_before_any_work(compose):
    cfg = compose(["cluster=emr", "cluster.emr.staging_uri=s3://b/s", "paths.data_root=s3://b/d"])
    with pytest.raises(dhs_config.ConfigError, match=r"cluster\.emr\.region is not set"):
        emr_settings(cfg)
    cfg = compose(["cluster=emr", "cluster.emr.region=us-west-2", "cluster.emr.staging_uri=s3://b/s"])
    with pytest.raises(dhs_config.ConfigError, match=r"paths\.data_root='outputs/data' is a local path"):
        emr_settings(cfg)
    cfg = compose(["cluster=emr", "cluster.emr.region=us-west-2", "paths.data_root=s3://b/d"])
    with pytest.raises(dhs_config.ConfigError, match=r"cluster\.emr\.staging_uri"):
        emr_settings(cfg)


def test_bootstrap_script_is_valid_bash_and_installs_the_wheel(tmp_path):
    script = bootstrap_script("python3.11", ["echo extra-line"])
    path = tmp_path / "bootstrap.sh"
    path.write_text(script)
    assert subprocess.run(["bash", "-n", str(path)], capture_output=True).returncode == 0
    assert 'pip install --quiet -c "$WORK/constraints.txt" "$WORK/$(basename "$WHEEL_URI")"' in script
    assert "export NUMBA_CACHE_DIR=/tmp/numba_cache" in script and "echo extra-line" in script


def test_dry_run_prints_the_requests_and_sends_nothing(moto, compose):
    bucket = moto.make_bucket("dhs-emr-dry")
    region = "eu-west-3"
    overrides = emr_overrides(moto, region, bucket, "cluster.dry_run=true")
    console = quiet_console()
    result = dhs_emr.submit(emr_settings(compose(overrides)), {}, overrides, console)
    out = console.file.getvalue()
    assert result["dry_run"] and "run_job_flow" in result["requests"]
    assert '"Jar": "command-runner.jar"' in out and '"bands=[g,r,z]"' in out
    assert "not sent" in out
    configure_storage(moto)
    assert storage.walk_files(f"s3://{bucket}") == []
    assert clusters_of(moto, bucket) == []


def test_submit_creates_a_cluster_stages_files_and_reports_success(moto, compose, wheel):
    bucket = moto.make_bucket("dhs-emr-new")
    region = "us-west-2"
    overrides = emr_overrides(moto, region, bucket, f"cluster.emr.wheel={wheel}",
                              "cluster.emr.core_instance_count=3", "cluster.emr.subnet_id=subnet-123")
    cfg = compose(overrides)
    configure_storage(moto)
    job = dhs_emr.Job("dhs #0 stage=4c", overrides, {"bands": ["g", "r", "z"]})
    console = quiet_console()
    result = dhs_emr.submit_jobs(emr_settings(cfg), [job], console,
                                 sleep=finish_steps(moto, bucket, "COMPLETED"))
    assert result["ok"] and result["created"] and not result["dry_run"]
    (step,) = result["steps"]
    assert step["state"] == "COMPLETED"
    cid = result["cluster_id"]
    assert step["logs"] == f"s3://{bucket}/logs/{cid}/steps/{step['step_id']}/"
    assert step["logs"] in console.file.getvalue().replace("\n  ", " ")

    client = moto.client("emr", region)
    cluster = client.describe_cluster(ClusterId=cid)["Cluster"]
    assert cluster["ReleaseLabel"] == "emr-7.6.0"
    assert cluster["LogUri"] == f"s3://{bucket}/logs"
    assert cluster["Ec2InstanceAttributes"]["Ec2SubnetId"] == "subnet-123"
    groups = {g["InstanceGroupType"]: g for g in client.list_instance_groups(ClusterId=cid)["InstanceGroups"]}
    assert groups["MASTER"]["InstanceType"] == "m5.xlarge"
    assert (groups["CORE"]["InstanceType"], groups["CORE"]["RequestedInstanceCount"]) == ("m5.2xlarge", 3)
    staging = result["staging"]
    (action,) = client.list_bootstrap_actions(ClusterId=cid)["BootstrapActions"]
    assert action["ScriptPath"] == f"{staging}/bootstrap.sh"
    assert action["Args"] == [f"{staging}/{wheel.name}", f"{staging}/constraints.txt"]
    (listed,) = client.list_steps(ClusterId=cid)["Steps"]
    args = listed["Config"]["Args"]
    assert listed["Config"]["Jar"] == "command-runner.jar"
    assert args[0] == "spark-submit" and args[args.index("--deploy-mode") + 1] == "cluster"
    driver = args.index(f"{staging}/dhs_driver.py")
    run_id = staging.rsplit("/", 1)[-1]
    assert args[driver + 1:driver + 3] == ["dhs_run/000", f"s3://{bucket}/data/runs/{run_id}/000/"]
    assert step["run_record"] == args[driver + 2]
    assert step["container_logs"] == f"s3://{bucket}/logs/{cid}/containers/"
    assert step["container_logs"] in console.file.getvalue()
    assert args[driver + 3:] == ["stage=4c", "bands=[g,r,z]", "source=cosmos",
                                 f"paths.data_root=s3a://{bucket}/data",
                                 f"storage.s3_endpoint_url={moto.endpoint_url}",
                                 f"storage.s3_region={moto.region}",
                                 "cluster=spark_local", "cluster.spark_master=yarn"]
    # staged files: the wheel as built, the scripts, the job's config
    assert storage.read_bytes(f"{staging}/{wheel.name}") == wheel.read_bytes()
    names = zipfile.ZipFile(wheel).namelist()
    assert {"dhs/executors/spark.py", "dhs/conf/cluster/emr.yaml",
            "hydra_plugins/dhs_launcher/emr_launcher.py"} <= set(names)
    assert "hydra_plugins/__init__.py" not in names  # a namespace package, shared with others
    assert "pip install" in storage.read_text(f"{staging}/bootstrap.sh")
    assert "from dhs.cli import main" in storage.read_text(f"{staging}/dhs_driver.py")
    assert json.loads(storage.read_text(f"{staging}/config/000.json")) == {"bands": ["g", "r", "z"]}


def test_reused_cluster_gets_steps_and_a_failed_step_reports_its_logs(moto, compose, wheel):
    bucket = moto.make_bucket("dhs-emr-reuse")
    region = "ap-south-1"
    client = moto.client("emr", region)
    cid = client.run_job_flow(
        Name="existing", ReleaseLabel="emr-7.6.0", LogUri=f"s3://{bucket}/logs",
        Instances={"MasterInstanceType": "m5.xlarge", "SlaveInstanceType": "m5.xlarge",
                   "InstanceCount": 2, "KeepJobFlowAliveWhenNoSteps": True},
        JobFlowRole="EMR_EC2_DefaultRole", ServiceRole="EMR_DefaultRole")["JobFlowId"]
    overrides = emr_overrides(moto, region, bucket, f"cluster.emr.wheel={wheel}",
                              f"cluster.emr.cluster_id={cid}")
    configure_storage(moto)
    jobs = [dhs_emr.Job(f"dhs #{i} source={s}", ["stage=4c", f"source={s}"]) for i, s in
            enumerate(["sersic", "cosmos"])]
    sleep = finish_steps(moto, bucket, "FAILED", "Step failed with exitCode 1")
    with pytest.raises(dhs_emr.EmrError) as err:
        dhs_emr.submit_jobs(emr_settings(compose(overrides)), jobs, quiet_console(), sleep=sleep)
    report = err.value.report
    assert report["cluster_id"] == cid and not report["created"] and not report["ok"]
    assert [s["state"] for s in report["steps"]] == ["FAILED", "FAILED"]
    assert [s["name"] for s in report["steps"]] == [j.name for j in jobs]
    for s in report["steps"]:
        assert s["reason"] == "Step failed with exitCode 1"
        assert s["logs"] == f"s3://{bucket}/logs/{cid}/steps/{s['step_id']}/"
        assert s["logs"] in str(err.value)
    steps = client.list_steps(ClusterId=cid)["Steps"][::-1]
    assert [s["Config"]["Args"][-3] for s in steps] == ["source=sersic", "source=cosmos"]
    assert client.describe_cluster(ClusterId=cid)["Cluster"]["Name"] == "existing"


def test_cli_submits_instead_of_running(moto, wheel, tmp_path):
    """`dhs stage=4c cluster=emr ...` submits one step and reports its completion."""
    bucket = moto.make_bucket("dhs-emr-cli")
    region = "ca-central-1"
    overrides = emr_overrides(moto, region, bucket, f"cluster.emr.wheel={wheel}",
                              f"hydra.run.dir={tmp_path / 'run'}")
    with finishing(moto, bucket, "COMPLETED"):
        proc = subprocess.run([str(Path(sys.executable).parent / "dhs"), *overrides], cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (cluster,) = clusters_of(moto, bucket)
    (step,) = moto.client("emr", region).list_steps(ClusterId=cluster.id)["Steps"]
    assert step["Status"]["State"] == "COMPLETED"
    assert "bands=[g,r,z]" in step["Config"]["Args"]
    assert f"step {step['Id']} COMPLETED" in proc.stdout
    record = json.loads((tmp_path / "run" / "dhs_run.json").read_text())
    assert record["status"] == "ok" and record["summary"]["cluster_id"] == cluster.id
