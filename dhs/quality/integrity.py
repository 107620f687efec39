"""Integrity checks of a 4c dataset against its manifest and its own shard markers: task_ids
unique and equal to the manifest's, rows per split, one fingerprint (settings) in every shard and
in the record, stamps and metrics committed by the same shards."""

from __future__ import annotations

import json
from typing import Optional

from dhs.io import datasets as dsets
from dhs.io import shards, storage
from dhs.quality.report import _check


def _ids_by_split(uri: str) -> tuple[list[str], dict[str, int]]:
    t = dsets.read_dataset(uri, columns=["task_id", dsets.PARTITION_COL])
    split: dict[str, int] = {}
    for s in t.column(dsets.PARTITION_COL).to_pylist():
        split[str(s)] = split.get(str(s), 0) + 1
    return t.column("task_id").to_pylist(), dict(sorted(split.items()))


def _record(uri: str) -> Optional[dict]:
    path = storage.join(uri, "_dhs_record.json")
    return json.loads(storage.read_text(path)) if storage.exists(path) else None


def check_dataset(metrics: str, stamps: str, manifest: str, metrics_only: bool = False) -> list[dict]:
    """The integrity checks (``_check`` dicts) of the 4c outputs of one experiment."""
    out = []
    man_ids, man_split = _ids_by_split(manifest)
    man_set = set(man_ids)
    dirs = {"metrics": metrics} if metrics_only else {"metrics": metrics, "stamps": stamps}
    for kind, uri in dirs.items():
        if not dsets.data_files(uri):
            out.append(_check(f"{kind}_task_ids_unique", False, f"no files under {uri}"))
            continue
        ids, split = _ids_by_split(uri)
        dup = len(ids) - len(set(ids))
        out.append(_check(f"{kind}_task_ids_unique", dup == 0,
                          f"{len(ids)} rows, all task_ids distinct" if not dup else f"{dup} duplicate task_id row(s)"))
        missing, extra = len(man_set - set(ids)), len(set(ids) - man_set)
        out.append(_check(f"{kind}_task_ids_match_manifest", not missing and not extra,
                          f"the {len(man_set)} task_ids of {manifest}" if not (missing or extra)
                          else f"{missing} manifest task(s) missing, {extra} task(s) not in the manifest "
                               "(rerun `dhs stage=4c`)"))
        out.append(_check(f"{kind}_rows_per_split", split == man_split,
                          f"{split}" + ("" if split == man_split else f"; the manifest has {man_split}")))
    out += _check_markers(dirs)
    return out


def _check_markers(dirs: dict[str, str]) -> list[dict]:
    ms = {kind: shards.markers(uri) for kind, uri in dirs.items()}
    out = []
    for kind, uri in dirs.items():
        complete = storage.exists(storage.join(uri, shards.SUCCESS))
        out.append(_check(f"{kind}_complete", complete, f"_SUCCESS {'present' if complete else 'missing'} in {uri}"))
        digests = {(m.get("fingerprint") or {}).get("settings_digest") for m in ms[kind].values()}
        rec = _record(uri) or {}
        want = shards.Fingerprint("", rec["shard_settings"]).settings_digest if rec.get("shard_settings") else None
        ok = bool(ms[kind]) and None not in digests and digests == {want}
        out.append(_check(f"{kind}_shard_fingerprints", ok,
                          f"{len(ms[kind])} shards with the record's settings" if ok else
                          f"{len(digests)} distinct settings in {len(ms[kind])} shard markers, record "
                          f"{'has none' if want is None else 'differs'} (rerun `dhs stage=4c`)"))
    if "stamps" in ms:
        same = {n for n in ms["metrics"] if (ms["metrics"][n].get("fingerprint") or {}).get("digest")
                == (ms["stamps"].get(n, {}).get("fingerprint") or {}).get("digest")}
        odd = sorted((set(ms["metrics"]) | set(ms["stamps"])) - same)
        out.append(_check("stamps_metrics_same_shards", not odd,
                          "every shard committed in both with one fingerprint" if not odd
                          else f"shards {odd[:5]} differ between stamps and metrics (rerun `dhs stage=4c`)"))
    return out
