"""Run records, dataset records and config diff (`dhs-diff`).

A run directory keeps Hydra's ``.hydra/`` plus ``dhs_run.json``: the resolved config (secrets
redacted), overrides, group choices, package versions, git revision, host, start/end time and
exit status. Every dataset a stage writes gets ``_dhs_record.json`` with the same config plus its
inputs (paths with sizes or checksums) and row counts. ``dhs-diff A B`` compares two of either.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

RUN_RECORD = "dhs_run.json"
DATASET_RECORD = "_dhs_record.json"
SECRET_PATTERN = re.compile(r"(secret|token|password|passwd|credential|aws_access_key_id|private_key)", re.I)
REDACTED = "***"
SECRET_ASSIGNMENT = re.compile(
    r"([\w.\-]*(?:secret|token|password|passwd|credential|aws_access_key_id|private_key)[\w.\-]*)=([^,\s'\"\]]+)", re.I)
VERSIONED = ("dhs", "numpy", "astropy", "hydra-core", "omegaconf", "pyarrow", "h5py", "lenstronomy",
             "joblib", "boto3", "rich", "scipy", "pyspark")


def redact(obj: Any) -> Any:
    """Replace values of secret-looking keys (*secret*, *token*, *password*, ...) by ``***``."""
    if isinstance(obj, dict):
        return {k: (REDACTED if SECRET_PATTERN.search(str(k)) and v is not None else redact(v))
                for k, v in obj.items()}
    if isinstance(obj, list):
        return [redact(v) for v in obj]
    return obj


def plain(obj: Any) -> Any:
    """``obj`` as plain dicts and lists: any mapping (a composed config too, whose values resolve
    their interpolations as they are read) becomes a dict, any non-string sequence a list."""
    if isinstance(obj, Mapping):
        return {k: plain(obj[k]) for k in obj}
    if isinstance(obj, Sequence) and not isinstance(obj, (str, bytes)):
        return [plain(v) for v in obj]
    return obj


def resolved_config(cfg: Mapping) -> dict:
    """The config as a plain dict, interpolations resolved, secrets redacted."""
    return redact(plain(cfg))


@functools.lru_cache(maxsize=1)
def _package_versions() -> tuple[tuple[str, Optional[str]], ...]:
    from importlib import metadata

    out: dict[str, Optional[str]] = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return tuple(out.items())


def package_versions() -> dict[str, Optional[str]]:
    """Versions of Python and of the packages a run depends on (read once per process)."""
    return dict(_package_versions())


@functools.lru_cache(maxsize=1)
def git_revision() -> Optional[str]:
    """The git revision of the dhs source tree, with '-dirty' if it has changes; None if unknown
    (asked once per process)."""
    here = Path(__file__).resolve().parent.parent
    try:
        rev = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5)
        if rev.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5)
        return rev.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def run_record(config: dict, *, overrides: list[str], choices: dict, started: float,
               ended: Optional[float] = None, status: str = "running", error: Optional[str] = None) -> dict:
    """The record of a run: ``config`` is the plain, redacted config (see dhs.config.records)."""
    return {
        "kind": "dhs-run",
        "stage": config["stage"]["name"],
        "config": config,
        "overrides": redact_argv(list(overrides)),
        "choices": {k: v for k, v in sorted(choices.items()) if not str(k).startswith("hydra")},
        "versions": package_versions(),
        "git_revision": git_revision(),
        "host": socket.gethostname(),
        "argv": redact_argv(sys.argv),
        "started": _iso(started),
        "ended": _iso(ended) if ended else None,
        "wall_s": round(ended - started, 3) if ended else None,
        "status": status,
        "error": error,
    }


def redact_argv(argv: list[str]) -> list[str]:
    out = []
    for a in argv:
        key = a.split("=", 1)[0]
        out.append(f"{key}={REDACTED}" if "=" in a and SECRET_PATTERN.search(key) else a)
    return out


def write_run_record(run_dir: Path, record: dict) -> Path:
    path = Path(run_dir) / RUN_RECORD
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True, default=str))
    os.replace(tmp, path)
    return path


def describe_input(uri: str) -> dict:
    """Path plus size (bytes) and, for small files, sha256; directories list file count and bytes."""
    from dhs.io import storage

    try:
        if storage.isdir(uri):
            files = storage.walk_files(uri)
            return {"path": uri, "files": len(files), "bytes": sum(storage.size(f) for f in files)}
        size = storage.size(uri)
        entry: dict[str, Any] = {"path": uri, "bytes": size}
        if size <= 64 * 1024 * 1024:
            entry["sha256"] = storage.sha256(uri)
        return entry
    except FileNotFoundError:
        return {"path": uri, "missing": True}


def write_dataset_record(uri: str, cfg: Mapping, ctx: Any, *, inputs: dict, counts: dict, extra: dict) -> dict:
    """Write ``_dhs_record.json`` in the dataset folder ``uri`` (or beside a file dataset)."""
    from dhs.io import storage

    record = {
        "kind": "dhs-dataset",
        "dataset": uri,
        "stage": cfg["stage"]["name"],
        "config": resolved_config(cfg),
        "overrides": redact_argv(list(getattr(ctx, "overrides", []) or [])),
        "choices": dict(getattr(ctx, "choices", {}) or {}),
        "versions": package_versions(),
        "git_revision": git_revision(),
        "run_dir": str(getattr(ctx, "run_dir", "")),
        "written": _iso(time.time()),
        "inputs": {k: (describe_input(v) if isinstance(v, str) else v) for k, v in inputs.items()},
        "counts": counts,
        **extra,
    }
    target = uri if not uri.endswith((".h5", ".parquet", ".json", ".csv")) else storage.dirname(uri)
    name = DATASET_RECORD if target == uri else f"_dhs_record_{storage.basename(uri)}.json"
    storage.write_text_atomic(storage.join(target, name), json.dumps(record, indent=2, sort_keys=True, default=str))
    return record


# ----------------------------------------------------------------------------- diff
def load_record(path: str | Path) -> dict:
    """A run directory (dhs_run.json, else .hydra/config.yaml) or a dataset record/folder."""
    p = Path(path)
    candidates = [p] if p.is_file() else [p / RUN_RECORD, p / DATASET_RECORD]
    for c in candidates:
        if c.is_file():
            return json.loads(c.read_text())
    hydra_cfg = p / ".hydra" / "config.yaml"
    if hydra_cfg.is_file():
        import yaml

        rec: dict[str, Any] = {"config": yaml.safe_load(hydra_cfg.read_text()) or {}}
        hydra_meta = p / ".hydra" / "hydra.yaml"
        if hydra_meta.is_file():
            choices = (yaml.safe_load(hydra_meta.read_text()) or {})["hydra"]["runtime"]["choices"]
            rec["choices"] = {k: v for k, v in choices.items() if not str(k).startswith("hydra")}
        return rec
    raise FileNotFoundError(f"{path}: no {RUN_RECORD}, {DATASET_RECORD} or .hydra/config.yaml found")


def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """{'a.b.c': leaf} for nested dicts; lists are leaves."""
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out.update(flatten(v, f"{prefix}{k}."))
        return out if out or not prefix else {prefix[:-1]: {}}
    return {prefix[:-1]: obj}


def diff_records(a: dict, b: dict) -> dict:
    """Group choices and config leaves that differ, and keys only in one side."""
    ca, cb = a.get("choices", {}) or {}, b.get("choices", {}) or {}
    choices = {k: [ca.get(k), cb.get(k)] for k in sorted(set(ca) | set(cb)) if ca.get(k) != cb.get(k)}
    fa, fb = flatten(a.get("config", {})), flatten(b.get("config", {}))
    changed = {k: [fa[k], fb[k]] for k in sorted(set(fa) & set(fb)) if fa[k] != fb[k]}
    added = {k: fb[k] for k in sorted(set(fb) - set(fa))}
    removed = {k: fa[k] for k in sorted(set(fa) - set(fb))}
    return {"equal": not (choices or changed or added or removed), "choices": choices,
            "changed": changed, "added": added, "removed": removed}


def diff_main(argv: Optional[list[str]] = None) -> int:
    """``dhs-diff A B [--json]``: exit 0 when equal, 1 when different, 2 on error."""
    import argparse

    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    parser = argparse.ArgumentParser(prog="dhs-diff", description="Compare two dhs run directories or dataset records.")
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--json", action="store_true", help="print the difference as JSON")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return 2 if exc.code else 0
    con = Console()
    try:
        d = diff_records(load_record(args.a), load_record(args.b))
    except (OSError, ValueError) as exc:
        Console(stderr=True, soft_wrap=True).print(f"[red]dhs-diff: {escape(str(exc))}")
        return 2
    if args.json:
        print(json.dumps(d, indent=2, sort_keys=True, default=str))
        return 0 if d["equal"] else 1
    if d["equal"]:
        con.print("[green]no differences[/green]")
        return 0
    table = Table(title=escape(f"dhs-diff {args.a} {args.b}"), title_justify="left")
    for col in ("kind", "key", "A", "B"):
        table.add_column(col)
    rows = [("group choice", k, va, vb) for k, (va, vb) in d["choices"].items()]
    rows += [("changed", k, va, vb) for k, (va, vb) in d["changed"].items()]
    rows += [("added", k, "", v) for k, v in d["added"].items()]
    rows += [("removed", k, v, "") for k, v in d["removed"].items()]
    for kind, key, va, vb in rows:  # values as written: brackets are text, not markup
        table.add_row(kind, escape(key), escape(str(va)), escape(str(vb)))
    con.print(table)
    return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(diff_main())
