"""stage=4b: coadd cache. Every file of every brick of the bricks manifest, fetched once.

    dhs stage=4b                                            # mock survey -> outputs/data/coadd_cache
    dhs stage=4b survey=dr10_south paths.cache_root=s3://bucket/dr10/coadd_cache cache.threads=32
    dhs stage=4b cache.mode=none                            # no cache: 4c reads sections at the source
    dhs stage=4b survey.source=cutout_service              # one viewer cutout per target

Files land in ``<cache_root>/<brick>/`` under their DR10 names with a per-brick ``_SUCCESS``;
bricks the survey lacks (404) go to ``<cache_root>/_blacklist.csv``. The work lives in
dhs.fetch.coadd_cache (orchestration), dhs.fetch.download (one file), dhs.fetch.integrity, dhs.fetch.blacklist;
stage 4c reads through dhs.fetch.remote. With ``survey.source=cutout_service`` the stage fetches one
FITS cutout per unique target of the manifests instead (``dhs.fetch.cutout_service``): files in
``<cache_root>/cutouts/``, 404 targets in ``<cache_root>/cutouts/_missing.csv``.

Bricks (or targets) that failed after the retries make the stage exit with status 3
(``RunFailedError``) once everything else is committed; a rerun fetches only them again.
One run writes a cache at a time: a second refuses while the first lives (``dhs.io.locks``;
the lock of a dead run is taken over). A brick cached from another ``survey.base_url`` is
fetched again; temporary files of killed runs are removed.
"""

from __future__ import annotations

import shlex
from typing import Any

from rich.markup import escape

from dhs.stages import layout
from dhs.stages import settings as stage_settings
from dhs.errors import ConfigError, InputTableError, MissingInputError, RunFailedError
from dhs.io import locks, storage
from dhs.fetch import coadd_cache
from dhs.console import summary_table


def datasets(cfg: Any) -> dict:
    if str(cfg.survey.source) == "cutout_service":
        from dhs.fetch.cutout_service import cutout_dir

        return {"reads": [layout.manifest_dir(cfg, e) for e in layout.experiment_ids(cfg)]
                + [str(cfg.survey.cutout_url)], "writes": [cutout_dir(layout.cache_root(cfg))]}
    writes = [layout.blacklist_path(cfg)]
    if str(cfg.cache.mode) == "brick":
        writes.insert(0, layout.cache_root(cfg))
    return {"reads": [layout.bricks_manifest_dir(cfg), str(cfg.survey.base_url)], "writes": writes}


def manifest_bricks(cfg: Any) -> list[str]:
    """Distinct brick names of the bricks manifest (sorted). Fails with a clear message."""
    from dhs.io.datasets import read_dataset

    uri = layout.bricks_manifest_dir(cfg)
    try:
        table = read_dataset(uri, columns=["brickname"], partition_col=None)
    except FileNotFoundError as exc:
        raise MissingInputError(f"stage 4b needs the bricks manifest at {uri}: run `dhs stage=4a` "
                                "first (same paths.data_root and variant)") from exc
    except Exception as exc:
        raise InputTableError(f"{uri}: cannot read column 'brickname' of the bricks manifest ({exc}); "
                         "re-run `dhs stage=4a force=true` to rewrite it") from exc
    names = {str(b) for b in table.column("brickname").to_pylist() if b}
    return sorted(names)


def manifest_targets(cfg: Any) -> list:
    """Distinct cutout targets (ra, dec, stamp size, bandset) of the configured experiments'
    manifests. Fails with a clear message."""
    from dhs.fetch import cutout_service as cs
    from dhs.io.datasets import read_dataset

    cols = ["ra", "dec", "stamp_size", "bandset"]
    targets: set = set()
    for exp in layout.experiment_ids(cfg):
        uri = layout.manifest_dir(cfg, exp)
        try:
            t = read_dataset(uri, columns=cols, partition_col=None)
        except FileNotFoundError as exc:
            raise MissingInputError(f"stage 4b needs the manifest at {uri}: run `dhs stage=4a` first "
                                    "(same paths.data_root, variant and tier)") from exc
        except Exception as exc:
            raise InputTableError(f"{uri}: cannot read columns {cols} of the manifest ({exc}); "
                             "re-run `dhs stage=4a force=true` to rewrite it") from exc
        targets.update(cs.targets_of(*(t.column(c).to_pylist() for c in cols)))
    return sorted(targets, key=lambda t: (t.ra, t.dec, t.size, t.bands))


