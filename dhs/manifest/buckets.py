"""Stage 4a's candidates with bounded memory: the parent catalog streamed into brick buckets.

The parent table is read in record batches (``dhs.io.tables.iter_table``) and every row goes to
bucket ``hash(brickname) % n`` (a temporary Parquet file); a brick never spans two buckets, so the
duplicate rule (same brickname and objid, or brickname, ra and dec) holds inside a bucket. Each
bucket is then deduplicated, filtered and joined with the brick table bucket by bucket, and only
narrow per-galaxy columns (row number, sort key, stratum, split, selection-set membership, brick
code: about 25 bytes a galaxy) stay in memory for the allocation, which needs the whole sample.
The galaxies the allocation picked are routed once more, by brick shard, into range buckets
from which the manifest shards are built (``dhs.manifest.rows.BucketedBuilder``). Row numbers
keep the galaxies in the order of the parent table, so every result equals the whole-table one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dhs import draws
from dhs.io import storage
from dhs.io.tables import column_numpy, coordinate_problems, iter_table, read_table
from dhs.manifest.candidates import (BRICK_COLUMNS, PARENT_COLUMNS, PARENT_NUMERIC, PARENT_OPTIONAL,
                                     SELECTION_COLUMNS, SHAPE_COLUMNS, Candidates, ManifestInputs,
                                     _dedupe, check_split_counts, finish_candidates, quartile_edges,
                                     read_brick_table, read_selections)

#: Most buckets (open Parquet writers) of one pass, whatever manifest.bucket_rows asks.
MAX_BUCKETS = 256
#: Largest record batch read from the parent table (rows).
MAX_BATCH_ROWS = 1 << 17
ROW = "_row"    # position of a galaxy in the parent table (after the flag filter)
CAND = "_cand"  # index of a galaxy among the candidates
_STRINGS = ("brickname", "region_split")
_INTEGERS = ("objid", "region_id")


def n_buckets(n_rows: int, bucket_rows: int) -> int:
    """Buckets for ``n_rows`` rows at about ``bucket_rows`` rows each (1 to MAX_BUCKETS)."""
    return int(min(MAX_BUCKETS, max(1, -(-int(n_rows) // max(int(bucket_rows), 1)))))


class BucketWriters:
    """One Parquet file per bucket under ``root``, written batch by batch."""

    def __init__(self, root: str, prefix: str):
        self.root, self.prefix = root, prefix
        self._open: dict[int, Any] = {}

    def path(self, b: int) -> str:
        return storage.join(self.root, f"{self.prefix}{b:05d}.parquet")

    def write(self, table: pa.Table, bucket: np.ndarray) -> None:
        import pyarrow.parquet as pq

        if table.num_rows == 0:
            return
        order = np.argsort(bucket, kind="stable")
        ids, starts = np.unique(bucket[order], return_index=True)
        stops = np.append(starts[1:], len(order))
        for b, lo, hi in zip(ids.tolist(), starts.tolist(), stops.tolist()):
            if b not in self._open:
                sink = storage.open_output(self.path(b))
                self._open[b] = (sink, pq.ParquetWriter(sink, table.schema))
            self._open[b][1].write_table(table.take(pa.array(order[lo:hi])))

    def close(self) -> list[int]:
        """Close every file; the buckets that got rows."""
        for sink, writer in self._open.values():
            writer.close()
            sink.close()
        return sorted(self._open)

    def read(self, b: int) -> pa.Table | None:
        import pyarrow.parquet as pq

        if b not in self._open:
            return None
        with storage.open_input(self.path(b)) as f:
            return pq.read_table(f)


@dataclass
class BucketedCandidates:
    """The allocation's view of every candidate (``cand``: parent is empty) and the buckets."""

    cand: Candidates
    writers: BucketWriters          # candidate buckets (ROW + the columns the manifest copies)
    offsets: np.ndarray             # first candidate of each bucket in bucket order
    index: np.ndarray               # candidate index of each row in bucket order
    buckets: list[int] = field(default_factory=list)


def _canonical(batch: pa.Table, names: list[str]) -> pa.Table:
    """The parent columns with one type each (strings, int64 ids, float64 values): every batch
    of every file writes the same Parquet schema; the manifest casts them to its own types."""
    cols = {}
    for c in names:
        typ = pa.string() if c in _STRINGS else pa.int64() if c in _INTEGERS else pa.float64()
        cols[c] = batch.column(c).cast(typ)
    return pa.table(cols)


