"""Fingerprinted shards: what made each committed shard, and the dataset summary built from them.

Every shard marker ``_shards/<name>.json`` carries a fingerprint: the checksum of the shard's
input rows (or of its input files), the resolved settings that decide its bytes, and the output
schema version. A rerun keeps a shard only when its fingerprint equals the one it would write now
(:func:`state`); otherwise the shard is redone, and shards the current plan no longer has (a
rebuilt manifest with fewer shards) are removed (:func:`prune`). ``_SUCCESS`` is rebuilt from all
markers present at the end of every run (:func:`finalize`), never from one invocation's counts.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Optional

from dhs.io import storage

if TYPE_CHECKING:  # pyarrow loads where a table is digested (not at CLI start-up)
    import pyarrow as pa

SHARDS_DIR = "_shards"
SUCCESS = "_SUCCESS"
#: The record of a compaction (dhs.io.compact) inside the dataset it compacted.
COMPACTION = "_compaction.json"


def _digest(blob: bytes) -> str:
    return hashlib.blake2b(blob, digest_size=16).hexdigest()


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def rows_digest(table: pa.Table) -> str:
    """Checksum of a table's rows in their order: column names, types and values (not chunking,
    metadata or the pyarrow version)."""
    h = hashlib.blake2b(digest_size=16)
    for name in sorted(table.column_names):
        col = table.column(name)
        h.update(f"{name}:{col.type};".encode())
        h.update(canonical_json(col.to_pylist()).encode())
    return h.hexdigest()


def schema_version(schema: pa.Schema | Iterable[Any], revision: int = 1) -> str:
    """Version of an output schema: its column names and types, plus a ``revision`` bumped when
    a column's meaning changes."""
    cols = [(f.name, str(f.type)) for f in schema]  # a pa.Schema iterates over its fields
    return f"r{revision}-" + _digest(canonical_json(cols).encode())[:12]


@dataclass(frozen=True)
class Fingerprint:
    """What made a shard: ``inputs`` (checksum of its input rows or files), ``settings`` (plain
    data: the resolved settings that decide its bytes, shared by the dataset's shards),
    ``schema`` (output schema version) and ``local`` (plain data: what decides this shard's bytes
    alone, e.g. which of its bricks are blacklisted; in the digest, not in ``settings_digest``)."""

    inputs: str
    settings: dict = field(hash=False, compare=False)
    schema: str = ""
    local: dict = field(default_factory=dict, hash=False, compare=False)

    @property
    def settings_digest(self) -> str:
        return _digest(canonical_json(self.settings).encode())

    @property
    def digest(self) -> str:
        base = f"{self.inputs}|{self.settings_digest}|{self.schema}"
        if self.local:  # shards without local facts keep the digest they had before the field existed
            base += "|" + _digest(canonical_json(self.local).encode())
        return _digest(base.encode())

    def to_json(self) -> dict:
        out = {"digest": self.digest, "inputs": self.inputs, "settings_digest": self.settings_digest,
               "schema": self.schema, "settings": self.settings}
        return {**out, "local": self.local} if self.local else out

    def __post_init__(self) -> None:  # as they read back from a marker (lists, not tuples)
        object.__setattr__(self, "settings", json.loads(canonical_json(self.settings)))
        object.__setattr__(self, "local", json.loads(canonical_json(self.local)))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Fingerprint) and other.digest == self.digest

    def __hash__(self) -> int:
        return hash(self.digest)


def marker_uri(dataset: str, shard: str) -> str:
    return storage.join(dataset, SHARDS_DIR, f"{shard}.json")


def _fp(marker: Optional[dict]) -> dict:
    """A marker's fingerprint (empty for markers without one, or with an older plain digest)."""
    fp = (marker or {}).get("fingerprint")
    return fp if isinstance(fp, dict) else {}


def read_marker(dataset: str, shard: str) -> Optional[dict]:
    uri = marker_uri(dataset, shard)
    if not storage.exists(uri):
        return None
    try:
        return json.loads(storage.read_text(uri))
    except ValueError:  # a torn marker (written by something else than write_text_atomic)
        return None


def committed(dataset: str) -> list[str]:
    return [n[:-5] for n in storage.listdir(storage.join(dataset, SHARDS_DIR))
            if n.endswith(".json") and not n.startswith(".")]


def markers(dataset: str) -> dict[str, dict]:
    """{shard name: marker} of every committed shard (torn markers left out)."""
    out = {}
    for name in committed(dataset):
        m = read_marker(dataset, name)
        if m is not None:
            out[name] = m
    return out


