"""stage=4d: completeness measured by a finder, at a false-positive rate set on the controls.

    dhs stage=4d                                    # the arcfinder's scores (dhs stage=score), FPR 0.01
    dhs stage=4d completeness.fpr=0.001             # another operating point
    dhs stage=4d finder=onnx completeness.threshold=0.9
    dhs stage=4d completeness.scores=s3://bucket/finder_scores.parquet   # any table of task_id, score
    dhs stage=4d finder=snr_proxy                   # the oracle rule arc_snr >= finder.arc_snr_min

Reads the 4c metrics and the configured finder's scores (stage=score) of every experiment. The
score threshold is set on the valid controls (of ``completeness.threshold_splits``) for the
false-positive rate ``completeness.fpr`` (dhs.completeness.thresholds), or given by
``completeness.threshold``; an injection is recovered when its score >= threshold. Writes, under
``{data_root}/phase4d/{variant}/{inject.run_name}/{score.run_name}/{experiment_id}/``::

    surfaces/by_<binning>/region_split=<split>/   pooled over regions (split 'all': every split)
    regions/by_<binning>/region_split=<split>/    per region
    tpr_at_fpr/                                   TPR (and purity) at each completeness.fpr_grid FPR per theta_E/PSF bin
    plots/*.png                                   seeing wall, vs theta_E/PSF, vs depth, TPR at FPR
    summary.json                                  finder, threshold, measured FPR, completeness, purity

An experiment whose ``_SUCCESS`` carries the fingerprint of the current settings and inputs is
skipped; any other is cleared and written again whole, so a run killed at any moment and rerun
leaves the bytes of an uninterrupted run. One run writes an experiment's outputs at a time
(``dhs.io.locks``: a second refuses while the first lives; a dead run's lock is taken over).
Every table carries the finder and threshold; every plot names them. Binnings and columns:
dhs.completeness.surfaces.BINNINGS, dhs.schema.surface_columns and dhs.schema.TPR_AT_FPR.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any, Optional

from dhs.stages import layout
from dhs.errors import InputTableError, MissingInputError
from dhs.io import datasets as dsets
from dhs.io import locks, storage
from dhs.console import summary_table
from dhs.stages import settings as stage_settings

SURFACE_SHARD = "surface"


class _Lazy:
    """``dhs.completeness.surfaces`` (pandas) imported on first use, so `dhs stage=plan` stays fast."""

    def __getattr__(self, name: str) -> Any:
        from dhs.completeness import surfaces as completeness

        return getattr(completeness, name)


comp = _Lazy()


def datasets(cfg: Any) -> dict:
    reads = [layout.metrics_dir(cfg, e) for e in layout.experiment_ids(cfg)]
    if cfg.completeness.scores:
        reads.append(str(cfg.completeness.scores))
    elif str(cfg.finder.name) != "snr_proxy":
        reads += [layout.scores_dir(cfg, e) for e in layout.experiment_ids(cfg)]
    return {"reads": reads, "writes": [layout.completeness_dir(cfg, e) for e in layout.experiment_ids(cfg)]}


def scores_path(cfg: Any, exp: str) -> Optional[str]:
    """Where the scores of ``exp`` are: completeness.scores, else stage=score's dataset (None for
    finder=snr_proxy, whose scores are the metrics' arc_snr)."""
    if cfg.completeness.scores:
        return str(cfg.completeness.scores)
    if str(cfg.finder.name) == "snr_proxy":
        return None
    return layout.scores_dir(cfg, exp)


def choose_recovery(cfg: Any, rows: Any, source: Optional[str]) -> tuple[comp.Recovery, Any, Any]:
    """The recovery rule and the controls (select, measure masks) of its threshold."""
    from dhs.completeness import thresholds

    c = cfg.completeness
    finder = str(cfg.finder.name)
    splits = [str(x) for x in c.threshold_splits]
    select, measure = thresholds.control_masks(rows, splits)
    if finder == "snr_proxy":
        _, st = stage_settings.finder_settings(cfg)
        return comp.Recovery(finder, float(st.arc_snr_min), "snr_proxy"), select, measure
    if c.threshold is not None:
        return comp.Recovery(finder, float(c.threshold), "given", scores_path=source), select, measure
    t = thresholds.threshold_for_fpr(thresholds.control_scores(rows, select), float(c.fpr))
    return comp.Recovery(finder, t, "fpr", fpr=float(c.fpr), scores_path=source), select, measure


def load_metrics(uri: str):
    """The columns completeness needs from a 4c metrics dataset, as pandas; clear error if absent."""
    import pyarrow.parquet as pq

    files = dsets.data_files(uri)
    if not files:
        raise MissingInputError(f"no 4c metrics under {uri}; run `dhs stage=4c` first")
    with storage.open_input(files[0]) as f:
        have = set(pq.read_schema(f).names) | {dsets.PARTITION_COL}
    missing = [c for c in comp.METRIC_INPUTS if c not in have]
    if missing:
        raise InputTableError(f"4c metrics {files[0]} lacks column(s) {missing} needed by stage 4d; "
                         f"re-run `dhs stage=4c force=true` with this version of dhs")
    return dsets.read_dataset(uri, columns=list(comp.METRIC_INPUTS)).to_pandas()


