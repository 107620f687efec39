"""EMR memory settings sized from the workload, the pinned constraints file, the run record."""

from __future__ import annotations

import importlib.metadata as md
import io

import pytest
from rich.console import Console

from dhs.executors.emr import memory
from dhs.executors.emr import submit as dhs_emr
from dhs.executors.emr.constraints import constraints_text
from dhs.io import storage
from dhs.stages.settings import emr_settings
from tests.executors.emr_helpers import emr_overrides, finish_steps
from tests.s3_server import configure_storage

pytestmark = pytest.mark.s3
GB = 1024 ** 3


def conf_pairs(args: list[str]) -> dict[str, str]:
    """The ``--conf key=value`` pairs of a spark-submit command."""
    return dict(args[i + 1].split("=", 1) for i, a in enumerate(args) if a == "--conf")


def test_python_memory_covers_every_worker_with_its_bank():
    bank = 20000 * 37 * 1024  # a 20 k-galaxy bank on disk
    conf = memory.executor_memory_conf(bank)
    cores = int(conf["spark.executor.cores"])
    need = cores * (0.7 * GB + bank)  # each worker: the science stack plus the whole bank
    pyspark = memory.parse_mb(conf["spark.executor.pyspark.memory"]) * 1024 ** 2
    assert need < pyspark < 1.5 * need
    # YARN's default overhead (10% of the heap) would not even hold one worker
    assert memory.parse_mb(conf["spark.executor.memoryOverhead"]) > 0.1 * memory.parse_mb(
        conf["spark.executor.memory"])
    two = memory.executor_memory_conf(bank, {"spark.executor.cores": "2"})
    assert memory.parse_mb(two["spark.executor.pyspark.memory"]) * 2 == \
        memory.parse_mb(conf["spark.executor.pyspark.memory"])
    mine = memory.executor_memory_conf(bank, {"spark.executor.pyspark.memory": "9g"})
    assert mine["spark.executor.pyspark.memory"] == "9g"
    assert memory.container_mb(conf) == sum(memory.parse_mb(conf[k]) for k in (
        "spark.executor.memory", "spark.executor.memoryOverhead", "spark.executor.pyspark.memory"))
    assert memory.parse_mb("1.5g") == 1536 and memory.parse_mb("512m") == 512
    sersic = memory.executor_memory_conf(memory.bank_bytes("sersic", "s3://b/bank.h5")[0])
    assert memory.parse_mb(sersic["spark.executor.pyspark.memory"]) < \
        memory.parse_mb(conf["spark.executor.pyspark.memory"])


def test_constraints_pin_the_installed_runtime_dependencies():
    text = constraints_text()
    pins = dict(line.split("==") for line in text.splitlines() if not line.startswith("#"))
    for name in ("numpy", "pyarrow", "astropy", "hydra-core", "omegaconf", "lenstronomy"):
        assert pins[name] == md.version(name)
    # transitive: numpy's and boto3's own dependencies are pinned too
    assert pins["botocore"] == md.version("botocore") and "antlr4-python3-runtime" in pins
    assert "pyspark" not in pins and "dhs" not in pins and "pytest" not in pins  # cluster's / dev


def test_requests_carry_memory_settings_constraints_and_the_record_path(moto, compose, wheel):
    bucket = moto.make_bucket("dhs-emr-mem")
    region = "us-east-2"
    configure_storage(moto)
    bank_uri = f"s3://{bucket}/bank/cosmos_bank.h5"
    storage.write_bytes_atomic(bank_uri, b"\0" * (3 << 20))  # a 3 MB bank
    overrides = emr_overrides(moto, region, bucket, f"cluster.emr.wheel={wheel}",
                              f"paths.cosmos_bank={bank_uri}",
                              "cluster.spark_conf={spark.executor.cores:3,spark.task.maxFailures:8}")
    cfg = compose(overrides)
    job = dhs_emr.Job("dhs #0 stage=4c", overrides, {})
    result = dhs_emr.submit_jobs(emr_settings(cfg), [job], Console(file=io.StringIO(), width=200),
                                 sleep=finish_steps(moto, bucket, "COMPLETED"))
    (listed,) = moto.client("emr", region).list_steps(ClusterId=result["cluster_id"])["Steps"]
    args = listed["Config"]["Args"]
    conf = conf_pairs(args)
    assert conf["spark.executor.cores"] == "3" and conf["spark.task.maxFailures"] == "8"
    per_worker = memory.parse_mb(conf["spark.executor.pyspark.memory"]) / 3 * 1024 ** 2
    assert 0.7 * GB + (3 << 20) < per_worker < 1.5 * (0.7 * GB + (3 << 20))
    assert "spark.executor.memoryOverhead" in conf
    assert not any(a.startswith("cluster.spark_conf") for a in args)  # given as --conf only
    assert result["memory"]["bank_bytes"] == 3 << 20
    # the constraints file staged next to the wheel, handed to the bootstrap action
    staged = storage.read_text(f"{result['staging']}/constraints.txt")
    assert f"numpy=={md.version('numpy')}" in staged.splitlines()
    assert "-c" in storage.read_text(f"{result['staging']}/bootstrap.sh")
    # the run directory's copy goes next to the data
    assert result["steps"][0]["run_record"].startswith(f"s3://{bucket}/data/runs/{result['run_id']}/")


def test_driver_copies_the_run_directory_when_the_run_ends(tmp_path):
    from dhs.executors.emr.bootstrap import driver_script

    namespace: dict = {}
    exec(compile(driver_script(), "dhs_driver.py", "exec"), namespace)  # noqa: S102
    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    (run / "dhs_run.json").write_text('{"status": "ok"}')
    (run / ".hydra" / "config.yaml").write_text("a: 1\n")
    dest = tmp_path / "copy"
    namespace["copy_run"](str(run), str(dest))
    assert (dest / "dhs_run.json").read_text() == '{"status": "ok"}'
    assert (dest / ".hydra" / "config.yaml").read_text() == "a: 1\n"