def state(dataset: str, shard: str, fp: Fingerprint) -> str:
    """'current' (committed with this fingerprint), 'stale' (committed with another) or 'absent'."""
    m = read_marker(dataset, shard)
    if m is None:
        return "absent"
    return "current" if _fp(m).get("digest") == fp.digest else "stale"


def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(obj, dict) and obj:
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out.update(flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: obj}


def changes(old: Optional[dict], new: Fingerprint) -> list[tuple[str, Any, Any]]:
    """(key, old, new) of what differs between a marker's fingerprint and ``new``: settings keys,
    then 'input rows' and 'output schema' when those differ."""
    ofp = _fp(old)
    if not ofp:
        return [("fingerprint", None, new.digest)]
    fo, fn = flatten(ofp.get("settings") or {}), flatten(new.settings)
    out = [(k, fo.get(k), fn.get(k)) for k in sorted(set(fo) | set(fn)) if fo.get(k) != fn.get(k)]
    lo, ln = ofp.get("local") or {}, new.local
    out += [(k, lo.get(k), ln.get(k)) for k in sorted(set(lo) | set(ln)) if lo.get(k) != ln.get(k)]
    if ofp.get("inputs") != new.inputs:
        out.append(("input rows", ofp.get("inputs"), new.inputs))
    if ofp.get("schema") != new.schema:
        out.append(("output schema", ofp.get("schema"), new.schema))
    return out


def shard_files(dataset: str, shard: str) -> list[str]:
    """Data files of ``shard`` (``part-<shard>.*`` in the dataset or any partition folder)."""
    out = []
    prefix = f"part-{shard}."
    for name in storage.listdir(dataset):
        uri = storage.join(dataset, name)
        if name.startswith(prefix):
            out.append(uri)
        elif "=" in name and not name.startswith((".", "_")):
            out += [storage.join(uri, n) for n in storage.listdir(uri) if n.startswith(prefix)]
    return out


def remove_shard(dataset: str, shard: str) -> None:
    """Remove a shard: its marker first (so it reads as not done), then its files."""
    storage.remove(marker_uri(dataset, shard))
    for uri in shard_files(dataset, shard):
        storage.remove(uri)


def prune(dataset: str, keep: Iterable[str]) -> list[str]:
    """Remove the committed shards (and stray part files) not in ``keep``; returns their names."""
    keep = set(keep)
    gone = [n for n in committed(dataset) if n not in keep]
    for name in gone:
        remove_shard(dataset, name)
    stray = set()
    for name in storage.listdir(dataset):
        uri = storage.join(dataset, name)
        files = [name] if name.startswith("part-") else (
            storage.listdir(uri) if "=" in name and not name.startswith((".", "_")) else [])
        for f in files:
            if f.startswith("part-"):
                stray.add(f[len("part-"):].split(".", 1)[0])
    for name in sorted(stray - keep):
        remove_shard(dataset, name)
        gone.append(name)
    return sorted(set(gone))


def invalidate(dataset: str) -> None:
    """Mark a dataset incomplete (before a run changes any of its shards)."""
    storage.remove(storage.join(dataset, SUCCESS))


def summarize(dataset: str, expected: Optional[Iterable[str]] = None) -> dict:
    """Counts of a dataset from all its shard markers: rows (and by partition), errors by code,
    bytes, shards, and the fingerprint settings they share (``settings`` None when they differ)."""
    ms = markers(dataset)
    rows_by: dict[str, int] = {}
    errors: dict[str, int] = {}
    nbytes = 0
    digests: dict[str, int] = {}
    settings: Any = None
    for name in sorted(ms):
        m = ms[name]
        for part, n in (m.get("rows") or {}).items():
            rows_by[part] = rows_by.get(part, 0) + int(n)
        for code, n in (m.get("errors") or {}).items():
            errors[code] = errors.get(code, 0) + int(n)
        nbytes += int(m.get("bytes", 0) or 0)
        fp = _fp(m)
        key = fp.get("settings_digest", "")
        digests[key] = digests.get(key, 0) + 1
        if settings is None:
            settings = fp.get("settings")
    missing = sorted(set(expected) - set(ms)) if expected is not None else []
    return {"rows": sum(rows_by.values()), "rows_by_partition": dict(sorted(rows_by.items())),
            "errors": dict(sorted(errors.items())), "bytes": nbytes, "shards": len(ms),
            "shards_missing": missing, "settings_digests": digests,
            "settings": settings if len(digests) == 1 else None,
            "schema": sorted({_fp(m).get("schema", "") for m in ms.values()})}


