"""joblib backend: shards run in worker processes (loky), summaries come back in shard order."""

from __future__ import annotations

import os
from typing import Any, Sequence

from dhs.console import progress
from dhs.io.storage import StorageSettings


def resolve_n_jobs(n_jobs: int) -> int:
    """``-1`` means all cores; never more workers than cores."""
    cores = os.cpu_count() or 1
    if n_jobs is None or n_jobs <= 0:
        return cores
    return min(int(n_jobs), cores)


def _call(fn: Any, shard: Any, settings: Any, storage_settings: StorageSettings) -> dict:
    from dhs.executors import guarded
    from dhs.io import storage

    storage.configure_from(storage_settings)
    return guarded(fn, shard, settings)


def _init_worker(storage_settings: StorageSettings, warm: Any, settings: Any) -> None:
    """Worker initializer: storage set up and ``warm(settings)`` once per worker process."""
    from dhs.io import storage

    storage.configure_from(storage_settings)
    if warm is not None:
        warm(settings)


def run_local(fn: Any, shards: Sequence[Any], settings: Any, executor: Any, *, desc: str,
              console: Any = None, warm: Any = None) -> list[dict]:
    """Run every shard (in shard order); summaries in shard order, ShardError if any failed.
    ``executor`` is a ``dhs.executors.ExecutorSettings``; ``warm(settings)`` runs once per
    worker before its first shard (loky keeps the workers, and their warm state, between calls
    with the same initializer arguments)."""
    from dhs.executors import unwrap

    n_jobs = min(resolve_n_jobs(executor.n_jobs), len(shards))
    st = executor.storage
    outcomes: list[dict] = []
    with progress(console) as bar:
        task = bar.add_task(desc, total=len(shards))
        if n_jobs == 1:
            _init_worker(st, warm, settings)
            for shard in shards:
                outcomes.append(_call(fn, shard, settings, st))
                bar.advance(task)
        else:
            from joblib import Parallel, delayed

            par = Parallel(n_jobs=n_jobs, backend="loky", return_as="generator",
                           backend_kwargs={"initializer": _init_worker, "initargs": (st, warm, settings)})
            for res in par(delayed(_call)(fn, shard, settings, st) for shard in shards):
                outcomes.append(res)
                bar.advance(task)
    return unwrap(shards, outcomes)
