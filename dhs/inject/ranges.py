"""Stage 4c shards as manifest file/row ranges: the driver never holds the manifest's rows.

The driver streams the ``brickname`` column of each manifest file (in the dataset's file
order), run-length encodes it into segments ``(file, start, stop)`` per brick, and cuts shards
with the one brick-sharding rule (``dhs.manifest.shards.brick_shards``) over the bricks in
sorted order: the same shards, row for row, as sorting the whole manifest by (brickname,
task_id) and slicing it. A shard carries ``pieces``: per brick its segments and the slice
``[lo, hi)`` of that brick's rows sorted by task_id (a brick larger than a shard is split).
The worker reads only its segments (``load_rows``), so what travels to an executor is a few
hundred bytes per brick, whatever the number of rows, when each file is sorted by brick (as
stage 4a writes them; any order is read correctly, with one segment per run). Driver memory: one record batch plus
four bytes per row for the brick codes of the cut.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import pyarrow as pa

from dhs.io import datasets as dio
from dhs.io import storage
from dhs.manifest.shards import brick_runs, brick_shards


def _segments(files: list[str]) -> dict[str, list[tuple[int, int, int]]]:
    """{brick: [(file index, start, stop), ...]} from the files' brickname columns, streamed."""
    import pyarrow.parquet as pq

    out: dict[str, list[tuple[int, int, int]]] = {}
    for fi, uri in enumerate(files):
        fsys, path = storage.filesystem(uri)
        with fsys.open_input_file(path) as fh:
            offset = 0
            for batch in pq.ParquetFile(fh).iter_batches(columns=["brickname"], batch_size=1 << 16):
                bricks = batch.column(0).to_numpy(zero_copy_only=False)
                for a, b in zip(*brick_runs(bricks)):
                    name, seg = str(bricks[a]), (fi, offset + int(a), offset + int(b))
                    segs = out.setdefault(name, [])
                    if segs and segs[-1][0] == fi and segs[-1][2] == seg[1]:
                        segs[-1] = (fi, segs[-1][1], seg[2])  # a run continued across batches
                    else:
                        segs.append(seg)
                offset += batch.num_rows
    return out


def plan_shards(manifest_dir: str, exp: str, max_tasks: int) -> tuple[list[dict], pa.Table]:
    """(shards of ``exp``'s manifest as ranges, its distinct bricknames in order as a table).

    A shard is ``{"experiment_id", "shard_id", "manifest_dir", "files", "pieces", "n_rows"}``;
    ``pieces``: ``[(brick, [(file index, start, stop), ...], lo, hi), ...]`` in brick order.
    """
    files = dio.data_files(manifest_dir)
    segs = _segments(files)
    bricks = sorted(segs)
    counts = np.array([sum(b - a for _, a, b in segs[k]) for k in bricks], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)])
    codes = np.repeat(np.arange(len(bricks), dtype=np.int32), counts)
    out = []
    for k, (a, b) in enumerate(brick_shards(codes, max_tasks, split_bricks=True)):
        first, last = int(codes[a]), int(codes[b - 1])
        pieces = [(bricks[i], segs[bricks[i]], int(max(a, starts[i]) - starts[i]),
                   int(min(b, starts[i + 1]) - starts[i])) for i in range(first, last + 1)]
        used = sorted({fi for _, ss, _, _ in pieces for fi, _, _ in ss})
        remap = {fi: j for j, fi in enumerate(used)}
        pieces = [(name, [(remap[fi], s0, s1) for fi, s0, s1 in ss], lo, hi) for name, ss, lo, hi in pieces]
        out.append({"experiment_id": exp, "shard_id": f"{k:05d}", "manifest_dir": manifest_dir,
                    "files": [files[fi] for fi in used], "pieces": pieces, "n_rows": int(b - a)})
    return out, pa.table({"brickname": pa.array(bricks, pa.string())})


def load_rows(shard: dict) -> pa.Table:
    """Worker side: a ranges shard's manifest rows, as the whole-manifest sort would give them."""
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    base = storage.filesystem(shard["manifest_dir"])[1]
    part = ds.partitioning(pa.schema([(dio.PARTITION_COL, pa.string())]), flavor="hive")
    wanted: dict[int, list[int]] = {}
    for _, ss, _, _ in shard["pieces"]:
        for fi, a, b in ss:
            wanted.setdefault(fi, []).extend(range(a, b))
    tables = {}
    for fi, idx in wanted.items():
        fsys, path = storage.filesystem(shard["files"][fi])
        dset = ds.dataset([path], filesystem=fsys, format="parquet", partitioning=part,
                          partition_base_dir=base)
        tables[fi] = (dset.take(pa.array(idx, pa.int64())), {r: j for j, r in enumerate(idx)})
    parts = []
    for _, ss, lo, hi in shard["pieces"]:
        brick = pa.concat_tables([tables[fi][0].take(pa.array([tables[fi][1][r] for r in range(a, b)],
                                                              pa.int64())) for fi, a, b in ss])
        order = pc.sort_indices(brick, sort_keys=[("task_id", "ascending")])
        parts.append(brick.take(order).slice(lo, hi - lo))
    return pa.concat_tables(parts).combine_chunks()


def shard_rows(shard: dict) -> pa.Table:
    """A shard's manifest rows: carried (``rows``) or read from its ranges."""
    return shard["rows"] if "rows" in shard else load_rows(shard)


def fingerprint_shard(shard: dict, s: Any, blacklist: Optional[frozenset] = None) -> Any:
    """Worker side: a ranges shard's fingerprint (``dhs.inject.settings.shard_fingerprint``;
    ``blacklist``: the applicable blacklist, read there when None)."""
    from dhs.inject.settings import shard_fingerprint

    return shard_fingerprint(load_rows(shard), s, blacklist)


def first_value(shard: dict, column: str) -> Any:
    """``column`` of a ranges shard's first manifest row (e.g. the experiment's stamp size)."""
    import pyarrow.parquet as pq

    _, ss, _, _ = shard["pieces"][0]
    fi, start, _ = ss[0]
    fsys, path = storage.filesystem(shard["files"][fi])
    with fsys.open_input_file(path) as fh:
        return pq.read_table(fh, columns=[column]).column(0)[start].as_py()
