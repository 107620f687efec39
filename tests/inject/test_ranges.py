"""4c shards as manifest ranges: the same rows as sorting the whole manifest and slicing it."""

from __future__ import annotations

import pickle

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from dhs.inject import ranges
from dhs.io import datasets as dio
from dhs.stages.inject import make_shards


def write_manifest(root, n_files: int = 3, rows: int = 900, seed: int = 7, by_brick: bool = False) -> str:
    """A hive-partitioned manifest whose files interleave bricks (unsorted, like a user's), or
    with each file sorted by brick (as stage 4a writes them)."""
    rng = np.random.default_rng(seed)
    mdir = root / "manifest"
    for f in range(n_files):
        split = ("train", "val", "test")[f % 3]
        bricks = rng.choice([f"{b:04d}p{b % 7:03d}" for b in range(40)] + ["0999m999"] * 30, rows)
        ids = [f"{rng.integers(1 << 60):016x}" for _ in range(rows)]
        table = pa.table({"task_id": ids, "brickname": bricks.astype(str),
                          "theta_e": rng.random(rows), "stamp_size": np.full(rows, 64, np.int32)})
        if by_brick:
            table = table.sort_by("brickname")
        (mdir / f"region_split={split}").mkdir(parents=True, exist_ok=True)
        pq.write_table(table, mdir / f"region_split={split}" / f"part-{f:05d}.parquet", row_group_size=97)
    return str(mdir)


def test_range_shards_hold_the_rows_of_the_sorted_manifest(tmp_path):
    mdir = write_manifest(tmp_path)
    for max_tasks in (50, 100, 5000):  # a brick split in pieces, several bricks, everything
        ref = make_shards(dio.read_dataset(mdir), "exp", max_tasks)
        got, bricks = ranges.plan_shards(mdir, "exp", max_tasks)
        assert [s["shard_id"] for s in got] == [s["shard_id"] for s in ref]
        for r, g in zip(ref, got):
            rows = ranges.load_rows(g)
            assert rows.equals(r["rows"].combine_chunks()), (max_tasks, g["shard_id"])
            assert g["n_rows"] == rows.num_rows
        assert bricks.column("brickname").to_pylist() == sorted(set(dio.read_dataset(mdir).column(
            "brickname").to_pylist()))
    assert ranges.first_value(got[0], "stamp_size") == 64


def test_what_travels_does_not_grow_with_rows_per_brick(tmp_path):
    small = ranges.plan_shards(write_manifest(tmp_path / "a", rows=300, by_brick=True), "e", 10 ** 6)[0]
    large = ranges.plan_shards(write_manifest(tmp_path / "b", rows=30000, by_brick=True), "e", 10 ** 6)[0]
    assert large[0]["n_rows"] == 100 * small[0]["n_rows"]
    size_small, size_large = len(pickle.dumps(small)), len(pickle.dumps(large))
    assert size_large < 1.5 * size_small  # per-row pickling would be 100 x
