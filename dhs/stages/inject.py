"""stage=4c: inject lensed arcs into survey stamps; writes stamps and metrics per experiment.

Tasks are grouped into deterministic shards of whole bricks (in brick order, about
``inject.shard_max_tasks`` tasks each; shard boundaries never depend on the number of workers),
run through the configured executor with the stage's ``InjectSettings`` (built once here, see
``dhs.stages.settings.inject_settings``), and committed shard by shard (see dhs.inject.shard).

The stage ends with a table of the errors of every committed row by code and reason
(dhs.inject.outcomes). Rows that failed for good (any class but ``outcome``, see
dhs.inject.failures), or no good row at all, exit with status 3; ``retry_failed=true`` redoes
exactly the shards holding retryable rows (transient or input-damaged) and leaves the others.
Every experiment of the run (the tier's stamp sizes x bandsets, or ``inject.experiments``) goes
in one pass per brick (dhs.inject.onepass): each brick's files are decoded once for all of them,
and each experiment's datasets are what a run of that experiment alone writes.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from rich.markup import escape

from dhs.console import summary_table
from dhs.errors import MissingInputError, RunFailedError
from dhs.executors import run_shards
from dhs.inject.preflight import check_inputs
from dhs.inject.settings import InjectSettings, applicable_blacklist
from dhs.io import datasets as dio
from dhs.io import locks, shards
from dhs.io import storage
from dhs.stages import layout
from dhs.stages import settings as stage_settings

if TYPE_CHECKING:  # numpy and pyarrow load when the stage runs (not for stage=plan)
    import pyarrow as pa


def datasets_for(cfg: Any, exp: str) -> dict:
    return {"reads": [layout.manifest_dir(cfg, exp)],
            "writes": [layout.stamps_dir(cfg, exp), layout.metrics_dir(cfg, exp)]}


def datasets(cfg: Any) -> dict:
    reads, writes = [], []
    for exp in experiments(cfg):
        d = datasets_for(cfg, exp)
        reads += d["reads"]
        writes += d["writes"]
    reads.append(layout.cache_root(cfg) if cfg.cache.mode == "brick" else str(cfg.survey.base_url))
    if cfg.source.name == "cosmos":
        reads.append(str(cfg.source.bank_path))
    return {"reads": reads, "writes": writes}


def make_shards(manifest: pa.Table, exp: str, max_tasks: int) -> list[dict]:
    """Whole bricks in brick order, about ``max_tasks`` rows per shard (a larger brick is split)."""
    import pyarrow.compute as pc

    from dhs.manifest.shards import brick_shards

    order = pc.sort_indices(manifest, sort_keys=[("brickname", "ascending"), ("task_id", "ascending")])
    table = manifest.take(order)
    bricks = table.column("brickname").to_numpy(zero_copy_only=False)
    shards = brick_shards(bricks, max_tasks, split_bricks=True)
    return [{"experiment_id": exp, "shard_id": f"{k:05d}", "rows": table.slice(a, b - a)}
            for k, (a, b) in enumerate(shards)]


def settings_record(cfg: Any) -> dict:
    """The 4c settings as plain data, with the kernel size at the default FWHM per stamp size."""
    sizes = tuple(int(s) for s in cfg.tier.stamp_sizes)
    return stage_settings.inject_settings(cfg).record(sizes)


def experiments(cfg: Any) -> list[str]:
    """The experiments stage 4c injects in one pass: ``inject.experiments`` (experiment ids, or
    fnmatch patterns such as ``*_stamp64_*`` over the manifests of the variant) or, when that is
    empty, the configured tier's (``layout.experiment_ids``)."""
    import fnmatch

    patterns = [str(p) for p in (cfg.inject.get("experiments") or [])]
    if not patterns:
        return layout.experiment_ids(cfg)
    root = storage.join(layout.phase_root(cfg, "phase4a"), "manifests")
    have = sorted(storage.listdir(root)) if storage.exists(root) else []
    out: list[str] = []
    for pat in patterns:
        hits = [e for e in have if fnmatch.fnmatchcase(e, pat)] if any(c in pat for c in "*?[") else [pat]
        if not hits:
            raise MissingInputError(f"inject.experiments: {pat!r} matches no manifest under {root} "
                                    f"(there: {', '.join(have) or 'none'}); run `dhs stage=4a` for "
                                    "that tier first, or fix the pattern")
        out += [e for e in hits if e not in out]
    return out


