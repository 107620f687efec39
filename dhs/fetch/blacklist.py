"""The brick blacklist: bricks whose files the survey does not have (HTTP 404 / no such object).

A CSV at ``dhs.layout.blacklist_path(cache_root)`` (``<cache_root>/_blacklist.csv``) with columns
``brick,file,status,time`` (status: the HTTP status or 404 for a missing object; time: UTC ISO
8601). Stage 4b writes it; stage 4c reads ``bricks(path)`` and marks those bricks' tasks
``blacklisted_brick`` instead of failing them.
"""

from __future__ import annotations

import csv
import io
import time
from typing import Any, Iterable

from dhs.errors import InputTableError
from dhs.io import storage

COLUMNS = ("brick", "file", "status", "time")


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def read_rows(uri: str) -> list[dict[str, str]]:
    """Rows of a blacklist file; empty when it does not exist. Raises ValueError on a bad header."""
    if not storage.exists(uri):
        return []
    text = storage.read_text(uri)
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise InputTableError(f"{uri}: blacklist lacks column(s) {missing}; expected header "
                         f"{','.join(COLUMNS)}. Delete the file and re-run stage 4b to rebuild it.")
    return [{c: row[c] for c in COLUMNS} for row in reader]


def write_rows(uri: str, rows: Iterable[dict[str, Any]]) -> None:
    """Write rows (sorted by brick, file; one row per brick and file) atomically."""
    unique = {(str(r["brick"]), str(r["file"])): r for r in rows}
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(COLUMNS), lineterminator="\n")
    w.writeheader()
    for key in sorted(unique):
        w.writerow({c: unique[key][c] for c in COLUMNS})
    storage.write_text_atomic(uri, buf.getvalue())


def update(uri: str, add: Iterable[dict[str, Any]], remove_bricks: Iterable[str] = ()) -> list[dict]:
    """Merge new rows into the file and drop bricks that are now fetched; returns all rows."""
    drop = set(remove_bricks)
    rows = [r for r in read_rows(uri) if r["brick"] not in drop] + list(add)
    if rows or storage.exists(uri):
        write_rows(uri, rows)
    return rows


def bricks(uri: str) -> set[str]:
    return {r["brick"] for r in read_rows(uri)}
