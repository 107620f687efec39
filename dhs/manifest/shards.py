"""The one brick-sharding rule of stages 4a and 4c.

Rows sorted by brick are cut into consecutive shards of whole bricks holding about ``max_tasks``
tasks each: bricks are added to a shard while it stays within ``max_tasks`` (a shard always
gets at least one piece). With ``split_bricks`` a brick with more than ``max_tasks`` tasks is
first cut into pieces of ``max_tasks``; without, it forms a shard of its own. Shard boundaries
depend on the rows and ``max_tasks`` only, never on the number of workers.
"""

from __future__ import annotations

import numpy as np


def brick_runs(bricks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(start, stop) row offsets of the runs of equal values in ``bricks`` (sorted by brick)."""
    bricks = np.asarray(bricks)
    if len(bricks) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    starts = np.flatnonzero(np.concatenate([[True], bricks[1:] != bricks[:-1]]))
    return starts, np.append(starts[1:], len(bricks))


def brick_shards(bricks: np.ndarray, max_tasks: int, *, tasks_per_row: int = 1,
                 split_bricks: bool = False) -> list[tuple[int, int]]:
    """(start, stop) row offsets of the shards of rows sorted by brick (``bricks``: a brick key
    per row); every row stands for ``tasks_per_row`` tasks (replicates)."""
    max_tasks, per = max(int(max_tasks), 1), max(int(tasks_per_row), 1)
    starts, stops = brick_runs(bricks)
    step = max(max_tasks // per, 1) if split_bricks else None
    shards: list[tuple[int, int]] = []
    lo, n = 0, 0
    for s, e in zip(starts.tolist(), stops.tolist()):
        for a in range(s, e, step or (e - s)):
            b = min(e, a + step) if step else e
            if n and n + (b - a) * per > max_tasks:
                shards.append((lo, a))
                n = 0
            if not n:
                lo = a
            n += (b - a) * per
    if n:
        shards.append((lo, int(stops[-1])))
    return shards