def load_scores(path: str, own: bool = False):
    """A lens-finder scores table (Parquet file or dataset) with task_id and score, as pandas;
    ``own``: stage=score's dataset (a missing one says which stage to run)."""
    import pyarrow.parquet as pq

    if own and not dsets.is_complete(path):
        raise MissingInputError(f"no complete scores at {path}: run `dhs stage=score` first with the same "
                                f"finder (or point completeness.scores at a Parquet file of task_id, score)")
    if not storage.exists(path):
        raise MissingInputError(f"completeness.scores={path} does not exist; point completeness.scores at a "
                                f"Parquet file with columns task_id and score")
    try:
        if storage.isdir(path):
            table = dsets.read_dataset(path, partition_col=None) if not own else \
                dsets.read_dataset(path, columns=["task_id", "score", "score_ok"])
        else:
            with storage.open_input(path) as f:
                table = pq.read_table(f)
    except Exception as exc:
        raise InputTableError(f"completeness.scores={path} is not a readable Parquet file ({exc}); "
                              f"write task_id and score to a Parquet file") from exc
    return table.to_pandas()


def _fingerprint(cfg: Any, metrics: str, scores: Optional[str]) -> str:
    from omegaconf import OmegaConf

    from dhs.provenance import describe_input

    def state(uri: Optional[str]) -> Any:
        if uri is None:
            return None
        succ = storage.join(uri, dsets.SUCCESS)
        return storage.read_text(succ) if storage.exists(succ) else describe_input(uri)

    parts = {
        "completeness": OmegaConf.to_container(cfg.completeness, resolve=True),
        "finder": OmegaConf.to_container(cfg.finder, resolve=True),
        "scores": state(scores), "metrics": state(metrics),
    }
    return hashlib.blake2b(json.dumps(parts, sort_keys=True, default=str).encode(), digest_size=16).hexdigest()


def _existing(out: str, fingerprint: str) -> Optional[dict]:
    succ = storage.join(out, dsets.SUCCESS)
    if not storage.exists(succ):
        return None
    try:
        rec = json.loads(storage.read_text(succ))
    except ValueError:
        return None
    return rec if rec.get("fingerprint") == fingerprint else None


def write_surfaces(out: str, surf: dict, recovery: comp.Recovery) -> list[str]:
    """Write every surface (aggregate and per region) as a dataset partitioned by region_split,
    labelled with the finder and threshold."""
    written = []
    for name, parts in surf.items():
        keys = comp.BINNINGS[name]
        for kind, sub, per_region in (("aggregate", "surfaces", False), ("regions", "regions", True)):
            uri = storage.join(out, sub, f"by_{name}")
            if storage.exists(uri):
                storage.remove(uri)
            dsets.write_shard(comp.to_arrow(parts[kind], keys, per_region, recovery), uri, SURFACE_SHARD)
            written.append(uri)
    return written


def write_tpr_at_fpr(out: str, curves: Any) -> str:
    import pyarrow as pa

    from dhs.schema import TPR_AT_FPR, arrow_schema

    uri = storage.join(out, "tpr_at_fpr")
    if storage.exists(uri):
        storage.remove(uri)
    schema = arrow_schema(TPR_AT_FPR)
    table = pa.table({f.name: pa.array(curves[f.name].tolist(), type=f.type) for f in schema}, schema=schema)
    dsets.write_shard(table, uri, SURFACE_SHARD, partition_col="")
    return uri


