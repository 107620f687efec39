"""stage=4a: task manifests (one tier per run; every stamp size x bandset is an experiment).

Reads the parent catalog (in record batches, built by brick bucket of about
``manifest.bucket_rows`` rows: dhs.manifest.buckets), bricks_with_region and region_selections
(cfg.manifest), or a target
list (``targets=PATH``, only ra and dec required, dhs.manifest.targets), keeps the
galaxies that pass the filters (funnel printed), allocates grid configs and controls per
(selection set, region split) stratified by PSF/depth quartiles (dhs.manifest.allocation), and writes
``{data_root}/phase4a/{variant}/manifests/{experiment_id}/`` shard by shard (bricks), the bricks
manifest and ``_stage_config.json``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

from omegaconf import OmegaConf

import dhs
from dhs.layout import Experiment
from dhs.stages import layout
from dhs.stages import settings as stage_settings
from dhs.errors import ConfigError, DhsError, InputTableError
from dhs.io import datasets as dio
from dhs.io import locks, shards, storage
from dhs.io.shards import Fingerprint, canonical_json, schema_version
from dhs.console import progress, summary_table

if TYPE_CHECKING:  # numpy, scipy and pyarrow load when the stage runs (not for stage=plan)
    from dhs.manifest.allocation import TierPlan
    from dhs.manifest.rows import BucketedBuilder, TaskBuilder

log = logging.getLogger("dhs.stages.manifest")


class GuardrailError(DhsError):
    """The configured tier would write more tasks than cfg.manifest.max_total_tasks."""


class StaleManifestError(DhsError):
    """A complete manifest exists but was built with different settings."""


def input_uris(cfg: Any) -> dict[str, str]:
    """The tables 4a reads: the target list alone, or the parent, brick and selection tables."""
    if cfg.get("targets"):
        return {"targets": str(cfg.targets)}
    return {k: str(cfg.manifest[k]) for k in ("parent", "bricks_with_region", "region_selections")}


def datasets(cfg: Any) -> dict:
    return {"reads": list(input_uris(cfg).values()),
            "writes": [layout.manifest_dir(cfg, e.experiment_id) for e in layout.experiments(cfg)]
            + [layout.bricks_manifest_dir(cfg), layout.stage4a_record(cfg)]}


def tier_plan(cfg: Any, n_configs: int) -> TierPlan:
    from dhs.manifest.allocation import TierPlan

    t = cfg.tier
    return TierPlan(n_configs=n_configs, n_per_config=int(t.n_per_config),
                    n_total_per_split=None if t.n_total_per_split is None else int(t.n_total_per_split),
                    control_frac=float(t.control_frac), controls=str(t.controls),
                    replicates=int(t.replicates))


def estimate(plan: TierPlan, n_groups: int, exps: list[Experiment]) -> dict[str, int]:
    """Upper bound of the tasks per experiment: groups x (injections + controls) x replicates."""
    inj, ctrl = plan.per_group()
    return {e.experiment_id: n_groups * (inj + ctrl) * plan.replicates for e in exps}


def _input_signature(cfg: Any) -> dict:
    """What 4a reads, by content: per input table, [name, content id] of each of its files (the
    name relative to a folder input; files whose name starts with '.' or '_' are not data and
    are left out). A local file's content id is the sha256 of its bytes (streamed); an s3://
    object's is its size and modification time, since a checksum would download it on every
    rerun (``storage.content_id``). Moving an input elsewhere changes nothing; rewriting it with
    other bytes, even of the same size, makes every manifest built from it stale."""
    out = {}
    for key, uri in input_uris(cfg).items():
        if not storage.exists(uri):
            raise missing_input_error(cfg, key, uri)
        base = storage.normalize(uri).rstrip("/")
        files = storage.walk_files(uri) if storage.isdir(uri) else [uri]
        names = [(f[len(base):].lstrip("/") or storage.basename(f), f) for f in files]
        out[key] = [[name, storage.content_id(f)] for name, f in sorted(names)
                    if not any(part.startswith((".", "_")) for part in name.split("/"))]
    return out


def missing_input_error(cfg: Any, key: str, uri: str) -> DhsError:
    """A missing input table, with what to run to make it."""
    if key == "targets":
        return InputTableError(f"targets={uri} does not exist; give a CSV, Parquet or FITS table "
                               "with ra and dec columns (deg)")
    return InputTableError(
        f"{key} table {uri} does not exist (survey={cfg.survey.name}, survey.tables_root="
        f"{cfg.survey.tables_root}). Build the tables with `dhs stage=parent survey={cfg.survey.name}"
        " parent.catalogs=[...]` (DR10 sweep or tractor catalogs), or inject around your own "
        "targets with `dhs stage=4a targets=PATH` (a CSV, Parquet or FITS table with ra, dec)"
        + ("; for the embedded survey run `dhs stage=mock_survey` first" if cfg.survey.name == "mock" else ""))


def fingerprint(cfg: Any, exp: Experiment, signature: dict) -> Fingerprint:
    """What determines a manifest's bytes: the input tables (their content, _input_signature), the tier, grid,
    seeds and manifest options, the experiment and the output schema."""
    pick = {k: OmegaConf.to_container(cfg[k], resolve=True) for k in ("tier", "grid", "seeds")}
    man = OmegaConf.to_container(cfg.manifest, resolve=True)
    for key in ("write_csv", "max_total_tasks", "bucket_rows", "parent", "bricks_with_region",
                "region_selections"):
        man.pop(key, None)
    if cfg.get("targets"):
        from dataclasses import asdict

        man["targets"] = asdict(stage_settings.target_settings(cfg))
    settings = {**pick, "manifest": man, "variant": str(cfg.variant),
                "experiment": {"experiment_id": exp.experiment_id, "stamp_size": exp.stamp_size,
                               "bandset": exp.bandset}, "version": dhs.__version__}
    from dhs import schema

    inputs = hashlib.blake2b(canonical_json(signature).encode(), digest_size=16).hexdigest()
    return Fingerprint(inputs, settings, schema_version(schema.MANIFEST))


def _prepare(cfg: Any, dataset: str, fp: Fingerprint) -> str:
    """'skip' (complete, same settings), else clear what cannot be resumed and return 'write'.

    A complete manifest built otherwise is never replaced silently (its task_ids feed every later
    stage): the error lists what changed (key, old, new) and the command that rebuilds it."""
    if cfg.force:  # built beside the old one, swapped in once committed
        return "force"
    for name in dio.committed_shards(dataset):
        if shards.state(dataset, name, fp) == "current":
            continue
        marker = shards.read_marker(dataset, name)
        if dio.is_complete(dataset):
            diffs = "; ".join(f"{k}: {_short(o)} -> {_short(n)}" for k, o, n in shards.changes(marker, fp)[:8])
            raise StaleManifestError(
                f"{dataset} is complete but was built with other settings ({diffs}). Rebuild it with "
                f"`dhs stage=4a tier={cfg.tier.name} force=true` (then rerun 4c), or write elsewhere "
                "with variant=<name> or paths.data_root=<folder>.")
        _clear(cfg, dataset)  # an interrupted run with other settings: start over
        return "write"
    if dio.is_complete(dataset) and cfg.skip_if_exists and dio.committed_shards(dataset):
        return "skip"
    if dio.is_complete(dataset):
        _clear(cfg, dataset)
    return "write"


def _short(v: Any) -> str:
    text = canonical_json(v)
    return text if len(text) <= 60 else text[:57] + "..."


def _clear(cfg: Any, dataset: str) -> None:
    """Remove a manifest and its CSV copy (before a rebuild)."""
    storage.remove(dataset)
    storage.remove(layout.manifest_csv_dir(cfg, storage.basename(dataset)))


def _write_experiment(cfg: Any, builder: TaskBuilder | BucketedBuilder, exp: Experiment, plan: list, fp: Fingerprint,
                      bar: Any, force: bool = False) -> dict:
    """Write the shards of one manifest that are not current; with ``force`` all of them, in a
    staging folder that replaces the manifest once committed."""
    import pyarrow.compute as pc

    from dhs.manifest.candidates import SPLITS

    final = layout.manifest_dir(cfg, exp.experiment_id)
    dataset = shards.staging_dir(final) if force else final
    if force:
        storage.remove(dataset)
        storage.remove(layout.manifest_csv_dir(cfg, exp.experiment_id))
    counts = {"tasks": 0, "controls": 0, "by_split": {s: 0 for s in SPLITS},
              "controls_by_split": {s: 0 for s in SPLITS},
              "shards_written": 0, "shards_skipped": 0}
    task = bar.add_task(exp.experiment_id, total=sum(s.n_tasks for s in plan))
    shards.recover(dataset)
    shards.invalidate(dataset)
    shards.prune(dataset, [s.name for s in plan])
    for shard in plan:
        if shards.state(dataset, shard.name, fp) == "current":
            marker = json.loads(storage.read_text(storage.join(dataset, dio.SHARDS_DIR,
                                                               f"{shard.name}.json")))
            counts["shards_skipped"] += 1
        else:
            table = builder.shard_table(exp, shard)
            ctrl_splits = pc.value_counts(table.filter(pc.equal(table.column("is_control"), 1))
                                          .column("region_split").combine_chunks()).to_pylist()
            dio.write_shard(table, dataset, shard.name, fingerprint=fp, extra={
                "tasks": table.num_rows,
                "controls": sum(v["counts"] for v in ctrl_splits),
                "controls_by_split": {v["values"]: v["counts"] for v in ctrl_splits}})
            if cfg.manifest.write_csv:
                from pyarrow import csv

                sink = __import__("io").BytesIO()
                csv.write_csv(table, sink)
                storage.write_bytes_atomic(storage.join(
                    layout.manifest_csv_dir(cfg, exp.experiment_id), f"part-{shard.name}.csv"),
                    sink.getvalue())
            marker = json.loads(storage.read_text(storage.join(dataset, dio.SHARDS_DIR,
                                                               f"{shard.name}.json")))
            counts["shards_written"] += 1
        counts["tasks"] += int(marker["tasks"])
        counts["controls"] += int(marker["controls"])
        for split, n in marker["rows"].items():
            counts["by_split"][split] = counts["by_split"].get(split, 0) + int(n)
        for split, n in marker.get("controls_by_split", {}).items():
            counts["controls_by_split"][split] += int(n)
        bar.advance(task, shard.n_tasks)
    totals = {k: v for k, v in counts.items() if k not in ("shards_written", "shards_skipped")}
    dio.mark_success(dataset, {"fingerprint": fp.digest, "settings": fp.settings,
                               "experiment_id": exp.experiment_id, **totals, "shards": [s.name for s in plan]})
    if force:
        shards.swap_in(dataset, final)
    return counts


def _stage_record(cfg: Any, candidates: Any, plan: TierPlan, per_exp: dict, groups: list) -> dict:
    uri = layout.stage4a_record(cfg)
    record = json.loads(storage.read_text(uri)) if storage.exists(uri) else {}
    record.update({
        "stage": "4a", "variant": str(cfg.variant), "pipeline_version": dhs.__version__,
        "seeds": {"split_seed": int(cfg.seeds.split_seed), "seed_base": int(cfg.seeds.seed_base)},
        "inputs": input_uris(cfg),
        "require_lrg_flag": cfg.manifest.require_lrg_flag,
        "selection_set_ids": [s.selection_set_id for s in candidates.sets],
        "quartile_edges": candidates.edges,
    })
    tiers = record.setdefault("tiers", {})
    previous = tiers.get(str(cfg.tier.name), {}).get("experiments", {})
    tiers[str(cfg.tier.name)] = {
        "settings": OmegaConf.to_container(cfg.tier, resolve=True),
        "grid": OmegaConf.to_container(cfg.grid, resolve=True),
        "n_configs": plan.n_configs, "funnel": [list(x) for x in candidates.funnel],
        "experiments": {**previous, **per_exp}, "groups": groups,
    }
    storage.write_text_atomic(uri, json.dumps(record, indent=2, sort_keys=True))
    return record


def run(cfg: Any, ctx: Any) -> dict:
    from dhs.manifest.candidates import read_selections

    t0 = time.time()
    con = ctx.console
    grid = stage_settings.grid(cfg)
    exps = layout.experiments(cfg)
    plan = tier_plan(cfg, len(grid))
    signature = _input_signature(cfg)
    if cfg.get("targets"):
        from dhs.manifest.targets import TARGET_SET_ID, load_targets

        ids = cfg.manifest.selection_set_ids
        if ids is not None and list(ids) != [TARGET_SET_ID]:
            raise ConfigError(f"manifest.selection_set_ids={list(ids)} with targets={cfg.targets}: a "
                              f"target list forms one selection set, {TARGET_SET_ID!r}; drop "
                              "manifest.selection_set_ids (or set it to [targets])")

        cand = load_targets(stage_settings.target_settings(cfg))
        sets = cand.sets
    else:
        cand = None
        sets = read_selections(str(cfg.manifest.region_selections), cfg.manifest.selection_set_ids)
    n_groups = sum(len(s.splits) for s in sets)
    est = estimate(plan, n_groups, exps)
    if sum(est.values()) > int(cfg.manifest.max_total_tasks):
        lines = "\n".join(f"  {k}: {v:,}" for k, v in est.items())
        raise GuardrailError(
            f"tier {cfg.tier.name} would write about {sum(est.values()):,} tasks, above "
            f"cfg.manifest.max_total_tasks={int(cfg.manifest.max_total_tasks):,} ({n_groups} "
            f"selection-set x split groups). Estimate per experiment:\n{lines}\n"
            "Lower tier.n_per_config / tier.n_total_per_split / tier.replicates, select fewer "
            "selection sets, or raise manifest.max_total_tasks.")
    fps = {e.experiment_id: fingerprint(cfg, e, signature) for e in exps}
    actions = {e.experiment_id: _prepare(cfg, layout.manifest_dir(cfg, e.experiment_id),
                                         fps[e.experiment_id]) for e in exps}
    skipped = [e for e in exps if actions[e.experiment_id] == "skip"]
    todo = [e for e in exps if actions[e.experiment_id] != "skip"]
    if not todo and _records_complete(cfg, exps):
        con.print(summary_table("stage 4a: nothing to do", {
            e.experiment_id: "skipped (complete, same settings)" for e in skipped}))
        return {"stage": "4a", "skipped": [e.experiment_id for e in skipped], "experiments": {},
                "wall_s": time.time() - t0}

    scratch = storage.join(storage.dirname(layout.manifest_dir(cfg, exps[0].experiment_id)),
                           f".buckets-{uuid.uuid4().hex[:12]}")
    top = scratch  # the outermost folder the scratch files create
    while storage.dirname(top) != top and not storage.exists(storage.dirname(top)):
        top = storage.dirname(top)
    try:
        return _build(cfg, ctx, cand, scratch, plan, grid, est, exps, todo, skipped, actions, fps, t0)
    finally:
        storage.remove(scratch)
        if top != scratch and storage.exists(top) and not storage.walk_files(top):
            storage.remove(top)  # a run that stopped before writing leaves no empty folders


def _build(cfg: Any, ctx: Any, cand: Any, scratch: str, plan: TierPlan, grid: Any, est: dict,
           exps: list, todo: list, skipped: list, actions: dict, fps: dict, t0: float) -> dict:
    """Candidates (from a target list, else the parent catalog by brick bucket), allocation and
    the manifests of ``todo``; records for ``skipped`` too."""
    from dhs.manifest.allocation import allocate, shortfall_warnings
    from dhs.manifest.buckets import load_bucketed
    from dhs.manifest.candidates import SPLITS, empty_error
    from dhs.manifest.rows import BucketedBuilder, TaskBuilder

    con = ctx.console
    bucketed = None
    if cand is None:
        bucketed = load_bucketed(stage_settings.manifest_inputs(cfg), scratch, int(cfg.manifest.bucket_rows))
        cand = bucketed.cand
    for w in cand.warnings:
        log.warning(w)
        con.print(f"[yellow]warning:[/yellow] {w}")
    slots = allocate(cand, plan, int(cfg.seeds.split_seed))
    funnel = list(cand.funnel) + [("tasks per experiment", slots.n * plan.replicates)]
    con.print(summary_table("stage 4a: funnel (rows left after each filter)",
                            [{"step": k, "rows": v} for k, v in funnel], ["step", "rows"]))
    if slots.n == 0:
        raise empty_error(funnel, "no task survived (see the funnel); check require_lrg_flag, "
                                  "selection_set_ids and the brick table")
    warnings = shortfall_warnings(slots)
    for w in warnings:
        log.warning(w)
        con.print(f"[yellow]warning:[/yellow] {w}")

    if bucketed is None:
        builder: TaskBuilder | BucketedBuilder = TaskBuilder(cand, slots, grid, plan.replicates,
                                                             int(cfg.seeds.seed_base))
    else:
        builder = BucketedBuilder(bucketed, slots, grid, plan.replicates, int(cfg.seeds.seed_base),
                                  int(cfg.manifest.bucket_rows))
    brick_plan = builder.shards(int(cfg.manifest.shard_max_tasks))
    bricks, n_per_brick = builder.brick_counts()
    per_exp: dict[str, dict] = {}
    with locks.hold([layout.manifest_dir(cfg, e.experiment_id) for e in exps]), progress(con) as bar:
        for exp in todo:
            counts = _write_experiment(cfg, builder, exp, brick_plan, fps[exp.experiment_id], bar,
                                       force=actions[exp.experiment_id] == "force")
            per_exp[exp.experiment_id] = counts
            dataset = layout.manifest_dir(cfg, exp.experiment_id)
            ctx.record_dataset(dataset, cfg, inputs=input_uris(cfg), counts=counts,
                extra={"fingerprint": fps[exp.experiment_id].to_json(), "quartile_edges": cand.edges})
            _write_bricks(cfg, exp, bricks, n_per_brick)
    for exp in skipped:  # a resumed run: the records of what an earlier run finished
        done = json.loads(storage.read_text(storage.join(layout.manifest_dir(cfg, exp.experiment_id), dio.SUCCESS)))
        per_exp[exp.experiment_id] = {k: done[k] for k in ("tasks", "controls", "by_split", "controls_by_split")
                                      if k in done}
        _write_bricks(cfg, exp, bricks, n_per_brick)
    bdir = layout.bricks_manifest_dir(cfg)
    dio.mark_success(bdir, {"experiments": dio.committed_shards(bdir)})
    _stage_record(cfg, cand, plan, per_exp, slots.groups)

    rows = [{"experiment": e, "tasks": c["tasks"], "controls": c["controls"],
             **{s: c["by_split"].get(s, 0) for s in SPLITS},
             "shards written": c.get("shards_written", 0), "shards skipped": c.get("shards_skipped", "all")}
            for e, c in per_exp.items()]
    rows += [{"experiment": e.experiment_id, "tasks": "skipped (complete, same settings)"}
             for e in skipped]
    con.print(summary_table(f"stage 4a: tier {cfg.tier.name} ({len(bricks)} bricks, "
                            f"{time.time() - t0:.1f} s)", rows))
    return {"stage": "4a", "experiments": per_exp, "skipped": [e.experiment_id for e in skipped],
            "funnel": funnel, "warnings": cand.warnings + warnings, "estimate": est,
            "quartile_edges": cand.edges, "n_bricks": len(bricks), "wall_s": time.time() - t0}


def _records_complete(cfg: Any, exps: list[Experiment]) -> bool:
    """The bricks manifest and the stage record hold every experiment of ``exps``."""
    bdir = layout.bricks_manifest_dir(cfg)
    uri = layout.stage4a_record(cfg)
    if not dio.is_complete(bdir) or not storage.exists(uri):
        return False
    record = json.loads(storage.read_text(uri)).get("tiers", {}).get(str(cfg.tier.name), {})
    names = {e.experiment_id for e in exps}
    return names <= set(dio.committed_shards(bdir)) and names <= set(record.get("experiments", {}))


def _write_bricks(cfg: Any, exp: Experiment, bricks: Any, n_per_brick: Any) -> None:
    import pyarrow as pa

    from dhs import schema

    sch = schema.arrow_schema(schema.BRICKS_MANIFEST)
    table = pa.Table.from_arrays(
        [bricks.cast(pa.string()), pa.array([exp.experiment_id] * len(bricks), pa.string()),
         pa.array(n_per_brick.astype("int64"))], schema=sch)
    dio.write_shard(table, layout.bricks_manifest_dir(cfg), exp.experiment_id, partition_col=None)
