"""PySpark backend: one shard per partition, executors write their shard, the driver aggregates.

The executors run the same shard function as the joblib backend and write through the same
storage layer, so the bytes out are the same. Only the small summary dicts travel back to the
driver (``collect`` on an RDD of summaries): no DataFrame is built, so nothing is recomputed to
count or aggregate. One SparkSession per process (``getOrCreate``), reused across stages.
"""

from __future__ import annotations

import os
import sys
import threading
import uuid
from typing import Any, Iterator, Sequence

from dhs.console import progress
from dhs.executors import WORKER_ENV, ExecutorSettings, ShardError, unwrap
from dhs.io.storage import StorageSettings

#: Settings for local mode (``local[...]``): no UI, few shuffle partitions, loopback only.
LOCAL_CONF: dict[str, str] = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "4",
    "spark.default.parallelism": "4",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.python.worker.reuse": "true",
    # The driver JVM only schedules tasks and moves small pickles here: C1-only JIT and the
    # serial collector leave the cores to the Python workers (half the JVM's CPU time).
    "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
}


#: What the last run_spark call cost: Spark jobs and tasks (one job, one task per shard).
LAST_RUN: dict[str, Any] = {}


def is_local_master(master: str) -> bool:
    return str(master).startswith("local")


def worker_python(executor: ExecutorSettings) -> str:
    """The interpreter of the Python workers: ``cluster.python``, else ``spark.pyspark.python``
    of ``cluster.spark_conf``, else $PYSPARK_PYTHON, else this interpreter (a local master, or
    a cluster whose nodes share this environment's path)."""
    conf = dict(executor.spark_conf)
    return str(executor.python or conf.get("spark.pyspark.python")
               or os.environ.get("PYSPARK_PYTHON") or sys.executable)


def prepare_environment(master: str, python: str | None = None) -> None:
    """Point Spark's Python workers at ``python`` (this interpreter by default) and, for local
    mode, loopback. Must run before the JVM starts: the gateway copies the environment once."""
    if is_local_master(master):
        os.environ["PYSPARK_PYTHON"] = python or sys.executable
        os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
        os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    else:
        os.environ["PYSPARK_PYTHON"] = python or os.environ.get("PYSPARK_PYTHON") or sys.executable
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)


def session_conf(executor: ExecutorSettings) -> dict[str, str]:
    """Every Spark setting of the session: local-mode defaults, the workers' interpreter and
    environment (numba cache and friends, on every master), then ``cluster.spark_conf``."""
    master = str(executor.spark_master or "local[*]")
    conf = dict(LOCAL_CONF) if is_local_master(master) else {}
    python = worker_python(executor)
    conf["spark.pyspark.python"] = python
    conf["spark.executorEnv.PYSPARK_PYTHON"] = python
    for key, default in WORKER_ENV.items():
        conf[f"spark.executorEnv.{key}"] = os.environ.get(key) or default
    conf.update({str(k): str(v) for k, v in executor.spark_conf})
    return conf


def get_session(executor: ExecutorSettings) -> Any:
    """The process's SparkSession (created once with the executor's master and settings)."""
    from pyspark.sql import SparkSession

    master = str(executor.spark_master or "local[*]")
    prepare_environment(master, executor.python)
    from pyspark import SparkContext

    if SparkContext._active_spark_context is not None:  # reuse: one session per process
        return SparkSession.builder.getOrCreate()
    builder = SparkSession.builder.appName("dhs").master(master)
    for key, value in session_conf(executor).items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


def _partition(fn: Any, settings: Any, storage_settings: StorageSettings,
               items: Iterator[tuple[int, Any]]) -> Iterator[tuple[int, dict]]:
    """Executor side: configure storage, run every shard of the partition."""
    from dhs.executors import guarded
    from dhs.io import storage

    storage.configure_from(storage_settings)
    for index, shard in items:  # errors come back as data: Spark's own error hides Python's
        yield index, guarded(fn, shard, settings)
    freeze_worker_heap()


#: Whether this Python worker has moved its long-lived objects out of the collector's reach.
_FROZEN = False


