"""stage=parent: the LRG parent sample and the brick and region tables from DR10 catalogs.

    dhs stage=parent                                   # the embedded survey's sweeps
    dhs stage=parent survey=dr10_south \\
        "parent.catalogs=[sweep-000m010-010m005.fits,sweep-010m010-020m005.fits]"

Reads DR10 sweep (or tractor) FITS catalogs (``parent.catalogs``: files, folders, s3:// or
http(s) URLs; bare names are relative to ``survey.sweep_root``), one shard per file
(``dhs.parent.catalog``: unit checks, the DESI LRG selection of ``dhs.parent.lrg`` on
MW-corrected magnitudes, regions and splits of ``dhs.parent.regions``), then writes
``{parent.out_root}/parent_catalog.parquet/``, ``bricks_with_region.parquet``,
``region_metrics.parquet`` and ``region_selections.parquet`` (``dhs.parent.tables``), which
stage 4a reads (``survey=dr10_south`` points ``survey.tables_root`` there).

Idempotency: ``_SUCCESS`` records a fingerprint of the settings and the catalog list; with
skip_if_exists and the same fingerprint the stage does nothing. An interrupted run with the same
fingerprint resumes (committed files are kept); another fingerprint, force=true or
skip_if_exists=false starts over.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict
from typing import Any

import dhs
from dhs.console import summary_table
from dhs.errors import DhsError
from dhs.io import storage
from dhs.stages import settings as stage_settings

CATALOG_EXT = (".fits", ".fits.gz", ".fit", ".fit.gz")
RUN_FILE = "_parent_run.json"


class CatalogListError(DhsError):
    """parent.catalogs names nothing readable (an empty folder, an http(s) folder, no files)."""


def _entries(cfg: Any) -> list[str]:
    cats = cfg.parent.catalogs
    return [str(c) for c in cats] if cats else [str(cfg.survey.sweep_root)]


def _check_sweep_root(cfg: Any) -> None:
    """Without parent.catalogs the survey's sweep folder is read: say what makes it."""
    root = str(cfg.survey.sweep_root)
    if cfg.parent.catalogs or storage.is_http(root) or storage.exists(root):
        return
    hint = ("run `dhs stage=mock_survey` first (it writes the embedded survey's sweeps)"
            if cfg.survey.name == "mock" else "point survey.sweep_root at the sweep folder")
    raise CatalogListError(f"survey.sweep_root={root} does not exist: {hint}, or name the "
                           "catalogs with `parent.catalogs=[...]`")


def catalog_uris(cfg: Any) -> list[str]:
    """The catalog files of ``parent.catalogs`` (folders listed, bare names under sweep_root)."""
    root = str(cfg.survey.sweep_root)
    out: list[str] = []
    for entry in _entries(cfg):
        uri = entry if ("/" in entry or ":" in entry) else storage.join(root, entry)
        if storage.is_http(uri):
            if not uri.lower().endswith(CATALOG_EXT):
                raise CatalogListError(
                    f"parent.catalogs entry {entry!r}: an http(s) folder cannot be listed; name the "
                    "files, e.g. `parent.catalogs=[sweep-000m010-010m005.fits]` (relative to "
                    f"survey.sweep_root={root}) or full URLs")
            out.append(uri)
        elif storage.isdir(uri):
            found = sorted(f for f in storage.walk_files(uri) if f.lower().endswith(CATALOG_EXT)
                           and not storage.basename(f).startswith((".", "_")))
            if not found:
                raise CatalogListError(f"parent.catalogs entry {entry!r}: folder {uri} holds no "
                                       f"{'/'.join(CATALOG_EXT)} files")
            out += found
        else:
            out.append(uri)  # a missing file is named by the catalog reader
    if not out:
        raise CatalogListError("parent.catalogs is empty; name sweep or tractor catalogs")
    return list(dict.fromkeys(out))


def datasets(cfg: Any) -> dict:
    from dhs.parent.names import BRICKS_FILE, METRICS_FILE, PARENT_DIR, SELECTIONS_FILE

    out = str(cfg.parent.out_root)
    return {"reads": _entries(cfg),
            "writes": [storage.join(out, f) for f in (PARENT_DIR, BRICKS_FILE, METRICS_FILE,
                                                      SELECTIONS_FILE)]}


def _fingerprint(s: Any, uris: list[str]) -> str:
    """Hash of what determines the tables' bytes (not how remote files are fetched)."""
    settings = {k: v for k, v in asdict(s).items() if k not in ("retries", "backoff_s", "timeout_s")}
    blob = json.dumps({"settings": settings, "catalogs": uris, "version": dhs.__version__},
                      sort_keys=True, default=str)
    return hashlib.blake2b(blob.encode(), digest_size=16).hexdigest()


def _prepare(s: Any, fp: str, force: bool) -> None:
    """Clear what an earlier run with other settings (or force) left; keep a resumable run."""
    from dhs.io import datasets as dio

    run_file = storage.join(s.out_root, RUN_FILE)
    old = json.loads(storage.read_text(run_file)).get("fingerprint") if storage.exists(run_file) else None
    if force or old != fp:
        storage.remove(storage.join(s.out_root, dio.SUCCESS))
        for d in (s.parent_dir, s.brickstats_dir):
            storage.remove(d)
    storage.write_text_atomic(run_file, json.dumps({"fingerprint": fp}))