def _route(inputs: ManifestInputs, root: str, bucket_rows: int, funnel: list, warnings: list
           ) -> tuple[BucketWriters, list[int], str]:
    """Pass 1: filter the parent table batch by batch and write each row to its brick bucket."""
    flag = inputs.require_lrg_flag or None
    stream = iter_table(inputs.parent, PARENT_COLUMNS + ((flag,) if flag else ()),
                        min(int(bucket_rows), MAX_BATCH_ROWS), what="parent",
                        optional=PARENT_OPTIONAL + SHAPE_COLUMNS, true_filter=flag, numeric=PARENT_NUMERIC)
    names = [c for c in stream.names if c != flag]
    total = stream.count_rows()
    n = n_buckets(total, bucket_rows)
    writers = BucketWriters(root, "p")
    n_flag, n_good = 0, 0
    bad_by: dict[str, int] = {}
    split_counts: dict[str, int] = {}
    for batch in stream:
        n_flag += batch.num_rows
        problems = coordinate_problems(column_numpy(batch, "ra"), column_numpy(batch, "dec"))
        bad = np.logical_or.reduce(list(problems.values()))
        for why, m in problems.items():
            bad_by[why] = bad_by.get(why, 0) + int(m.sum())
        row = np.arange(n_flag - batch.num_rows, n_flag, dtype=np.int64)
        if bad.any():
            batch, row = batch.filter(pa.array(~bad)), row[~bad]
        n_good += batch.num_rows
        for v in pc.value_counts(batch.column("region_split").combine_chunks()).to_pylist():
            split_counts[v["values"]] = split_counts.get(v["values"], 0) + v["counts"]
        batch = _canonical(batch, names)
        for c in PARENT_OPTIONAL[1:]:
            if c not in names:
                batch = batch.append_column(c, pa.array(np.full(batch.num_rows, np.nan)))
        batch = batch.append_column(ROW, pa.array(row))
        code = pc.dictionary_encode(batch.column("brickname").combine_chunks(), null_encoding="encode")
        per_brick = (draws.hash_strings(code.dictionary) % np.uint64(n)).astype(np.int64)
        writers.write(batch, per_brick[code.indices.to_numpy(zero_copy_only=False)])
    funnel.append(("parent catalog rows", stream.n_read))
    if flag:
        funnel.append((f"{flag} set", n_flag))
    if n_good < n_flag:
        counts = ", ".join(f"{k} {why}" for why, k in bad_by.items() if k)
        warnings.append(f"parent {inputs.parent}: dropped {n_flag - n_good} row(s) with impossible "
                        f"coordinates ({counts})")
        funnel.append(("ra in [0, 360), dec in [-90, 90]", n_good))
    check_split_counts(split_counts, inputs.parent, "parent")
    by = "brickname, objid" if "objid" in names else "brickname, ra, dec"
    return writers, writers.close(), by


def load_bucketed(inputs: ManifestInputs, root: str, bucket_rows: int) -> BucketedCandidates:
    """Read, filter and join the three input tables by brick bucket under ``root`` (a scratch
    folder): Candidates for the allocation (without the parent table), the kept rows in candidate
    buckets. The brick table's PSF sizes and depths pass the unit checks of ``dhs.parent.units``."""
    funnel: list[tuple[str, int]] = []
    warnings: list[str] = []
    sets = read_selections(inputs.region_selections, inputs.selection_set_ids)
    raw, buckets, by = _route(inputs, root, bucket_rows, funnel, warnings)

    bricks = read_brick_table(inputs.bricks_with_region, BRICK_COLUMNS, inputs.pixscale_arcsec)
    uniq = pc.unique(bricks.column("brickname"))
    brick_warning = (f"bricks_with_region: {bricks.num_rows - len(uniq)} duplicate bricknames; "
                     "kept the first row of each") if len(uniq) < bricks.num_rows else None
    edges = {c: quartile_edges(column_numpy(bricks, c), c, inputs.bricks_with_region)
             for c in ("psfsize_r", "psfdepth_r")}
    sel_table, _ = read_table(inputs.region_selections, SELECTION_COLUMNS, what="region_selections")
    regions = [column_numpy(sel_table.filter(pc.equal(sel_table.column("selection_set_id"),
                                                      s.selection_set_id)), "region_id", np.int64)
               for s in sets]

    out = BucketWriters(root, "c")
    n = {"unique": 0, "any": 0, "member": 0, "ok": 0, "member_ok": 0, "dup": 0}
    parts: list[dict[str, Any]] = []
    kept: list[int] = []
    for b in buckets:
        part = _bucket(raw.read(b), bricks, regions, edges, n)
        storage.remove(raw.path(b))
        if part is not None:
            out.write(part.pop("table"), np.full(len(part[ROW]), b, np.int64))
            parts.append(part)
            kept.append(b)
    out.close()
    if n["dup"]:
        warnings.append(f"parent: dropped {n['dup']} duplicate rows (same {by}); kept the first of each")
    funnel.append((f"unique ({by})", n["unique"]))
    if brick_warning:
        warnings.append(brick_warning)
    funnel.append(("in a selected selection set (galaxies)", n["any"]))
    funnel.append(("  galaxy x selection-set rows", n["member"]))
    funnel.append(("with psfsize_r, psfdepth_r (brick join) and rmag", n["ok"]))
    funnel.append(("  galaxy x selection-set rows", n["member_ok"]))
    return _assemble(parts, sets, edges, funnel, warnings, out, kept)


