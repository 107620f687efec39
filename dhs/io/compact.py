"""Parquet compaction: rewrite a dataset into fewer files of about a target size, swapped in atomically.

Partitioning (``region_split=...`` folders) and row order are kept: within each partition, the
input files are read in sorted path order and their rows written in order into
``part-<index:05d>.parquet`` files of about ``target_file_mb`` MB (estimated from the input's
compressed bytes per row). The new files go to a hidden sibling folder together with the
dataset's metadata (``_shards/``, ``_dhs_record*.json``) and a new ``_SUCCESS`` (the old record
plus a ``compaction`` entry with file and row counts); then the old folder is renamed away, the
new one renamed into place, and the old one deleted. On S3 the swap is done object by object.

Every compaction writes ``_compaction.json``: its fingerprint (:func:`fingerprint`: the
fingerprint digests of the shards it compacted, from their ``_shards/`` markers, the settings
``target_file_mb`` and ``compression``, and ``FORMAT``) and the names and sizes of the files it
wrote. A rerun keeps a compaction only when both still hold; when the stage that wrote the
dataset has redone shards since, or the settings changed, the dataset is compacted again.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any, Optional

from dhs.errors import MissingInputError
from dhs.io import datasets as dsets
from dhs.io import storage
from dhs.io.shards import COMPACTION as RECORD
from dhs.io.shards import Fingerprint, canonical_json, markers

#: The compacted layout (part of every compaction fingerprint; bumped when it changes).
FORMAT = "compact/1"


@dataclass
class CompactionReport:
    dataset: str
    status: str = "compacted"
    files_before: int = 0
    files_after: int = 0
    rows: int = 0
    bytes_before: int = 0
    bytes_after: int = 0
    partitions: dict[str, int] = field(default_factory=dict)
    wall_s: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


def _partition_of(dataset: str, uri: str) -> str:
    """Relative folder of a data file inside the dataset ('' at the top)."""
    rel = uri[len(storage.normalize(dataset).rstrip("/")):].lstrip("/")
    return rel.rsplit("/", 1)[0] if "/" in rel else ""


def plan(dataset: str, target_file_mb: float) -> dict[str, dict]:
    """Per partition folder: input files (sorted), rows, bytes and rows per output file."""
    import pyarrow.parquet as pq

    target = max(float(target_file_mb), 1e-3) * 1024 * 1024
    parts: dict[str, dict] = {}
    for uri in dsets.data_files(dataset):
        p = parts.setdefault(_partition_of(dataset, uri), {"files": [], "rows": 0, "bytes": 0})
        with storage.open_input(uri) as f:
            rows = pq.ParquetFile(f).metadata.num_rows
        p["files"].append(uri)
        p["rows"] += rows
        p["bytes"] += storage.size(uri)
    for p in parts.values():
        per_row = p["bytes"] / max(p["rows"], 1)
        p["rows_per_file"] = max(1, int(target // max(per_row, 1e-9)))
        p["n_out"] = max(1, -(-p["rows"] // p["rows_per_file"]))
    return parts


BATCH_BYTES = 64 * 1024 * 1024  #: uncompressed bytes per read batch (bounds memory for stamps)


def _encodings(md: Any) -> dict[str, list[str]]:
    """Column paths written with BYTE_STREAM_SPLIT / dictionary encoding in a file's first row group."""
    out: dict[str, list[str]] = {"byte_stream_split": [], "dictionary": []}
    if md.num_row_groups == 0:
        return out
    rg = md.row_group(0)
    for i in range(rg.num_columns):
        col = rg.column(i)
        if "BYTE_STREAM_SPLIT" in col.encodings:
            out["byte_stream_split"].append(col.path_in_schema)
        elif any("DICTIONARY" in e for e in col.encodings):
            out["dictionary"].append(col.path_in_schema)
    return out


