"""Task executors: one interface, joblib and Spark backends.

A stage hands over deterministic shards (picklable, usually small dicts), a shard function
``fn(shard, settings) -> dict`` defined at module level and the stage's frozen settings object
(small, picklable; never the config); the executor runs ``fn`` on every shard and returns the
summaries in shard order, whatever the backend or the number of workers. The shard function
writes its own output through ``dhs.io`` (atomic per shard) and returns counts only. Workers
configure storage from ``ExecutorSettings.storage`` before their shards run.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

from dhs.errors import DhsError
from dhs.io.storage import StorageSettings

ShardFn = Callable[[Any, Any], dict]
BACKENDS = ("local", "spark_local", "emr")
#: Environment every Spark Python worker gets (``spark.executorEnv.*``) on every master, and
#: every EMR node; a value set in the driver's environment is passed on instead of the default.
WORKER_ENV: dict[str, str] = {
    "NUMBA_CACHE_DIR": "/tmp/numba_cache",
    "MPLCONFIGDIR": "/tmp/matplotlib",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
}


@dataclass(frozen=True)
class ExecutorSettings:
    """Where shards run: ``backend`` 'local' (joblib, ``n_jobs`` workers, -1 = all cores),
    'spark_local' or 'emr' (PySpark with ``spark_master`` and extra ``spark_conf`` pairs,
    Python workers running ``python``: None = see ``dhs.executors.spark.worker_python``);
    ``storage`` configures every worker's object store (with credentials for remote workers)."""

    backend: str = "local"
    n_jobs: int = -1
    spark_master: str = "local[*]"
    spark_conf: tuple[tuple[str, str], ...] = ()
    storage: StorageSettings = field(default_factory=StorageSettings)
    python: Optional[str] = None


class ShardError(RuntimeError):
    """Shard functions raised; every other shard ran (and committed) first. The message names
    the first failed shard and carries its worker's traceback."""


class ShardInputError(DhsError):
    """A shard function raised an error the user can fix (a ``DhsError``); every other shard
    ran first. The message is the worker's, with the shard named."""


def run_shards(fn: ShardFn, shards: Sequence[Any], settings: Any, executor: ExecutorSettings, *,
               desc: str = "shards", console: Any = None,
               warm: Callable[[Any], None] | None = None) -> list[dict]:
    """Run ``fn(shard, settings)`` on every shard with the backend of ``executor``.

    Every shard runs even when some fail; then ShardInputError (a user error) or ShardError
    (a bug, with the worker's traceback) names the first failure.
    ``warm(settings)`` (module level), when given, runs once in each worker process before its
    first shard (imports, loaded data), so no shard pays for it (joblib: the worker initializer).
    """
    if not shards:
        return []
    shards = [detach_tables(s) for s in shards]
    if executor.backend == "local":
        from dhs.executors.local import run_local

        return run_local(fn, shards, settings, executor, desc=desc, console=console, warm=warm)
    if executor.backend in ("spark_local", "emr"):
        from dhs.executors.spark import run_spark

        return run_spark(fn, shards, settings, executor, desc=desc, console=console)
    raise ValueError(f"cluster.name={executor.backend!r}: unknown backend; expected "
                     + ", ".join(BACKENDS))


def detach_tables(obj: Any) -> Any:
    """``obj`` with every pyarrow Table/RecordBatch (in dicts, lists, tuples) copied to its own
    buffers. Shards travel to workers by pickle, and a pickled pyarrow slice carries its whole
    parent table: a shard of 100 rows cut from a 1e5-row manifest would ship all 1e5 rows.
    Every backend gets the detached shards, so every backend sees the same data layout.
    """
    import numpy as np
    import pyarrow as pa

    if isinstance(obj, (pa.Table, pa.RecordBatch)):
        return obj.take(pa.array(np.arange(obj.num_rows, dtype=np.int64)))
    if isinstance(obj, dict):
        return {k: detach_tables(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        items = [detach_tables(v) for v in obj]
        return type(obj)(*items) if hasattr(obj, "_fields") else type(obj)(items)
    return obj


class DiskFullError(DhsError):
    """A write found no space left on the device: the run stops at once (committed shards are
    kept; a rerun resumes once there is room)."""


def disk_full(exc: BaseException) -> bool:
    import errno

    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def guarded(fn: ShardFn, shard: Any, settings: Any) -> dict:
    """Worker side: ``fn(shard, settings)`` as {ok, result} or {ok: False, error, traceback}.
    A full disk is raised at once (DiskFullError): no other shard could be written either."""
    try:
        return {"ok": True, "result": fn(shard, settings)}
    except Exception as exc:  # reported by unwrap with the shard it belongs to
        if disk_full(exc):
            raise DiskFullError(f"no space left on the device writing {getattr(exc, 'filename', None) or 'a shard'} "
                                f"({exc.strerror}); the run stopped, committed shards are kept. Free space "
                                "(or set paths.data_root elsewhere) and rerun to resume.") from None
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}", "message": str(exc),
                "user_error": isinstance(exc, DhsError), "traceback": traceback.format_exc()}


def describe(shard: Any, limit: int = 200) -> str:
    """A short description of a shard for messages (scalars only: no tables)."""
    if isinstance(shard, dict):
        shard = {k: v for k, v in shard.items() if isinstance(v, (str, int, float, bool))}
    text = repr(shard)
    return text if len(text) <= limit else text[:limit] + "..."


def unwrap(shards: Sequence[Any], outcomes: Sequence[dict]) -> list[dict]:
    """Driver side: the summaries in shard order, or an error naming the first failure."""
    failed = [i for i, o in enumerate(outcomes) if not o["ok"]]
    if failed:
        first = outcomes[failed[0]]
        where = f"{len(failed)} of {len(shards)} shards failed (the others ran); first: shard " \
                f"#{failed[0]} {describe(shards[failed[0]])}"
        if first.get("user_error"):
            raise ShardInputError(f"{first['message']} ({where})")
        raise ShardError(f"{where}: {first['error']}\n--- worker traceback ---\n{first['traceback']}")
    return [o["result"] for o in outcomes]