def finalize(dataset: str, expected: Iterable[str], extra: Optional[dict] = None) -> dict:
    """Write ``_SUCCESS`` from all markers present when every expected shard is committed with
    one set of settings; returns the summary (with ``complete``)."""
    summary = summarize(dataset, list(expected))
    summary["complete"] = not summary["shards_missing"] and len(summary["settings_digests"]) <= 1
    if summary["complete"]:
        storage.write_text_atomic(storage.join(dataset, SUCCESS),
                                  json.dumps({**(extra or {}), **summary}, indent=2, sort_keys=True,
                                             default=str))
    return summary


@dataclass
class Plan:
    """What a run does to the shards of its datasets: ``todo`` (absent, stale or redone),
    ``kept`` (current), ``stale`` {shard: [(key, old, new), ...]} (committed with another
    fingerprint)."""

    todo: list[str]
    kept: list[str]
    stale: dict[str, list[tuple[str, Any, Any]]]

    def changes(self) -> list[dict]:
        """One row per (key, old, new) over the stale shards, with the number of shards."""
        rows: dict[tuple, int] = {}
        for diffs in self.stale.values():
            for key, old, new in diffs:
                k = (key, canonical_json(old), canonical_json(new))
                rows[k] = rows.get(k, 0) + 1
        return [{"key": k, "old": o, "new": n, "shards": c} for (k, o, n), c in sorted(rows.items())]


def is_compacted(dataset: str) -> bool:
    """True when stage 4p5 compacted ``dataset``: its files then hold the rows of many shards."""
    return storage.exists(storage.join(dataset, COMPACTION))


def plan(dirs: list[str], fps: dict[str, Fingerprint], keep_current: bool, redo: Iterable[str] = ()) -> Plan:
    """Which shards of ``fps`` a run redoes: a shard is kept (with ``keep_current``) only when
    it is current in every one of ``dirs``. ``redo``: shards the run redoes whatever their state.
    In a compacted dataset no shard can be redone alone (its rows share files with others): when
    any is redone, every one is."""
    todo, kept, stale = [], [], {}
    for name, fp in fps.items():
        states = [(d, state(d, name, fp)) for d in dirs]
        if keep_current and all(st == "current" for _, st in states):
            kept.append(name)
            continue
        todo.append(name)
        for d, st in states:
            if st == "stale":
                stale[name] = changes(read_marker(d, name), fp)
                break
    if kept and (todo or set(redo) & set(fps)) and any(is_compacted(d) for d in dirs):
        for name in kept:
            stale[name] = [("compacted by stage 4p5 (files shared by many shards)", "kept", "redone")]
        todo, kept = todo + kept, []
    return Plan(todo, kept, stale)


def begin(dirs: list[str], fps: dict[str, Fingerprint], todo: Iterable[str] = ()) -> dict[str, list[str]]:
    """Before a run writes: mark each dataset incomplete and remove shards that the plan does not
    have (left by an older manifest); a compacted dataset that the run writes into (``todo``
    not empty) is emptied, since its files mix shards. Returns {dataset: removed shards}."""
    removed = {}
    for d in dirs:
        invalidate(d)
        if list(todo) and is_compacted(d):
            removed[d] = prune(d, ())
            storage.remove(storage.join(d, COMPACTION))
        else:
            removed[d] = prune(d, fps)
    return removed


def staging_dir(dataset: str) -> str:
    """Where a ``force=true`` run builds the replacement of ``dataset`` (a hidden sibling)."""
    return storage.join(storage.dirname(dataset), f".{storage.basename(dataset)}.staging")


def _replaced_dir(dataset: str) -> str:
    return storage.join(storage.dirname(dataset), f".{storage.basename(dataset)}.replaced")


def recover(dataset: str) -> None:
    """Undo what a killed run left (call with the dataset's lock held): temporary files in the
    dataset, an unfinished replacement, and a replaced copy (put back when the swap stopped
    between its two renames)."""
    for uri in storage.walk_files(dataset):
        if storage.basename(uri).startswith(".tmp-"):
            storage.remove(uri)
    old, staging = _replaced_dir(dataset), staging_dir(dataset)
    if storage.exists(old):
        if storage.exists(dataset):
            storage.remove(old)
        else:
            storage.rename_dir(old, dataset)
    if storage.exists(staging):
        storage.remove(staging)


def swap_in(staging: str, dataset: str) -> None:
    """Replace ``dataset`` by the committed ``staging`` folder: old aside, new in, old removed."""
    old = _replaced_dir(dataset)
    if storage.exists(old):
        storage.remove(old)
    if storage.exists(dataset):
        storage.rename_dir(dataset, old)
    storage.rename_dir(staging, dataset)
    if storage.exists(old):
        storage.remove(old)