def run_experiment(cfg: Any, ctx: Any, exp: str, scores: Any) -> dict:
    """Threshold, surfaces, curves, plots and summary of one experiment; returns its summary row."""
    from dhs.completeness import thresholds
    from dhs.completeness.plots import completeness_plots, tpr_at_fpr_plot

    c = cfg.completeness
    metrics = layout.metrics_dir(cfg, exp)
    out = layout.completeness_dir(cfg, exp)
    source = scores_path(cfg, exp)
    z = float(c.z)
    fingerprint = _fingerprint(cfg, metrics, source)
    prior = _existing(out, fingerprint)
    if prior and cfg.skip_if_exists and not cfg.force:
        return {**prior["summary"], "status": "skipped: up to date (force=true redoes it)"}
    succ = storage.join(out, dsets.SUCCESS)
    if storage.exists(succ):
        storage.remove(succ)  # first: a run killed while clearing leaves nothing that looks complete
    if storage.exists(out):
        storage.remove(out)  # everything is rewritten: nothing of an earlier or a killed run stays
    table = scores if scores is not None else (load_scores(source, own=not c.scores) if source else None)
    rows = comp.prepare(load_metrics(metrics), resolution_edges=list(c.resolution_edges),
                        bad_pixel_frac_max=float(c.bad_pixel_frac_max),
                        wise_brightmask_frac_max=float(c.wise_brightmask_frac_max),
                        scores=table, scores_source=str(source))
    recovery, select, measure = choose_recovery(cfg, rows, source)
    rows = comp.mark_recovered(rows, recovery)
    surf = comp.surfaces(rows, z)
    outputs = write_surfaces(out, surf, recovery)
    cl = comp.confidence_level(z)
    plots = completeness_plots(surf, storage.join(out, "plots"), experiment=exp,
                               recovery=recovery.describe(), cl=cl)
    point = thresholds.operating_point(rows, recovery.threshold, measure, z, float(c.prevalence))
    curves = None
    if measure.any() and recovery.method != "snr_proxy":
        curves = thresholds.tpr_at_fpr(rows, list(c.fpr_grid), finder=recovery.finder, z=z,
                                       prevalence=float(c.prevalence), splits=[str(x) for x in c.threshold_splits])
        outputs.append(write_tpr_at_fpr(out, curves))
        plots.append(tpr_at_fpr_plot(curves, storage.join(out, "plots", "tpr_at_fpr_by_resolution.png"),
                                     experiment=exp, recovery=recovery.describe(), cl=cl))
    total = comp.overall(rows, z)
    fpr = comp.false_positive_rate(rows, z)
    unscored = int((rows["valid"].to_numpy() & ~rows["score_ok"].to_numpy()).sum())
    status = "ok" if dsets.is_complete(metrics) else \
        f"ok, but {metrics} has no _SUCCESS: 4c has not finished, surfaces may be partial"
    control_fpr = {k[len("fpr"):].lstrip("_") or "rate": v for k, v in point.items() if k.startswith("fpr")}
    summary = {"experiment": exp, "status": status, "finder": recovery.finder, "threshold": recovery.threshold,
               "threshold_method": recovery.method, "fpr_requested": recovery.fpr, "recovery": recovery.describe(),
               "control_fpr": control_fpr, "n_controls_threshold": int(select.sum()),
               "prevalence": point["prevalence"], "purity": point["purity"], "purity_lo": point["purity_lo"],
               "purity_hi": point["purity_hi"], "n_valid_unscored": unscored,
               "confidence_level": cl, **total, "false_positive": fpr, "outputs": outputs, "plots": plots}
    summary_uri = storage.join(out, "summary.json")
    storage.write_text_atomic(summary_uri, json.dumps(summary, indent=2, sort_keys=True, default=str))
    counts = {k: total[k] for k in ("n_attempted", "n_valid", "n_recovered", "n_controls")}
    ctx.record_dataset(out, cfg, inputs={"metrics": metrics, **({"scores": source} if source else {})},
                       counts=counts, extra={"recovery": recovery.describe(), "finder": recovery.finder,
                                             "threshold": recovery.threshold, "control_fpr": control_fpr,
                                             "surfaces": outputs, "plots": plots, "false_positive": fpr})
    dsets.mark_success(out, {"fingerprint": fingerprint, "summary": summary})
    return summary


def run(cfg: Any, ctx: Any) -> dict:
    t0 = time.time()
    present, skipped = layout.experiments_with_metrics(cfg, "stage 4d")
    scores = load_scores(str(cfg.completeness.scores)) if cfg.completeness.scores else None
    with locks.hold([layout.completeness_dir(cfg, e) for e in present]):
        results = [run_experiment(cfg, ctx, e, scores) for e in present]
    table_rows = []
    for r in results:
        fp = r.get("control_fpr") or {}
        table_rows.append({
            "experiment": r["experiment"], "status": r["status"], "threshold": f"{r['threshold']:.4g}",
            "attempted": r["n_attempted"], "valid": r["n_valid"], "recovered": r["n_recovered"],
            "completeness [CI]": f"{r['completeness']:.3f} [{r['completeness_lo']:.3f}, "
                                 f"{r['completeness_hi']:.3f}]",
            "control FPR [CI]": (f"{fp['rate']:.4f} [{fp['lo']:.4f}, {fp['hi']:.4f}] of {fp['n']}"
                                 if fp.get("n") else "-"),
            "purity [CI]": (f"{r['purity']:.3f} [{r['purity_lo']:.3f}, {r['purity_hi']:.3f}] "
                            f"at prevalence {r['prevalence']:g}"),
            "plots": "\n".join(r["plots"]),
        })
    for e, why in skipped.items():
        table_rows.append({"experiment": e, "status": f"skipped: {why}"})
    ctx.print(summary_table(f"4d completeness ({results[0]['recovery']})", table_rows,
                            columns=["experiment", "status", "threshold", "attempted", "valid", "recovered",
                                     "completeness [CI]", "control FPR [CI]", "purity [CI]", "plots"]))
    wall = round(time.time() - t0, 3)
    ctx.print(f"4d: {len(results)} experiment(s), {len(skipped)} skipped, wall time {wall} s")
    return {"stage": "4d", "experiments": results, "skipped": skipped, "wall_s": wall,
            "plots": [p for r in results for p in r["plots"]],
            "outputs": [o for r in results for o in r["outputs"]]}