def _bucket(table: pa.Table | None, bricks: pa.Table, regions: list[np.ndarray],
            edges: dict[str, list[float]], n: dict[str, int]) -> dict[str, Any] | None:
    """The candidates of one bucket (duplicates, selection sets, brick join) and their counts."""
    if table is None or table.num_rows == 0:
        return None
    table, n_dup, _ = _dedupe(table)
    n["dup"] += n_dup
    n["unique"] += table.num_rows
    region = column_numpy(table, "region_id", np.int64)
    member = np.array([np.isin(region, r) for r in regions]).reshape(len(regions), table.num_rows)
    in_any = member.any(axis=0)
    n["any"] += int(in_any.sum())
    n["member"] += int(member.sum())
    bidx = pc.index_in(table.column("brickname"), value_set=bricks.column("brickname"))
    found = bidx.is_valid().to_numpy(zero_copy_only=False)
    bidx = bidx.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    vals = {c: column_numpy(bricks, c)[bidx] for c in BRICK_COLUMNS[1:]}
    for v in vals.values():
        v[~found] = np.nan
    ok = (in_any & np.isfinite(vals["psfsize_r"]) & np.isfinite(vals["psfdepth_r"])
          & np.isfinite(column_numpy(table, "rmag")))
    n["ok"] += int(ok.sum())
    n["member_ok"] += int((member & ok).sum())
    keep = np.flatnonzero(ok)
    if not len(keep):
        return None
    table = table.take(pa.array(keep))
    for c, v in vals.items():
        table = table.append_column(c, pa.array(v[keep]))
    part = finish_candidates(table, [], [], edges, [], [])
    return {ROW: column_numpy(table, ROW, np.int64), "rowkey": part.rowkey, "stratum": part.stratum,
            "split": part.split_code, "member": member[:, keep], "bricks": part.bricknames,
            "local": part.brick_code,
            "table": part.parent.drop_columns([c for c in ("objid",) if c in table.column_names])}


def _assemble(parts: list[dict[str, Any]], sets: list, edges: dict, funnel: list, warnings: list,
              writers: BucketWriters, buckets: list[int]) -> BucketedCandidates:
    """Candidates in parent-table order from the buckets' narrow columns."""
    if parts:
        bricknames = pc.unique(pa.chunked_array([p["bricks"] for p in parts]).combine_chunks())
    else:
        bricknames = pa.array([], pa.string())
    bricknames = bricknames.take(pc.array_sort_indices(bricknames))
    codes = [pc.index_in(p["bricks"], value_set=bricknames).to_numpy(zero_copy_only=False)
             .astype(np.int32)[p.pop("local")] for p in parts]
    sizes = np.array([len(p[ROW]) for p in parts], np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)

    def cat(key: str, dtype: Any) -> np.ndarray:  # frees each bucket's array once joined
        return np.concatenate([p.pop(key) for p in parts]) if parts else np.zeros(0, dtype)

    perm = np.argsort(cat(ROW, np.int64), kind="stable")
    index = np.empty(len(perm), np.int64)
    index[perm] = np.arange(len(perm))
    brick_code = (np.concatenate(codes) if codes else np.zeros(0, np.int32))[perm]
    del codes
    set_rows = [np.flatnonzero(m[perm]) for m in
                (np.concatenate([p.pop("member") for p in parts], axis=1) if parts else np.zeros((len(sets), 0), bool))]
    cand = Candidates(
        parent=pa.table({}), sets=sets, set_rows=set_rows,
        split_code=cat("split", np.int8)[perm], stratum=cat("stratum", np.int8)[perm],
        rowkey=cat("rowkey", np.uint64)[perm], brick_code=brick_code, bricknames=bricknames,
        edges=edges, funnel=funnel, warnings=warnings)
    return BucketedCandidates(cand, writers, offsets, index, buckets)