def run_experiments(cfg: Any, ctx: Any, exps: list[str], s: InjectSettings) -> dict:
    """Inject ``exps`` in one pass per brick (``dhs.inject.onepass``) under the locks of all
    their datasets; counts per experiment (``wall_s``: the pass's wall time, shared)."""
    from dhs.inject import ranges
    from dhs.inject.onepass import plan_passes, run_pass, warm_worker

    manifests, finals = {}, {}
    for exp in exps:
        mdir = layout.manifest_dir(cfg, exp)
        if not dio.is_complete(mdir):
            raise MissingInputError(f"manifest {mdir} is missing or incomplete (no _SUCCESS): "
                                    f"run `dhs stage=4a tier={cfg.tier.name}` first")
        manifests[exp] = ranges.plan_shards(mdir, exp, int(cfg.inject.shard_max_tasks))
        sdir, metrics = layout.stamps_dir(cfg, exp), layout.metrics_dir(cfg, exp)
        finals[exp] = [metrics] if s.output.metrics_only else [sdir, metrics]
    with locks.hold([d for exp in exps for d in finals[exp]]):
        prepared = {}
        for exp in exps:
            for d in finals[exp]:
                shards.recover(d)
            if cfg.force:  # every input checked before anything is replaced
                check_inputs(s, manifests[exp][1])
        for exp in exps:
            prepared[exp] = _plan(cfg, ctx, exp, s, manifests[exp][0], finals[exp])
        passes = plan_passes([p["todo"] for p in prepared.values()], int(cfg.inject.shard_max_tasks))
        t0 = time.perf_counter()
        desc = f"4c {exps[0]}" if len(exps) == 1 else f"4c {len(exps)} experiments"
        results = run_shards(run_pass, passes, s, stage_settings.executor_settings(cfg), desc=desc,
                             console=ctx.console, warm=warm_worker)
        wall = time.perf_counter() - t0
        by_shard = {(sh["experiment_id"], sh["shard_id"]): res for job, out in zip(passes, results)
                    for sh, res in zip(job["shards"], out["shards"])}
        return {exp: _finish(cfg, ctx, exp, s, prep, wall,
                             [by_shard[(exp, sh["shard_id"])] for sh in prep["todo"]])
                for exp, prep in prepared.items()}


def fingerprints(range_shards: list[dict], s: InjectSettings, executor: Any, console: Any) -> list:
    """Each shard's fingerprint, computed where its rows are read (executors on a cluster; the
    blacklist is read once here, per shard there)."""
    from dhs.inject import ranges

    if executor.backend == "local":
        listed = applicable_blacklist(s)
        return [ranges.fingerprint_shard(sh, s, listed) for sh in range_shards]
    return run_shards(ranges.fingerprint_shard, range_shards, s, executor, desc="4c plan", console=console)


def _plan(cfg: Any, ctx: Any, exp: str, s: InjectSettings, range_shards: list[dict], final: list[str]) -> dict:
    """The shards of one experiment that are not current. With ``force`` everything is built in a
    staging folder and swapped in once committed (the old dataset stays whole until then). Shards
    are manifest ranges (``dhs.inject.ranges``): the driver never reads the manifest's rows."""
    from dhs.inject import outcomes

    sdir, metrics = layout.stamps_dir(cfg, exp), layout.metrics_dir(cfg, exp)
    target = {d: shards.staging_dir(d) if cfg.force else d for d in final}
    plan_shards = [{**sh, "stamps_dir": target.get(sdir, sdir),
                    "metrics_dir": target[metrics], "fingerprint": fp}
                   for sh, fp in zip(range_shards, fingerprints(range_shards, s, stage_settings.executor_settings(cfg),
                                                                ctx.console))]
    redo: set[str] = set()
    if bool(cfg.retry_failed) and not cfg.force:
        redo = outcomes.shards_to_redo(plan_shards, outcomes.retry_task_ids(
            outcomes.read_outcomes(metrics), applicable_blacklist(s)))
        plan_shards = [{**sh, "redo": sh["shard_id"] in redo} for sh in plan_shards]
    dirs = [target[d] for d in final]
    fps = {sh["shard_id"]: sh["fingerprint"] for sh in plan_shards}
    plan = shards.plan(dirs, fps, s.skip_existing, redo)
    if plan.stale:
        ctx.console.print(summary_table(
            f"4c {exp}: {len(plan.stale)} committed shard(s) made otherwise are redone "
            f"(to keep them, rerun with inject.run_name=<new name>)", plan.changes()))
    removed = shards.begin(dirs, fps, [*plan.todo, *redo])
    todo = [sh for sh in plan_shards if sh["shard_id"] in set(plan.todo) | redo]
    return {"target": target, "final": final, "shards": plan_shards, "fps": fps, "plan": plan,
            "removed": removed, "todo": todo, "redo": redo,
            "n_manifest": sum(sh["n_rows"] for sh in range_shards)}