def freeze_worker_heap() -> None:
    """Once per Python worker, after its first partition: collect, then ``gc.freeze()``.

    A reused PySpark worker runs a full ``gc.collect()`` after every task; with the science
    stack imported (numpy, astropy, numba, lenstronomy) and the per-process caches filled
    (COSMOS bank, brick files) that pass walks a few 1e5 objects, ~0.1 s of CPU per task,
    which is most of Spark's overhead on short shards. Frozen objects (modules, caches: what
    the first partition left alive) are skipped by every later collection; objects created
    later are still collected. The joblib workers run no such pass, so this only brings the
    Spark workers to the same footing; outputs are unaffected.
    """
    global _FROZEN
    if _FROZEN:
        return
    import gc

    gc.collect()  # garbage is freed first; only what is alive now is frozen
    gc.freeze()
    _FROZEN = True


class _Collector(threading.Thread):
    """Runs the Spark job (collect) in a thread so the driver can show progress meanwhile."""

    def __init__(self, sc: Any, rdd: Any, group: str, desc: str) -> None:
        super().__init__(daemon=True)
        self.sc, self.rdd, self.group, self.desc = sc, rdd, group, desc
        self.result: list | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.sc.setJobGroup(self.group, self.desc)
            self.result = self.rdd.collect()
        except BaseException as exc:  # re-raised in the caller's thread
            self.error = exc


def _completed_tasks(sc: Any, group: str) -> int:
    tracker = sc.statusTracker()
    done = 0
    for job_id in tracker.getJobIdsForGroup(group):
        job = tracker.getJobInfo(job_id)
        for stage_id in (job.stageIds if job else []):
            stage = tracker.getStageInfo(stage_id)
            if stage is not None:
                done += stage.numCompletedTasks
    return done


def run_spark(fn: Any, shards: Sequence[Any], settings: Any, executor: ExecutorSettings, *,
              desc: str = "shards", console: Any = None, poll_s: float = 0.2) -> list[dict]:
    """Run ``fn(shard, settings)`` on every shard as one Spark task each; summaries in shard order."""
    from functools import partial

    shards = list(shards)
    if not shards:
        return []
    sc = get_session(executor).sparkContext
    rdd = sc.parallelize(list(enumerate(shards)), numSlices=len(shards))
    rdd = rdd.mapPartitions(partial(_partition, fn, settings, executor.storage))
    group = f"dhs-{uuid.uuid4().hex[:8]}"
    worker = _Collector(sc, rdd, group, desc)
    with progress(console) as bar:
        task = bar.add_task(f"{desc} [spark]", total=len(shards))
        worker.start()
        try:
            while worker.is_alive():
                worker.join(poll_s)
                try:
                    bar.update(task, completed=min(_completed_tasks(sc, group), len(shards)))
                except Exception:  # status tracking is cosmetic; never fail a run on it
                    pass
        except KeyboardInterrupt:
            sc.cancelJobGroup(group)  # stop the executors too, not just this driver loop
            raise
        if worker.error is not None:
            raise worker.error
        bar.update(task, completed=len(shards))
    tracker = sc.statusTracker()
    jobs = [tracker.getJobInfo(j) for j in tracker.getJobIdsForGroup(group)]
    LAST_RUN.clear()
    LAST_RUN.update(group=group, jobs=len(jobs), shards=len(shards),
                    tasks=sum(tracker.getStageInfo(s).numTasks for j in jobs if j for s in j.stageIds
                              if tracker.getStageInfo(s) is not None))
    by_index = dict(worker.result or [])
    missing = [i for i in range(len(shards)) if i not in by_index]
    if missing:
        raise ShardError(f"Spark returned no summary for shards {missing[:10]}")
    return unwrap(shards, [by_index[i] for i in range(len(shards))])


def stop_session() -> None:
    """Stop the process's SparkSession (tests, benchmarks); the next run creates a new one."""
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    if SparkContext._active_spark_context is not None:
        SparkSession.builder.getOrCreate().stop()