def _batch_rows(md: Any, rows_per_file: int) -> int:
    rows = max(md.num_rows, 1)
    raw = sum(md.row_group(i).total_byte_size for i in range(md.num_row_groups))
    return int(max(1, min(rows_per_file, 65536, BATCH_BYTES // max(raw / rows, 1))))


def _write_partition(files: list[str], out_dir: str, rows_per_file: int, compression: str) -> int:
    """Stream rows of ``files`` in order into part-00000.parquet, ... ; returns files written.

    Column encodings of the first input file (byte-stream-split floats, dictionaries) are kept.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema: Optional[pa.Schema] = None
    enc: dict[str, list[str]] = {}
    writer = None
    sink = None
    index = 0
    in_file = 0

    def open_next():
        nonlocal writer, sink, index, in_file
        sink = storage.open_output(storage.join(out_dir, f"part-{index:05d}.parquet"))
        writer = pq.ParquetWriter(sink, schema, compression=compression,
                                  use_dictionary=enc.get("dictionary") or False,
                                  use_byte_stream_split=enc.get("byte_stream_split") or False)
        index += 1
        in_file = 0

    def close():
        nonlocal writer, sink
        if writer is not None:
            writer.close()
            sink.close()
            writer = sink = None

    for uri in files:
        with storage.open_input(uri) as f:
            pf = pq.ParquetFile(f)
            if schema is None:
                schema = pf.schema_arrow
                enc = _encodings(pf.metadata)
            for batch in pf.iter_batches(batch_size=_batch_rows(pf.metadata, rows_per_file)):
                table = pa.Table.from_batches([batch])
                if not table.schema.equals(schema):
                    try:
                        table = table.select(schema.names).cast(schema)
                    except (KeyError, ValueError, pa.ArrowInvalid) as exc:
                        raise ValueError(f"{uri}: schema differs from the partition's first file and cannot "
                                         f"be cast ({exc}); compaction needs one schema per dataset") from exc
                start = 0
                while start < table.num_rows:
                    if writer is None or in_file >= rows_per_file:
                        close()
                        open_next()
                    take = min(rows_per_file - in_file, table.num_rows - start)
                    writer.write_table(table.slice(start, take))
                    in_file += take
                    start += take
    if writer is None and schema is not None:  # partition of empty files: keep one empty file
        open_next()
    close()
    return index


def _copy_metadata(dataset: str, tmp: str) -> None:
    """Copy _shards/ markers and _dhs_record*.json from the dataset into the new folder."""
    base = storage.normalize(dataset).rstrip("/")
    for uri in storage.walk_files(dataset):
        rel = uri[len(base):].lstrip("/")
        top = rel.split("/", 1)[0]
        if top == dsets.SHARDS_DIR or (top.startswith("_dhs_record") and "/" not in rel):
            storage.write_bytes_atomic(storage.join(tmp, rel), storage.read_bytes(uri))


def _swap(dataset: str, tmp: str) -> None:
    """Replace ``dataset`` by ``tmp``: rename old away, rename new in, delete old."""
    if not storage.is_s3(storage.normalize(dataset)):
        old = storage.join(storage.dirname(dataset), f".{storage.basename(dataset)}.old-{uuid.uuid4().hex[:8]}")
        storage.rename(dataset, old)
        storage.rename(tmp, dataset)
        storage.remove(old)
        return
    # S3 has no folder rename: drop the old objects, then move the new ones in (data files first,
    # _SUCCESS last, so a dataset is never marked complete with a partial file set).
    for uri in storage.walk_files(dataset):
        storage.remove(uri)
    base = storage.normalize(tmp).rstrip("/")
    files = storage.walk_files(tmp)
    last = [u for u in files if storage.basename(u) == dsets.SUCCESS]
    for uri in [u for u in files if u not in last] + last:
        storage.rename(uri, storage.join(dataset, uri[len(base):].lstrip("/")))


def _note_in_record(tmp: str, entry: dict) -> None:
    """Append ``entry`` to the ``compactions`` list of the copied ``_dhs_record.json`` (if any)."""
    uri = storage.join(tmp, "_dhs_record.json")
    if not storage.exists(uri):
        return
    try:
        record = json.loads(storage.read_text(uri))
    except ValueError:
        return
    record.setdefault("compactions", []).append(entry)
    storage.write_text_atomic(uri, json.dumps(record, indent=2, sort_keys=True, default=str))


def _digest(obj: Any) -> str:
    import hashlib

    return hashlib.blake2b(canonical_json(obj).encode(), digest_size=16).hexdigest()


def fingerprint(dataset: str, target_file_mb: float, compression: str) -> Fingerprint:
    """What a compaction of ``dataset`` is made from: the fingerprint digest of each committed
    shard (a marker without one counts by its content; a dataset without markers by the names
    and sizes of its data files), the settings and ``FORMAT``."""
    ms = markers(dataset)
    inputs = ({name: (m.get("fingerprint") or {}).get("digest") or _digest(m) for name, m in ms.items()}
              if ms else {"files": files_state(dataset)})
    return Fingerprint(_digest(inputs), {"target_file_mb": float(target_file_mb), "compression": str(compression)},
                       FORMAT)


def files_state(dataset: str) -> str:
    """Checksum of the data files' paths (relative to the dataset) and sizes."""
    base = storage.normalize(dataset).rstrip("/")
    return _digest(sorted((u[len(base):].lstrip("/"), storage.size(u)) for u in dsets.data_files(dataset)))


def stored(dataset: str) -> dict:
    """The ``_compaction.json`` of the last compaction of ``dataset`` ({} when none)."""
    uri = storage.join(dataset, RECORD)
    try:
        rec = json.loads(storage.read_text(uri)) if storage.exists(uri) else {}
    except ValueError:
        return {}
    return rec if isinstance(rec, dict) else {}


def is_current(dataset: str, fp: Fingerprint) -> bool:
    """True when the last compaction of ``dataset`` was made from its present shards with these
    settings and its files are still those it wrote."""
    rec = stored(dataset)
    return bool(rec) and (rec.get("fingerprint") or {}).get("digest") == fp.digest \
        and rec.get("files") == files_state(dataset)


def compact_dataset(dataset: str, target_file_mb: float = 256.0, *, compression: str = "zstd",
                    require_success: bool = True, record: Optional[dict] = None) -> CompactionReport:
    """Compact ``dataset`` in place (see module doc). Nothing is rewritten when no partition would
    lose files (status 'skipped: already compact'). ``record``: extra provenance (run, config)
    stored with the compaction entry in ``_SUCCESS`` and ``_dhs_record.json``. A dataset whose
    last compaction is current (:func:`is_current`) is left as it is ('skipped: up to date'); one
    compacted before from other shards or with other settings is rewritten even when no
    partition loses files."""
    t0 = time.time()
    dataset = storage.normalize(dataset).rstrip("/")
    success_uri = storage.join(dataset, dsets.SUCCESS)
    if not dsets.data_files(dataset):
        raise MissingInputError(f"no Parquet files under {dataset}; nothing to compact")
    if require_success and not storage.exists(success_uri):
        raise MissingInputError(f"{dataset} has no {dsets.SUCCESS}: its stage has not finished (or is still "
                           f"running); compacting it now could lose rows. Finish the stage first.")
    fp = fingerprint(dataset, target_file_mb, compression)
    current, compacted_before = is_current(dataset, fp), bool(stored(dataset))
    parts = plan(dataset, target_file_mb)
    rep = CompactionReport(dataset=dataset,
                           files_before=sum(len(p["files"]) for p in parts.values()),
                           rows=sum(p["rows"] for p in parts.values()),
                           bytes_before=sum(p["bytes"] for p in parts.values()))
    if current or (not compacted_before and all(p["n_out"] >= len(p["files"]) for p in parts.values())):
        rep.status = "skipped: up to date" if current else "skipped: already compact"
        rep.files_after, rep.bytes_after = rep.files_before, rep.bytes_before
        rep.partitions = {k or ".": len(p["files"]) for k, p in parts.items()}
        rep.wall_s = round(time.time() - t0, 3)
        return rep
    tmp = storage.join(storage.dirname(dataset), f".{storage.basename(dataset)}.compact-{uuid.uuid4().hex[:8]}")
    try:
        for key in sorted(parts):
            p = parts[key]
            rep.partitions[key or "."] = _write_partition(p["files"], storage.join(tmp, key) if key else tmp,
                                                          p["rows_per_file"], compression)
        new_files = dsets.data_files(tmp)
        rep.files_after = len(new_files)
        rep.bytes_after = sum(storage.size(u) for u in new_files)
        written = sum(_rows(u) for u in new_files)
        if written != rep.rows:
            raise RuntimeError(f"compaction of {dataset} wrote {written} rows, expected {rep.rows}; "
                               f"the dataset was left unchanged")
        _copy_metadata(dataset, tmp)
        success: dict[str, Any] = {}
        if storage.exists(success_uri):
            try:
                success = json.loads(storage.read_text(success_uri) or "{}")
            except ValueError:
                success = {"previous": storage.read_text(success_uri)}
        rep.wall_s = round(time.time() - t0, 3)
        entry = {k: v for k, v in rep.as_dict().items() if k != "dataset"}
        entry.update(target_file_mb=float(target_file_mb), written=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                     **(record or {}))
        entry["fingerprint"] = fp.to_json()
        success["compaction"] = entry
        _note_in_record(tmp, entry)
        storage.write_text_atomic(storage.join(tmp, RECORD), json.dumps(
            {"fingerprint": fp.to_json(), "files": files_state(tmp), "written": entry["written"]},
            indent=2, sort_keys=True))
        dsets.mark_success(tmp, success)
    except BaseException:
        if storage.exists(tmp):
            _remove_tree(tmp)
        raise
    _swap(dataset, tmp)
    rep.wall_s = round(time.time() - t0, 3)
    return rep


def _rows(uri: str) -> int:
    import pyarrow.parquet as pq

    with storage.open_input(uri) as f:
        return pq.ParquetFile(f).metadata.num_rows


def _remove_tree(uri: str) -> None:
    if storage.is_s3(storage.normalize(uri)):
        for f in storage.walk_files(uri):
            storage.remove(f)
    else:
        storage.remove(uri)
