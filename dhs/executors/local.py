"""joblib backend: shards run in worker processes (loky), summaries come back in shard order."""

from __future__ import annotations

import os
from typing import Any, Sequence

from dhs.console import progress


def resolve_n_jobs(n_jobs: int) -> int:
    """``-1`` means all cores; never more workers than cores."""
    cores = os.cpu_count() or 1
    if n_jobs is None or n_jobs <= 0:
        return cores
    return min(int(n_jobs), cores)


def _call(fn: Any, shard: Any, cfg: dict) -> dict:
    from dhs.executors import guarded
    from dhs.io import storage

    storage.configure_from(cfg)
    return guarded(fn, shard, cfg)


def run_local(fn: Any, shards: Sequence[Any], cfg: dict, *, desc: str, console: Any = None) -> list[dict]:
    """Run every shard (in shard order); summaries in shard order, ShardError if any failed."""
    from dhs.executors import unwrap

    n_jobs = min(resolve_n_jobs(cfg["cluster"].get("n_jobs", -1)), len(shards))
    outcomes: list[dict] = []
    with progress(console) as bar:
        task = bar.add_task(desc, total=len(shards))
        if n_jobs == 1:
            for shard in shards:
                outcomes.append(_call(fn, shard, cfg))
                bar.advance(task)
        else:
            from joblib import Parallel, delayed

            par = Parallel(n_jobs=n_jobs, backend="loky", return_as="generator")
            for res in par(delayed(_call)(fn, shard, cfg) for shard in shards):
                outcomes.append(res)
                bar.advance(task)
    return unwrap(shards, outcomes)
