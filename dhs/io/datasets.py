"""Parquet datasets: hive-partitioned by ``region_split``, written shard by shard atomically.

A shard ``<name>`` writes one file per partition value, ``<col>=<v>/part-<name>.parquet``, each
through a hidden temporary name and a rename; then a commit marker ``_shards/<name>.json``
(row counts, bytes and, from the stages, the shard's fingerprint: see dhs.io.shards). Re-running a
shard rewrites the same file names and removes its files in partitions it no longer has, so a
killed or repeated run never leaves duplicates. A dataset is complete when ``_SUCCESS`` exists.
Readers ignore names starting with '.' or '_'.
"""

from __future__ import annotations

import io
import json
from typing import TYPE_CHECKING, Any, Iterable, Optional

from dhs.errors import MissingInputError
from dhs.io import storage
from dhs.io.shards import SHARDS_DIR, SUCCESS, Fingerprint, shard_files

if TYPE_CHECKING:  # pyarrow loads where a table is read or written (not at CLI start-up)
    import pyarrow as pa

PARTITION_COL = "region_split"
__all__ = ["SHARDS_DIR", "SUCCESS", "PARTITION_COL", "write_shard", "read_dataset", "data_files"]


def table_to_parquet_bytes(table: pa.Table, compression: str = "zstd", row_group_size: Optional[int] = None,
                           **options: Any) -> bytes:
    """Serialize a table to Parquet bytes; ``options`` go to ``pyarrow.parquet.write_table``.

    Options naming columns absent from the table (e.g. an optional ``arc``) are trimmed.
    """
    import pyarrow.parquet as pq

    names = set(table.column_names)
    if isinstance(options.get("column_encoding"), dict):
        options["column_encoding"] = {k: v for k, v in options["column_encoding"].items()
                                      if k.split(".")[0] in names}
    if isinstance(options.get("use_dictionary"), list):
        options["use_dictionary"] = [k for k in options["use_dictionary"] if k.split(".")[0] in names]
    sink = io.BytesIO()
    pq.write_table(table, sink, compression=compression, row_group_size=row_group_size, **options)
    return sink.getvalue()


def shard_done(dataset: str, shard: str) -> bool:
    return storage.exists(storage.join(dataset, SHARDS_DIR, f"{shard}.json"))


def write_shard(table: pa.Table, dataset: str, shard: str, *, partition_col: str = PARTITION_COL,
                compression: str = "zstd", extra: Optional[dict] = None,
                parquet_options: Optional[dict] = None, return_bytes: bool = False,
                fingerprint: Optional[Fingerprint] = None) -> dict:
    """Write ``table`` as shard ``shard`` of ``dataset``; returns {partition value: rows}
    (or ``{"rows": {...}, "bytes": n}`` with ``return_bytes``).

    Row order inside each partition file is the table's row order. Files of an earlier commit of
    the shard in partitions it no longer has are removed before the marker is written.
    """
    import pyarrow.compute as pc

    counts: dict[str, int] = {}
    nbytes = 0
    before = set(shard_files(dataset, shard))
    written: set[str] = set()
    opts = dict(parquet_options or {})
    if partition_col and partition_col in table.column_names:
        values = sorted(set(table.column(partition_col).to_pylist()), key=str)
        for value in values:
            part = table.filter(pc.equal(table.column(partition_col), value)).drop_columns([partition_col])
            uri = storage.join(dataset, f"{partition_col}={value}", f"part-{shard}.parquet")
            data = table_to_parquet_bytes(part, compression, **opts)
            storage.write_bytes_atomic(uri, data)
            written.add(uri)
            counts[str(value)] = part.num_rows
            nbytes += len(data)
    else:
        uri = storage.join(dataset, f"part-{shard}.parquet")
        data = table_to_parquet_bytes(table, compression, **opts)
        storage.write_bytes_atomic(uri, data)
        written.add(uri)
        counts[""] = table.num_rows
        nbytes += len(data)
    for uri in sorted(before - written):
        storage.remove(uri)
    marker = {"shard": shard, "rows": counts, "bytes": nbytes, **(extra or {})}
    if fingerprint is not None:
        marker["fingerprint"] = fingerprint.to_json()
    storage.write_text_atomic(storage.join(dataset, SHARDS_DIR, f"{shard}.json"),
                              json.dumps(marker, sort_keys=True))
    return {"rows": counts, "bytes": nbytes} if return_bytes else counts


def committed_shards(dataset: str) -> list[str]:
    return [n[:-5] for n in storage.listdir(storage.join(dataset, SHARDS_DIR)) if n.endswith(".json")]


def data_files(dataset: str) -> list[str]:
    """Committed data files of a dataset, sorted by path (deterministic read order)."""
    out = []
    for uri in storage.walk_files(dataset):
        rel = uri[len(storage.normalize(dataset)):].lstrip("/")
        if any(part.startswith((".", "_")) for part in rel.split("/")):
            continue
        if uri.endswith(".parquet"):
            out.append(uri)
    return out


def read_dataset(dataset: str, columns: Optional[list[str]] = None, *,
                 partition_col: str = PARTITION_COL, filters: Any = None) -> pa.Table:
    """Read all committed files (sorted by path), adding the hive partition column back."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    files = data_files(dataset)
    if not files:
        raise MissingInputError(f"no Parquet files under {dataset}; run the stage that writes it first "
                                f"(`dhs stage=plan` lists what each stage writes)")
    fsys, _ = storage.filesystem(dataset)
    paths = [storage.filesystem(f)[1] for f in files]
    base = storage.filesystem(dataset)[1]
    partitioning = ds.partitioning(pa.schema([(partition_col, pa.string())]), flavor="hive") if partition_col else None
    dset = ds.dataset(paths, filesystem=fsys, format="parquet", partitioning=partitioning,
                      partition_base_dir=base)
    return dset.to_table(columns=columns, filter=filters)


def mark_success(dataset: str, record: dict) -> None:
    storage.write_text_atomic(storage.join(dataset, SUCCESS), json.dumps(record, indent=2, sort_keys=True, default=str))


def is_complete(dataset: str) -> bool:
    return storage.exists(storage.join(dataset, SUCCESS))


def iter_batches(dataset: str, columns: Optional[list[str]] = None,
                 batch_size: int = 65536) -> Iterable[pa.RecordBatch]:
    yield from read_dataset(dataset, columns).to_batches(max_chunksize=batch_size)