def run_cutouts(cfg: Any, ctx: Any) -> dict:
    """survey.source=cutout_service: one FITS cutout per unique target of the manifests."""
    from dhs.fetch import cutout_service as cs

    if str(cfg.cache.mode) != "brick":
        raise ConfigError(f"cache.mode={cfg.cache.mode!r} with survey.source=cutout_service: the "
                         "cutouts are fetched once and cached per target; use cache.mode=brick")
    s = stage_settings.cutout_settings(cfg)
    targets = manifest_targets(cfg)
    rep = cs.fill_cutouts(s, targets, console=ctx.console)
    target = cs.cutout_dir(s.cache_root)
    rows = {
        "source": f"{s.url} (layer {s.layer}, {s.pixscale} arcsec/pix)",
        "cache": target,
        "targets requested": rep.targets_requested,
        "complete (skipped)": rep.skipped_complete,
        "missing earlier (skipped)": rep.skipped_missing,
        "fetched": rep.fetched,
        "adopted (earlier run)": rep.adopted,
        "missing now (404)": rep.missing,
        "failed": rep.failed,
        **{f"  failed: {reason}": n for reason, n in sorted(rep.failure_reasons.items())},
        "retries": rep.retries,
        "MB committed": rep.bytes_committed / 1e6,
        "MB transferred": rep.bytes_transferred / 1e6,
        "wall time (s)": rep.wall_s,
    }
    ctx.print(summary_table("4b cutout cache", rows))
    for key, where, reason in rep.failures[:20]:
        ctx.print(f"[red]failed[/red] {escape(f'{key} {where}: {reason}')}")
    if rep.missing:
        ctx.print(f"[yellow]{rep.missing} target(s) missing at the service (404) -> "
                  f"{escape(storage.join(target, cs.MISSING))}; stage 4c marks them missing_file[/yellow]")
    summary = {"stage": "4b", "mode": "cutout_service", **rep.as_dict()}
    if storage.exists(target):
        counts = {k: summary[k] for k in ("targets_requested", "skipped_complete", "skipped_missing",
                                          "fetched", "adopted", "missing", "failed",
                                          "bytes_committed", "bytes_transferred")}
        ctx.record_dataset(target, cfg,
                           inputs={"manifests": [layout.manifest_dir(cfg, e)
                                                 for e in layout.experiment_ids(cfg)],
                                   "survey": {"path": s.url, "layer": s.layer}},
                           counts=counts, extra={"failure_reasons": rep.failure_reasons,
                                                 "wall_s": rep.wall_s})
    _fail_if(ctx, summary, rep.failed, rep.targets_requested, rep.missing, "target(s)")
    return summary


def _fail_if(ctx: Any, summary: dict, failed: int, requested: int, missing: int, what: str) -> None:
    """Raise RunFailedError when ``failed`` items failed for good (after the retries) or when
    every requested item is missing."""
    if failed == 0 and not (requested and missing == requested):
        return
    if failed:
        command = " ".join(["dhs", *(shlex.quote(o) for o in ctx.overrides if not o.startswith("force="))])
        msg = (f"stage 4b: {failed} of {requested} {what} failed after the retries (reasons above); "
               f"a rerun fetches them again: `{command}`")
    else:
        msg = (f"stage 4b: every one of the {requested} {what} is missing at the source (404); "
               "check survey.base_url (or survey.cutout_url)")
    raise RunFailedError(msg, summary)


def run(cfg: Any, ctx: Any) -> dict:
    with locks.hold([layout.cache_root(cfg)]):
        if str(cfg.survey.source) == "cutout_service":
            return run_cutouts(cfg, ctx)
        return run_bricks(cfg, ctx)


