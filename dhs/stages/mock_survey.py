"""stage=mock_survey: the embedded survey (survey=mock) in exact DR10 format.

Writes ``{data_root}/mock_survey/coadd/<AAA>/<brick>/legacysurvey-<brick>-{image,invvar,psfsize}-<b>
.fits.fz`` and ``-maskbits.fits.fz`` for g, r, z, and the tables parent_catalog.parquet,
bricks_with_region.parquet, region_selections.parquet under ``{data_root}/mock_survey/tables``.
Content and conventions: ``dhs.mock_survey.plan`` (what is drawn), ``dhs.mock_survey.images`` (pixels),
``dhs.mock_survey.fits`` (file format), ``dhs.mock_survey.tables`` (tables).

Idempotency: ``{data_root}/mock_survey/_SUCCESS`` records the config hash (``MockParams``); with
skip_if_exists and the same hash the stage does nothing; force=true (or another hash) rebuilds,
removing the _SUCCESS marker first and stale files not part of the new survey afterwards.
Bricks are rendered in parallel shards (one per brick) by ``dhs.executors.run_shards``.
"""

from __future__ import annotations

import json
import time
from typing import Any

from dhs.stages import layout
from dhs.executors import run_shards
from dhs.stages import settings as stage_settings
from dhs.io import datasets as dsets
from dhs.io import storage
from dhs.console import summary_table
from dhs.survey import files

KINDS = ("image", "invvar", "psfsize", "maskbits")
TABLES = ("parent_catalog", "bricks_with_region", "region_selections")


def datasets(cfg: Any) -> dict:
    root = layout.mock_survey_root(cfg)
    tables = layout.mock_survey_tables(cfg)
    return {"reads": [], "writes": [layout.mock_survey_coadd(cfg)] +
            [storage.join(tables, f"{t}.parquet") for t in TABLES] + [layout.mock_survey_sweeps(cfg),
                                                                       storage.join(root, "_SUCCESS")]}


def render_shard(shard: dict, _settings: None = None) -> dict:
    """Render one brick and write its 10 files; returns file count, bytes and object counts."""
    from dhs.mock_survey.plan import MOCK_BANDS  # astropy loads in workers only

    from dhs.mock_survey.fits import file_bytes
    from dhs.mock_survey.images import render_brick
    from dhs.mock_survey.sweeps import brick_rows

    plan, coadd = shard["plan"], shard["coadd"]
    arrays = render_brick(plan)
    written, nbytes, paths = 0, 0, []
    for kind, band, _ in files.brick_files(plan["brickname"], KINDS, MOCK_BANDS):
        data = file_bytes(plan, arrays, kind, band)
        uri = files.coadd_url(coadd, plan["brickname"], kind, band)
        storage.write_bytes_atomic(uri, data)
        written += 1
        nbytes += len(data)
        paths.append(uri)
    return {"brickname": plan["brickname"], "files": written, "bytes": nbytes, "paths": paths,
            "galaxies": len(plan["galaxies"]), "stars": len(plan["stars"]) + 1,
            "sweep_rows": brick_rows(plan, arrays)}


def _existing_hash(root: str) -> str | None:
    marker = storage.join(root, dsets.SUCCESS)
    if not storage.exists(marker):
        return None
    try:
        return json.loads(storage.read_text(marker)).get("config_hash")
    except (ValueError, AttributeError):
        return None


def run(cfg: Any, ctx: Any) -> dict:
    from dhs.mock_survey.plan import plan_survey, region_splits

    t0 = time.time()
    params = stage_settings.mock_params(cfg)
    chash = params.config_hash()
    root, coadd, tables = layout.mock_survey_root(cfg), layout.mock_survey_coadd(cfg), layout.mock_survey_tables(cfg)
    old = _existing_hash(root)
    if old == chash and cfg.skip_if_exists and not cfg.force:
        ctx.print(f"[yellow]mock_survey: {root} exists with the same config hash {chash}; skipped "
                  "(skip_if_exists=true; force=true rebuilds)[/yellow]")
        ctx.print(summary_table("mock_survey summary", {"skipped: exists, same config hash": 1,
                                                         "wall time (s)": time.time() - t0}))
        return {"stage": "mock_survey", "root": root, "skipped_existing": True, "config_hash": chash}
    if old is not None:
        storage.remove(storage.join(root, dsets.SUCCESS))

    plans = plan_survey(params)
    splits = region_splits(params)
    shards = [{"plan": p, "coadd": coadd} for p in plans]
    results = run_shards(render_shard, shards, None, stage_settings.executor_settings(cfg),
                         desc="mock_survey bricks", console=ctx.console)

    from dhs.mock_survey import tables as mock_tables

    parent = mock_tables.parent_catalog(plans, splits)
    tabs = {"parent_catalog": parent,
            "bricks_with_region": mock_tables.bricks_with_region(plans, splits),
            "region_selections": mock_tables.region_selections(plans, splits, parent)}
    table_bytes = 0
    for name, table in tabs.items():
        data = dsets.table_to_parquet_bytes(table, compression="zstd")
        storage.write_bytes_atomic(storage.join(tables, f"{name}.parquet"), data)
        table_bytes += len(data)

    from dhs.mock_survey.sweeps import sweep_files

    sweep_dir = layout.mock_survey_sweeps(cfg)
    sweeps = sweep_files([r.pop("sweep_rows") for r in results])
    for name, data in sweeps.items():
        storage.write_bytes_atomic(storage.join(sweep_dir, name), data)
        table_bytes += len(data)

    keep = {storage.normalize(p) for r in results for p in r["paths"]}
    keep |= {storage.normalize(storage.join(sweep_dir, n)) for n in sweeps}
    stale = [f for d in (coadd, sweep_dir) if storage.exists(d) for f in storage.walk_files(d)
             if storage.normalize(f) not in keep]
    for f in stale:
        storage.remove(f)

    counts = {
        "bricks": len(results), "files": sum(r["files"] for r in results) + len(tabs) + len(sweeps),
        "sweep_files": len(sweeps),
        "galaxies": sum(r["galaxies"] for r in results), "stars": sum(r["stars"] for r in results),
        "galaxies_without_room": params.n_bricks * params.galaxies_per_brick
        - sum(r["galaxies"] for r in results),
        "regions": params.n_regions, "lrg_v3": int(sum(parent.column("is_v3_color_relaxed").to_pylist())),
        "bytes_written": sum(r["bytes"] for r in results) + table_bytes, "stale_files_removed": len(stale),
    }
    wall = time.time() - t0
    summary = {"stage": "mock_survey", "root": root, "config_hash": chash, "wall_s": wall, **counts}
    dsets.mark_success(root, {"config_hash": chash, "counts": counts})
    ctx.record_dataset(root, cfg, counts=counts, extra={"config_hash": chash,
                                                        "brick_size_pix": params.brick_size_pix,
                                                        "pixscale_arcsec": params.pixscale})
    rows = {"bricks": counts["bricks"], "files written": counts["files"],
            "galaxies (parent catalog)": counts["galaxies"], "  of which is_v3_color_relaxed": counts["lrg_v3"],
            "stars (bright + PSF)": counts["stars"], "regions": counts["regions"],
            "skipped: galaxies without room in the brick": counts["galaxies_without_room"],
            "stale files removed": len(stale),
            "bytes written": counts["bytes_written"], "MB written": counts["bytes_written"] / 1e6,
            "wall time (s)": wall}
    ctx.print(summary_table(f"mock_survey summary ({root})", rows))
    return summary