def run(cfg: Any, ctx: Any) -> dict:
    from dhs.executors import run_shards
    from dhs.io import datasets as dio
    from dhs.parent import tables as ptables
    from dhs.parent.catalog import process_catalog, shard_name
    from dhs.parent.regions import check_fractions, check_nside

    t0 = time.time()
    s = stage_settings.parent_settings(cfg)
    try:
        check_nside(s.region_nside)
        check_fractions(s.split_fractions)
    except ValueError as exc:
        raise CatalogListError(f"parent.region_nside / parent.split_fractions: {exc}") from exc
    _check_sweep_root(cfg)
    uris = catalog_uris(cfg)
    fp = _fingerprint(s, uris)
    done = storage.join(s.out_root, dio.SUCCESS)
    if storage.exists(done) and stage_settings.skip_existing(cfg) and \
            json.loads(storage.read_text(done)).get("fingerprint") == fp:
        ctx.print(f"[yellow]parent: {s.out_root} is complete with the same settings; skipped "
                  "(force=true rebuilds)[/yellow]")
        return {"stage": "parent", "out_root": s.out_root, "skipped_existing": True,
                **json.loads(storage.read_text(done)).get("counts", {})}
    _prepare(s, fp, bool(cfg.force) or not bool(cfg.skip_if_exists))
    shards = [{"uri": u, "name": shard_name(i, u)} for i, u in enumerate(uris)]
    todo = [sh for sh in shards if not (dio.shard_done(s.parent_dir, sh["name"]) and storage.exists(
        storage.join(s.brickstats_dir, f"part-{sh['name']}.parquet")))]
    run_shards(process_catalog, todo, s, stage_settings.executor_settings(cfg),
               desc="parent catalogs", console=ctx.console)
    markers = [json.loads(storage.read_text(storage.join(s.parent_dir, dio.SHARDS_DIR, f"{sh['name']}.json")))
               for sh in shards]
    tabs = ptables.write_tables(s, [sh["name"] for sh in shards])
    return _report(cfg, ctx, s, fp, shards, todo, markers, tabs, t0)


def _report(cfg: Any, ctx: Any, s: Any, fp: str, shards: list, todo: list, markers: list,
            tabs: dict, t0: float) -> dict:
    from dhs.io import datasets as dio
    from dhs.parent import lrg
    from dhs.parent import tables as ptables

    funnel: dict[str, int] = {}
    for m in markers:
        for step, n in m["funnel"]:
            funnel[step] = funnel.get(step, 0) + int(n)
    flags = {f: sum(int(m["flags"].get(f, 0)) for m in markers) for f in lrg.FLAGS}
    notes = sorted({n for m in markers for n in m.get("unit_notes", [])})
    bricks = tabs[ptables.BRICKS_FILE]
    metrics = tabs[ptables.METRICS_FILE]
    counts = {"catalogs": len(shards), "catalogs_read": len(todo),
              "rows_read": sum(int(m["rows_read"]) for m in markers),
              "parent_rows": sum(int(m["parent_rows"]) for m in markers), "flags": flags,
              "bricks": bricks.num_rows, "regions": metrics.num_rows,
              "regions_by_split": ptables.split_counts(metrics)}
    ctx.print(summary_table("stage parent: selection funnel (rows left after each cut)",
                            [{"step": k, "rows": v} for k, v in funnel.items()], ["step", "rows"]))
    for note in notes:
        ctx.print(f"[yellow]unit check:[/yellow] {note}")
    if counts["parent_rows"] == 0:
        ctx.print(f"[yellow]warning:[/yellow] no catalog row passed the selection (see the funnel); "
                  f"stage 4a will find no galaxy in {s.out_root}")
    empty = [k for k, v in counts["regions_by_split"].items() if v == 0]
    if empty:
        ctx.print(f"[yellow]warning:[/yellow] no region in split(s) {empty}: too few regions for "
                  f"parent.split_fractions={list(s.split_fractions)} (lower parent.region_nside "
                  "or read more catalogs)")
    rows = {"catalog files": len(shards), "  read in this run": len(todo),
            "catalog rows read": counts["rows_read"], "parent rows": counts["parent_rows"],
            **{f"  {k}": v for k, v in flags.items()}, "bricks": counts["bricks"],
            "regions": counts["regions"],
            **{f"  regions in {k}": v for k, v in counts["regions_by_split"].items()},
            "wall time (s)": time.time() - t0, "tables": s.out_root}
    ctx.print(summary_table(f"stage parent summary ({s.out_root})", rows))
    dio.mark_success(s.out_root, {"fingerprint": fp, "counts": counts, "unit_notes": notes})
    ctx.record_dataset(s.out_root, cfg, inputs={"catalogs": [sh["uri"] for sh in shards]},
                       counts=counts, extra={"fingerprint": fp, "funnel": funnel})
    return {"stage": "parent", "out_root": s.out_root, "funnel": funnel, "unit_notes": notes,
            "wall_s": time.time() - t0, **counts}