def _finish(cfg: Any, ctx: Any, exp: str, s: InjectSettings, prep: dict, wall: float,
            results: list[dict]) -> dict:
    """Finalize (and, under ``force``, swap in) one experiment's datasets and record them; its counts."""
    from dhs.inject import ranges

    target, fps, plan, redo = prep["target"], prep["fps"], prep["plan"], prep["redo"]
    done = [r for r in results if not r["skipped"]]
    n_new = sum(r["rows"] for r in done)
    n_manifest = prep["n_manifest"]
    record = s.record((ranges.first_value(prep["shards"][0], "stamp_size"),) if n_manifest else ())
    inputs = {"manifest": layout.manifest_dir(cfg, exp), **input_paths(s)}
    counts: dict = {}
    for d in prep["final"]:  # stamps before metrics: a shard is done when its metrics marker exists
        summary = shards.finalize(target[d], fps, {"experiment_id": exp})
        if target[d] != d:
            if not summary["complete"]:  # the old dataset stays as it was
                continue
            shards.swap_in(target[d], d)
        counts = {"rows": summary["rows"], "manifest_rows": n_manifest, "shards": len(prep["shards"]),
                  "shards_skipped": len(set(plan.kept) - redo), "shards_redone": len(plan.stale),
                  "shards_retried": len(redo),
                  "shards_removed": len(prep["removed"].get(target[d], [])), "rows_injected_now": n_new,
                  "errors": summary["errors"], "bytes": summary["bytes"],
                  "bytes_written": sum(r["bytes"] for r in done), "complete": summary["complete"],
                  "wall_s": round(wall, 3),
                  "stamps_per_s": round(n_new / wall, 2) if wall > 0 and n_new else 0.0}
        ctx.record_dataset(d, cfg, inputs=inputs, counts=counts,
                           extra={"inject_settings": record, "shard_settings": summary["settings"],
                                  "schema_versions": summary["schema"]})
    return counts


def input_paths(s: InjectSettings) -> dict:
    """What 4c reads besides the manifest: the COSMOS bank and the survey (or its cache)."""
    out: dict[str, Any] = {}
    if s.source.kind == "cosmos":
        out["cosmos_bank"] = {"path": s.source.bank_path, "sha256": s.source.bank_sha256}
    a = s.survey
    if s.survey_source == "cutout_service" or a.cache_mode == "brick":
        out["survey_cache"] = {"path": a.cache_root}
    else:
        out["survey"] = {"base_url": a.base_url}
    return out


def with_bank_checksum(s: InjectSettings) -> InjectSettings:
    """``s`` with the COSMOS bank's sha256 (part of every shard's fingerprint); the bank must exist
    and pass ``dhs.cosmos.bank.check_bank``."""
    if s.source.kind != "cosmos":
        return s
    path = str(s.source.bank_path)
    if not storage.exists(path) or storage.isdir(path):
        raise MissingInputError(f"source.bank_path={path} does not exist: build it with "
                                "`dhs stage=cosmos_bank` or set source.bank_path to a COSMOS bank file")
    from dhs.cosmos.bank import check_bank

    check_bank(path)  # once here, before any work: empty or malformed banks fail in one line
    return replace(s, source=replace(s.source, bank_sha256=storage.sha256(path)))


def report_failures(cfg: Any, ctx: Any, exps: list[str]) -> dict:
    """The table of reasons over every committed row; raises RunFailedError when rows failed for
    good or no row is good."""
    from dhs.inject import outcomes

    rows, totals = [], []
    for exp in exps:
        t = outcomes.read_outcomes(layout.metrics_dir(cfg, exp))
        rows += outcomes.reason_rows(t, exp)
        totals.append(outcomes.counts(t))
    total = outcomes.merge(totals)
    command = outcomes.retry_command(ctx.overrides) if total.get("retryable") else None
    if rows:
        if len(exps) == 1:
            rows = [{k: v for k, v in r.items() if k != "experiment"} for r in rows]
        ctx.console.print(summary_table("4c: errors by reason", rows))
        if command:
            ctx.console.print(escape(f"{total['retryable']} row(s) can be retried: {command}"), soft_wrap=True)
    if total and outcomes.any_failed(total):
        raise RunFailedError(outcomes.failure_message("4c", total, command))
    return total


def run(cfg: Any, ctx: Any) -> dict:
    s = with_bank_checksum(stage_settings.inject_settings(cfg))
    if s.survey_source != "cutout_service":
        from dhs.fetch.blacklist import foreign_note

        note = foreign_note(s.blacklist_path, s.survey.base_url)
        if note:
            ctx.console.print(f"[yellow]{escape(note)}[/yellow]", soft_wrap=True)
    summaries = run_experiments(cfg, ctx, experiments(cfg), s)
    rows = []
    for exp, c in summaries.items():
        errs = ", ".join(f"{k}: {v}" for k, v in sorted(c["errors"].items()) if k != "ok") or "none"
        rows.append({"experiment": exp, "rows": c["rows"], "ok": c["errors"].get("ok", 0), "errors": errs,
                     "shards (skipped)": f"{c['shards']} ({c['shards_skipped']})",
                     "MB written": round(c["bytes_written"] / 1e6, 2), "stamps/s": c["stamps_per_s"]})
    ctx.console.print(summary_table("4c: injection", rows))
    outputs = [layout.metrics_dir(cfg, e) for e in summaries]
    summary = {"stage": "4c", "experiments": summaries, "outputs": outputs}
    try:
        summary["rows"] = report_failures(cfg, ctx, list(summaries))
    except RunFailedError as exc:
        exc.summary = summary
        raise
    return summary
