"""Task executors: one interface, joblib and Spark backends.

A stage hands over deterministic shards (picklable, usually small dicts) and a shard function
``fn(shard, cfg) -> dict`` defined at module level; the executor runs it on every shard and
returns the summaries in shard order, whatever the backend or the number of workers. The shard
function writes its own output through ``dhs.io`` (atomic per shard) and returns counts only.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

ShardFn = Callable[[Any, dict], dict]


def run_shards(fn: ShardFn, shards: Sequence[Any], cfg: Any, *, desc: str = "shards",
               console: Any = None) -> list[dict]:
    """Run ``fn`` on every shard with the backend named by ``cfg.cluster.name``."""
    from omegaconf import OmegaConf

    plain = OmegaConf.to_container(cfg, resolve=True) if not isinstance(cfg, dict) else cfg
    name = plain["cluster"]["name"]
    if not shards:
        return []
    shards = [compact(s) for s in shards]
    if name == "local":
        from dhs.exec.local import run_local

        return run_local(fn, shards, plain, desc=desc, console=console)
    if name in ("spark_local", "emr"):
        from dhs.exec.spark import run_spark

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
