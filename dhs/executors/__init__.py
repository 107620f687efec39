"""Task executors: one interface, joblib and Spark backends.

A stage hands over deterministic shards (picklable, usually small dicts) and a shard function
``fn(shard, cfg) -> dict`` defined at module level; the executor runs it on every shard and
returns the summaries in shard order, whatever the backend or the number of workers. The shard
function writes its own output through ``dhs.io`` (atomic per shard) and returns counts only.
"""

from __future__ import annotations

import traceback
from typing import Any, Callable, Sequence

ShardFn = Callable[[Any, dict], dict]


class ShardError(RuntimeError):
    """Shard functions raised; every other shard ran (and committed) first. The message names
    the first failed shard and carries its worker's traceback."""


def run_shards(fn: ShardFn, shards: Sequence[Any], cfg: Any, *, desc: str = "shards",
               console: Any = None) -> list[dict]:
    """Run ``fn`` on every shard with the backend named by ``cfg.cluster.name``.

    Every shard runs even when some fail; then ShardError names the first failure.
    """
    from omegaconf import OmegaConf

    plain = OmegaConf.to_container(cfg, resolve=True) if not isinstance(cfg, dict) else cfg
    name = plain["cluster"]["name"]
    if not shards:
        return []
    shards = [compact(s) for s in shards]
    if name == "local":
        from dhs.executors.local import run_local

        return run_local(fn, shards, plain, desc=desc, console=console)
    if name in ("spark_local", "emr"):
        from dhs.executors.spark import run_spark

        return run_spark(fn, shards, plain, desc=desc, console=console)
    raise ValueError(f"cluster.name={name!r}: unknown backend; expected local, spark_local or emr")


def compact(obj: Any) -> Any:
    """``obj`` with every pyarrow Table/RecordBatch (in dicts, lists, tuples) copied to its own
    buffers. Shards travel to workers by pickle, and a pickled pyarrow slice carries its whole
    parent table: a shard of 100 rows cut from a 1e5-row manifest would ship all 1e5 rows.
    Every backend gets the compacted shards, so every backend sees the same data layout.
    """
    import numpy as np
    import pyarrow as pa

    if isinstance(obj, (pa.Table, pa.RecordBatch)):
        return obj.take(pa.array(np.arange(obj.num_rows, dtype=np.int64)))
    if isinstance(obj, dict):
        return {k: compact(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        items = [compact(v) for v in obj]
        return type(obj)(*items) if hasattr(obj, "_fields") else type(obj)(items)
    return obj


def guarded(fn: ShardFn, shard: Any, cfg: dict) -> dict:
    """Worker side: ``fn(shard, cfg)`` as {ok, result} or {ok: False, error, traceback}."""
    try:
        return {"ok": True, "result": fn(shard, cfg)}
    except Exception as exc:  # reported by unwrap with the shard it belongs to
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc()}


def describe(shard: Any, limit: int = 200) -> str:
    """A short description of a shard for messages (scalars only: no tables)."""
    if isinstance(shard, dict):
        shard = {k: v for k, v in shard.items() if isinstance(v, (str, int, float, bool))}
    text = repr(shard)
    return text if len(text) <= limit else text[:limit] + "..."


def unwrap(shards: Sequence[Any], outcomes: Sequence[dict]) -> list[dict]:
    """Driver side: the summaries in shard order, or ShardError naming the first failure."""
    failed = [i for i, o in enumerate(outcomes) if not o["ok"]]
    if failed:
        first = outcomes[failed[0]]
        raise ShardError(
            f"{len(failed)} of {len(shards)} shards failed (the others ran); first: shard "
            f"#{failed[0]} {describe(shards[failed[0]])}: {first['error']}\n"
            f"--- worker traceback ---\n{first['traceback']}")
    return [o["result"] for o in outcomes]
