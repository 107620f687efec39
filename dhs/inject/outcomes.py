"""The errors of a 4c metrics dataset: the table of reasons, the shards ``retry_failed`` redoes,
and whether the stage failed for good.

Read from the committed dataset (every shard present, not only those of the last run), columns
``task_id, brickname, error_code, error_file, error_status, error_message``; datasets written
before the reason columns existed give nulls there.
"""

from __future__ import annotations

import shlex
from typing import Iterable, Sequence

import numpy as np
import pyarrow as pa

from dhs.inject.failures import error_class, is_failure, is_retryable

COLUMNS = ("task_id", "brickname", "error_code", "error_file", "error_status", "error_message")


def read_outcomes(metrics_dir: str) -> pa.Table:
    """The error columns of every committed row (an empty table when there is none)."""
    from dhs.io import datasets as dio

    empty = pa.table({c: pa.array([], pa.int32() if c == "error_status" else pa.string())
                      for c in COLUMNS})
    if not dio.data_files(metrics_dir):
        return empty
    try:
        t = dio.read_dataset(metrics_dir, columns=list(COLUMNS))
    except (KeyError, ValueError, pa.ArrowInvalid):  # written before the reason columns existed
        t = dio.read_dataset(metrics_dir, columns=["task_id", "brickname", "error_code"])
        n = t.num_rows
        t = t.append_column("error_file", pa.nulls(n, pa.string())) \
             .append_column("error_status", pa.nulls(n, pa.int32())) \
             .append_column("error_message", pa.nulls(n, pa.string()))
    return t.select(list(COLUMNS))


def retry_task_ids(outcomes: pa.Table, blacklist: Iterable[str] = ()) -> set[str]:
    """Task ids of rows a retry can help: transient or input-damaged rows, and
    ``blacklisted_brick`` rows whose brick is no longer on the (applicable) blacklist."""
    bad = set(blacklist)
    codes = outcomes.column("error_code").to_pylist()
    ids = outcomes.column("task_id").to_pylist()
    bricks = outcomes.column("brickname").to_pylist()
    return {t for t, c, b in zip(ids, codes, bricks)
            if is_retryable(c or "") or (c == "blacklisted_brick" and b not in bad)}


def shards_to_redo(shards: Sequence[dict], task_ids: set[str]) -> set[str]:
    """Shard ids among ``shards`` (with rows, or manifest ranges read one shard at a time)
    holding any of ``task_ids``."""
    from dhs.inject.ranges import shard_rows

    if not task_ids:
        return set()
    out = set()
    for sh in shards:
        if not task_ids.isdisjoint(shard_rows(sh).column("task_id").to_pylist()):
            out.add(sh["shard_id"])
    return out


def reason_rows(outcomes: pa.Table, experiment: str) -> list[dict]:
    """One row per error code: class, rows, rows with an HTTP status, and the commonest reason."""
    codes = np.asarray(outcomes.column("error_code").to_pylist(), dtype=object)
    msgs = outcomes.column("error_message").to_pylist()
    files = outcomes.column("error_file").to_pylist()
    status = outcomes.column("error_status").to_pylist()
    rows = []
    for code in sorted({c for c in codes if c}):
        idx = np.flatnonzero(codes == code)
        reasons: dict[str, int] = {}
        for k in idx:
            key = " ".join(str(x) for x in (f"HTTP {status[k]}" if status[k] else "", msgs[k] or "")
                           if x) or "-"
            reasons[key] = reasons.get(key, 0) + 1
        top = max(reasons, key=lambda r: (reasons[r], r))
        example = next((files[k] for k in idx if files[k]), "") or ""
        rows.append({"experiment": experiment, "error": code, "class": error_class(code),
                     "rows": int(idx.size), "retry helps": "yes" if is_retryable(code) else "no",
                     "commonest reason": top[:160], "example file": example[-80:]})
    return rows


def counts(outcomes: pa.Table) -> dict[str, int]:
    """rows, ok, outcomes (edge, nan_pixels, ...), failed for good, of which retryable."""
    codes = [c or "" for c in outcomes.column("error_code").to_pylist()]
    return {"rows": len(codes), "ok": sum(1 for c in codes if not c),
            "outcome": sum(1 for c in codes if c and not is_failure(c)),
            "failed": sum(1 for c in codes if is_failure(c)),
            "retryable": sum(1 for c in codes if is_retryable(c))}


def retry_command(overrides: Sequence[str]) -> str:
    """The command that retries a run's retryable rows: its overrides plus ``retry_failed=true``
    (without ``force``, which would redo everything)."""
    keep = [o for o in overrides if o.lstrip("+~").split("=", 1)[0] not in ("retry_failed", "force")]
    return " ".join(["dhs", *(shlex.quote(o) for o in keep), "retry_failed=true"])


def failure_message(stage: str, totals: dict[str, int], command: str | None) -> str:
    """The one line of a stage that failed for good (after its table of reasons)."""
    msg = (f"stage {stage}: {totals['failed']} of {totals['rows']} row(s) failed for good "
           f"(table of reasons above)")
    if totals["failed"] == 0:
        msg = f"stage {stage}: every one of {totals['rows']} row(s) has an error (table of reasons above)"
    if totals.get("retryable"):
        msg += f"; {totals['retryable']} can be retried: `{command}`"
    return msg


def any_failed(totals: dict[str, int]) -> bool:
    """A stage fails when a row failed for good or when no row is good."""
    return totals["failed"] > 0 or (totals["rows"] > 0 and totals["ok"] == 0)


def merge(parts: Iterable[dict[str, int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for p in parts:
        for k, v in p.items():
            out[k] = out.get(k, 0) + v
    return out
