"""The one brick-sharding rule (dhs.manifest.shards), used by stages 4a and 4c."""

from __future__ import annotations

import numpy as np

from dhs.manifest.shards import brick_runs, brick_shards


def _bricks(*sizes: int) -> np.ndarray:
    return np.repeat(np.array([f"b{i:03d}" for i in range(len(sizes))]), sizes)


def test_runs_of_equal_bricks():
    starts, stops = brick_runs(_bricks(2, 1, 3))
    assert starts.tolist() == [0, 2, 3] and stops.tolist() == [2, 3, 6]
    assert [len(a) for a in brick_runs(np.array([]))] == [0, 0]


def test_whole_bricks_packed_greedily_up_to_max_tasks():
    # 3+3 fit in 6; the next 3 opens a new shard; a brick of 8 > 6 stays whole on its own
    assert brick_shards(_bricks(3, 3, 3, 8, 1), 6) == [(0, 6), (6, 9), (9, 17), (17, 18)]
    assert brick_shards(_bricks(), 6) == []


def test_replicates_count_as_tasks():
    # 2 rows x 3 replicates = 6 tasks per brick: one brick per shard at max_tasks=10
    assert brick_shards(_bricks(2, 2, 2), 10, tasks_per_row=3) == [(0, 2), (2, 4), (4, 6)]
    assert brick_shards(_bricks(2, 2, 2), 12, tasks_per_row=3) == [(0, 4), (4, 6)]


def test_split_bricks_cuts_a_large_brick_into_pieces_of_max_tasks():
    assert brick_shards(_bricks(1, 7, 2), 3, split_bricks=True) == [(0, 1), (1, 4), (4, 7), (7, 10)]
    # a piece shorter than max_tasks shares a shard with the next brick when they fit
    assert brick_shards(_bricks(4, 2), 3, split_bricks=True) == [(0, 3), (3, 6)]


def test_shards_cover_every_row_once_in_order():
    rng = np.random.default_rng(5)
    bricks = _bricks(*rng.integers(1, 40, 60))
    for max_tasks, split in ((1, False), (17, False), (17, True), (1000, True)):
        shards = brick_shards(bricks, max_tasks, split_bricks=split)
        assert shards[0][0] == 0 and shards[-1][1] == len(bricks)
        assert all(a[1] == b[0] for a, b in zip(shards, shards[1:]))
        sizes = np.array([b - a for a, b in shards])
        if split:
            assert sizes.max() <= max_tasks
        else:  # never a brick across two shards
            assert all(bricks[a - 1] != bricks[a] for a, _ in shards[1:])