def run_bricks(cfg: Any, ctx: Any) -> dict:
    """The coadd files of every brick of the bricks manifest (cache.mode=brick), or a probe of
    each brick at the source (cache.mode=none)."""
    s = stage_settings.cache_settings(cfg)
    bricks = manifest_bricks(cfg)
    from dhs.fetch.blacklist import foreign_note

    note = foreign_note(s.blacklist_uri, s.base_url)
    if note:
        ctx.print(f"[yellow]{escape(note)}[/yellow]", soft_wrap=True)
    mode = str(cfg.cache.mode)
    if mode == "none":
        ctx.print(f"4b: cache.mode=none: no cache; stage 4c reads sections from {s.base_url}")
        rep = coadd_cache.probe_bricks(s, bricks) if cfg.cache.probe else \
            coadd_cache.CacheReport(bricks_requested=len(bricks))
    else:
        rep = coadd_cache.fill_cache(s, bricks, console=ctx.console)
    rows = {
        "mode": mode,
        "source": s.base_url,
        "cache": s.cache_root if mode == "brick" else "(none)",
        "bricks requested": rep.bricks_requested,
        "complete (skipped)": rep.bricks_skipped_complete,
        "blacklisted earlier (skipped)": rep.bricks_skipped_blacklisted,
        "fetched": rep.bricks_fetched,
        "cached from another source (fetched again)": rep.bricks_other_source,
        "blacklisted now (404)": rep.bricks_blacklisted,
        "failed": rep.bricks_failed,
        **{f"  failed: {reason}": n for reason, n in sorted(rep.failure_reasons.items())},
        "files fetched": rep.files_fetched,
        "files adopted (earlier run)": rep.files_adopted,
        "temporary files removed (killed runs)": rep.temps_removed,
        "retries": rep.retries,
        "MB committed": rep.bytes_committed / 1e6,
        "MB transferred": rep.bytes_transferred / 1e6,
        "MB/s": rep.mb_per_s,
        "wall time (s)": rep.wall_s,
    }
    ctx.print(summary_table("4b coadd cache", rows))
    for brick, name, reason in rep.failures[:20]:
        ctx.print(f"[red]failed[/red] {escape(f'{brick} {name}: {reason}')}")
    if rep.bricks_other_source:
        ctx.print(f"[yellow]{rep.bricks_other_source} brick(s) were cached from another source "
                  f"({escape(', '.join(rep.other_sources[:3]))}): dropped and fetched again from "
                  f"{escape(s.base_url)}[/yellow]", soft_wrap=True)
    if rep.blacklisted:
        ctx.print(f"[yellow]blacklisted (404): {escape(', '.join(rep.blacklisted[:20]))}"
                  f"{' ...' if len(rep.blacklisted) > 20 else ''} -> {escape(s.blacklist_uri)}[/yellow]")
    summary = {"stage": "4b", "mode": mode, **rep.as_dict()}
    counts = {k: summary[k] for k in ("bricks_requested", "bricks_skipped_complete",
                                      "bricks_skipped_blacklisted", "bricks_fetched",
                                      "bricks_blacklisted", "bricks_failed", "bricks_other_source",
                                      "temps_removed", "files_fetched",
                                      "files_adopted", "bytes_committed", "bytes_transferred")}
    target = s.cache_root
    if mode == "brick" or storage.exists(target):
        ctx.record_dataset(target, cfg,
                           inputs={"bricks_manifest": layout.bricks_manifest_dir(cfg),
                                   "survey": {"path": s.base_url}},
                           counts=counts,
                           extra={"failure_reasons": summary["failure_reasons"],
                                  "kinds": list(s.kinds), "bands": list(s.bands),
                                  "wall_s": rep.wall_s, "mb_per_s": summary["mb_per_s"]})
    _fail_if(ctx, summary, rep.bricks_failed, rep.bricks_requested,
             rep.bricks_blacklisted + rep.bricks_skipped_blacklisted, "brick(s)")
    return summary
