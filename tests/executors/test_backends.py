"""joblib (1 and 2 workers) and Spark local write byte-identical datasets, same summaries."""

from __future__ import annotations

import pytest

from tests.executors.backends import BACKENDS, digest, run_on_backends
from dhs.config import schema as _registers_schemas  # noqa: F401
from dhs.executors import ExecutorSettings, run_shards
from dhs.executors.synthetic import make_shards, shard_fn
from dhs.io import datasets, storage
from dhs.stages.settings import executor_settings, storage_settings

pytestmark = pytest.mark.spark

N_SHARDS = 5


def _toy_run(cfg):
    dataset = storage.join(str(cfg.paths.data_root), "toy")
    return run_shards(shard_fn, make_shards(dataset, N_SHARDS, rows=12, work=2), None,
                      executor_settings(cfg), desc="toy")


def test_backends_write_identical_bytes_and_summaries(spark, compose, tmp_path):
    results = run_on_backends(compose, ["paths.data_root={root}"], _toy_run,
                              lambda name: str(tmp_path / name))
    assert set(results) == set(BACKENDS)
    ref_summary, ref_digest = results["joblib1"]
    assert [s["shard"] for s in ref_summary] == [f"s{i:04d}" for i in range(N_SHARDS)]
    assert sum(s["rows"] for s in ref_summary) == N_SHARDS * 12
    # every shard wrote its commit marker and at least one partition file
    assert sum(k.startswith("toy/_shards/") for k in ref_digest) == N_SHARDS
    assert any(k.startswith("toy/region_split=") for k in ref_digest)
    for name, (summary, dig) in results.items():
        assert summary == ref_summary, name
        assert dig == ref_digest, name
    table = datasets.read_dataset(str(tmp_path / "spark_local2" / "toy"))
    assert table.num_rows == N_SHARDS * 12
    assert sorted(set(table.column("region_split").to_pylist())) <= ["test", "train", "val"]


def test_one_session_one_job_one_task_per_shard(spark, compose, tmp_path):
    """The session is reused; a run is a single Spark job of one task per shard (no recompute)."""
    import os
    import sys

    from dhs.executors import spark as spark_backend

    cfg = compose([f"paths.data_root={tmp_path}", *BACKENDS["spark_local2"]])
    assert spark_backend.get_session(ExecutorSettings("spark_local", spark_master="local[*]")) is spark
    conf = spark.sparkContext.getConf()
    assert conf.get("spark.ui.enabled") == "false" and conf.get("spark.dhs.check") == "applied"
    assert conf.get("spark.sql.shuffle.partitions") == "4"
    assert os.environ["PYSPARK_PYTHON"] == sys.executable == os.environ["PYSPARK_DRIVER_PYTHON"]
    assert os.environ["SPARK_LOCAL_IP"] == "127.0.0.1"
    assert "-XX:TieredStopAtLevel=1" in conf.get("spark.driver.extraJavaOptions")
    _toy_run(cfg)
    assert spark_backend.LAST_RUN == {**spark_backend.LAST_RUN, "jobs": 1, "tasks": N_SHARDS,
                                      "shards": N_SHARDS}


def _freeze_count(_: int) -> int:
    import gc

    return gc.get_freeze_count()


def test_reused_python_workers_keep_their_heap_frozen(spark, compose, tmp_path):
    """After a partition of shards the worker froze its long-lived objects (gc.freeze), so the
    full collection PySpark runs after every task only walks what is new."""
    _toy_run(compose([f"paths.data_root={tmp_path}", *BACKENDS["spark_local2"]]))
    counts = spark.sparkContext.parallelize(range(4), 4).map(_freeze_count).collect()
    assert max(counts) > 1000, counts  # the reused workers: modules, dhs, caches


def test_spark_executors_write_to_s3_configured_from_cfg(spark, compose, moto):
    bucket = moto.make_bucket("dhs-backends")
    from tests.s3_server import storage_overrides

    out = {}
    for name in ("joblib1", "spark_local2"):
        cfg = compose([f"paths.data_root=s3a://{bucket}/{name}", *storage_overrides(moto),
                       *BACKENDS[name]])
        storage.configure_from(storage_settings(cfg))
        out[name] = (_toy_run(cfg), digest(f"s3://{bucket}/{name}"))
    assert out["spark_local2"][0] == out["joblib1"][0]
    assert out["spark_local2"][1] == out["joblib1"][1] and len(out["joblib1"][1]) > N_SHARDS


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_a_failing_shard_is_named_and_the_others_still_commit(spark, compose, tmp_path, backend):
    from dhs.executors import ShardError

    cfg = compose([f"paths.data_root={tmp_path}", *BACKENDS[backend]])
    shards = make_shards(str(tmp_path / "bad"), 3, rows=2, work=1)
    shards[1]["rows"] = "many"
    with pytest.raises(ShardError, match=r"1 of 3 shards failed.*shard #1 .*'s0001'.*ValueError.*many"):
        run_shards(shard_fn, shards, None, executor_settings(cfg))
    assert datasets.committed_shards(str(tmp_path / "bad")) == ["s0000", "s0002"]


def test_empty_shard_list_runs_nothing(compose):
    assert run_shards(shard_fn, [], None, executor_settings(compose(["cluster=spark_local"]))) == []


def _fill_disk(shard, settings):
    import errno

    with open(shard["log"], "a") as f:
        f.write(f"{shard['i']}\n")
    if shard["i"] == 1:
        raise OSError(errno.ENOSPC, "No space left on device", shard["log"] + ".part")
    return {"i": shard["i"]}


def test_a_full_disk_stops_the_run_at_once_with_one_message(tmp_path, compose):
    from dhs.executors import DiskFullError

    log = str(tmp_path / "ran.txt")
    shards = [{"i": i, "log": log} for i in range(6)]
    with pytest.raises(DiskFullError, match=r"no space left on the device writing .*ran\.txt\.part"):
        run_shards(_fill_disk, shards, None, executor_settings(compose(["cluster.n_jobs=1"])))
    assert open(log).read().split() == ["0", "1"]  # the shards after the full disk never ran
