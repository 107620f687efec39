"""The brick blacklist: bricks whose files the survey does not have (HTTP 404 / no such object).

A CSV at ``dhs.layout.blacklist_path(cache_root)`` (``<cache_root>/_blacklist.csv``) with columns
``brick,file,status,time,base_url`` (status: the HTTP status or 404 for a missing object; time:
UTC ISO 8601; base_url: the survey root the 404 came from). Stage 4b writes it; stage 4c reads
``bricks(path, base_url)`` and marks those bricks' tasks ``blacklisted_brick`` instead of failing
them.

An entry applies only to the survey it was found missing at: rows made against another
``survey.base_url`` (or written before the column existed) are ignored, and ``foreign`` says how
many, so the stage can say so. Stage 4b drops such rows when it next writes the file.
"""

from __future__ import annotations

import csv
import io
import time
from typing import Any, Iterable

from dhs.errors import ConfigError, InputTableError
from dhs.io import storage

COLUMNS = ("brick", "file", "status", "time", "base_url")
#: Columns a file must have (files written before ``base_url`` existed lack it).
REQUIRED = COLUMNS[:4]


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def read_rows(uri: str) -> list[dict[str, str]]:
    """Rows of a blacklist file; empty when it does not exist. Raises ValueError on a bad header."""
    if not storage.exists(uri):
        return []
    text = storage.read_text(uri)
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
    if missing:
        raise InputTableError(f"{uri}: blacklist lacks column(s) {missing}; expected header "
                              f"{','.join(COLUMNS)}. Delete the file and re-run stage 4b to rebuild it.")
    return [{c: row.get(c) or "" for c in COLUMNS} for row in reader]


def same_source(a: str, b: str) -> bool:
    """Whether two survey roots are the same (trailing slashes ignored)."""
    return bool(a) and a.rstrip("/") == str(b).rstrip("/")


def write_rows(uri: str, rows: Iterable[dict[str, Any]]) -> None:
    """Write rows (sorted by brick, file; one row per brick and file) atomically."""
    unique = {(str(r["brick"]), str(r["file"])): r for r in rows}
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(COLUMNS), lineterminator="\n")
    w.writeheader()
    for key in sorted(unique):
        w.writerow({c: unique[key][c] for c in COLUMNS})
    storage.write_text_atomic(uri, buf.getvalue())


def update(uri: str, add: Iterable[dict[str, Any]], remove_bricks: Iterable[str] = (),
           base_url: str | None = None) -> list[dict]:
    """Merge new rows into the file and drop bricks that are now fetched (and, with ``base_url``,
    rows found against another survey root); returns all rows."""
    drop = set(remove_bricks)
    rows = [r for r in read_rows(uri) if r["brick"] not in drop
            and (base_url is None or same_source(r["base_url"], base_url))] + list(add)
    if rows or storage.exists(uri):
        write_rows(uri, rows)
    return rows


def bricks(uri: str, base_url: str | None = None) -> set[str]:
    """Bricks on the blacklist at ``uri`` (with ``base_url``: only those found missing there)."""
    return {r["brick"] for r in read_rows(uri) if base_url is None or same_source(r["base_url"], base_url)}


def foreign(uri: str, base_url: str) -> dict[str, int]:
    """Entries made against another survey root than ``base_url``: {that root or '(unknown)': bricks}."""
    out: dict[str, set] = {}
    for r in read_rows(uri):
        if not same_source(r["base_url"], base_url):
            out.setdefault(r["base_url"] or "(unknown)", set()).add(r["brick"])
    return {k: len(v) for k, v in sorted(out.items())}


def foreign_note(uri: str, base_url: str) -> str | None:
    """A sentence saying which entries of the blacklist are not applied, or None."""
    other = foreign(uri, base_url)
    if not other:
        return None
    where = "; ".join(f"{n} brick(s) found missing at {k}" for k, n in other.items())
    return (f"blacklist {uri}: {where}, not at survey.base_url={base_url}: not applied "
            "(stage 4b drops them on its next run)")


def all_missing(asked: int, missing: int) -> bool:
    """Every brick a run asked the source for answered 404."""
    return missing > 0 and asked == missing


def check_not_all_missing(asked: int, missing: int, examples: list[str], base_url: str) -> None:
    """A source that has none of the bricks asked is a wrong ``survey.base_url``, not a list of
    missing bricks: raise before anything goes on the blacklist."""
    if all_missing(asked, missing):
        raise ConfigError(
            f"survey.base_url={base_url!r}: every one of the {missing} brick(s) asked is missing "
            f"there (404; e.g. {', '.join(examples)}); nothing was put on the blacklist. Check "
            "survey.base_url (the survey's coadd/ root).")
