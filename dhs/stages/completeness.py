"""stage=4d: completeness surfaces with Wilson intervals, and the seeing-wall plots.

    dhs stage=4d                                         # proxy recovery: arc_snr and theta_E/PSF
    dhs stage=4d completeness.scores=s3://bucket/finder_scores.parquet completeness.score_threshold=0.8

Reads the 4c metrics of every configured experiment and writes, under
``{data_root}/phase4d/{variant}/{experiment_id}/``::

    surfaces/by_<binning>/region_split=<split>/   pooled over regions (split 'all': every split)
    regions/by_<binning>/region_split=<split>/    per region
    plots/*.png                                   seeing wall, vs theta_E/PSF, vs depth
    summary.json                                  overall counts, completeness, false-positive rate

Binnings and columns: dhs.completeness.surfaces.BINNINGS and dhs.schema.surface_columns.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any, Optional

from dhs.stages import layout
from dhs.errors import InputTableError, MissingInputError
from dhs.io import datasets as dsets
from dhs.io import storage
from dhs.console import summary_table

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
    return {"reads": reads, "writes": [layout.completeness_dir(cfg, e) for e in layout.experiment_ids(cfg)]}


def recovery_from_cfg(cfg: Any) -> comp.Recovery:
    c = cfg.completeness
    return comp.Recovery(arc_snr_min=float(c.arc_snr_min), resolution_min=float(c.resolution_min),
                         score_threshold=float(c.score_threshold),
                         scores_path=str(cfg.completeness.scores) if cfg.completeness.scores else None)


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


def load_scores(path: str):
    """A lens-finder scores table (Parquet file or dataset) with task_id and score, as pandas."""
    import pyarrow.parquet as pq

    if not storage.exists(path):
        raise MissingInputError(f"completeness.scores={path} does not exist; point completeness.scores at a "
                                f"Parquet file with columns task_id and score")
    try:
        if storage.isdir(path):
            table = dsets.read_dataset(path, partition_col=None)
        else:
            with storage.open_input(path) as f:
                table = pq.read_table(f)
    except Exception as exc:
        raise InputTableError(f"completeness.scores={path} is not a readable Parquet file ({exc}); "
                              f"write task_id and score to a Parquet file") from exc
    return table.to_pandas()


def _fingerprint(cfg: Any, metrics: str) -> str:
    from omegaconf import OmegaConf

    from dhs.provenance import describe_input

    succ = storage.join(metrics, dsets.SUCCESS)
    parts = {
        "completeness": OmegaConf.to_container(cfg.completeness, resolve=True),
        "scores": describe_input(str(cfg.completeness.scores)) if cfg.completeness.scores else None,
        "metrics": storage.read_text(succ) if storage.exists(succ) else describe_input(metrics),
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


def write_surfaces(out: str, surf: dict) -> list[str]:
    """Write every surface (aggregate and per region) as a dataset partitioned by region_split."""
    written = []
    for name, parts in surf.items():
        keys = comp.BINNINGS[name]
        for kind, sub, per_region in (("aggregate", "surfaces", False), ("regions", "regions", True)):
            uri = storage.join(out, sub, f"by_{name}")
            if storage.exists(uri):
                storage.remove(uri)
            dsets.write_shard(comp.to_arrow(parts[kind], keys, per_region), uri, SURFACE_SHARD)
            written.append(uri)
    return written


def run_experiment(cfg: Any, ctx: Any, exp: str, scores: Any) -> dict:
    """Surfaces, plots and summary of one experiment; returns its summary row."""
    from dhs.completeness.plots import completeness_plots

    metrics = layout.metrics_dir(cfg, exp)
    out = layout.completeness_dir(cfg, exp)
    recovery = recovery_from_cfg(cfg)
    z = float(cfg.completeness.z)
    fingerprint = _fingerprint(cfg, metrics)
    prior = _existing(out, fingerprint)
    if prior and cfg.skip_if_exists and not cfg.force:
        return {**prior["summary"], "status": "skipped: up to date (force=true redoes it)"}
    if storage.exists(storage.join(out, dsets.SUCCESS)):
        storage.remove(storage.join(out, dsets.SUCCESS))
    rows = comp.prepare(load_metrics(metrics), recovery,
                        resolution_edges=list(cfg.completeness.resolution_edges),
                        bad_pixel_frac_max=float(cfg.completeness.bad_pixel_frac_max),
                        wise_brightmask_frac_max=float(cfg.completeness.wise_brightmask_frac_max),
                        scores=scores)
    surf = comp.surfaces(rows, z)
    outputs = write_surfaces(out, surf)
    cl = comp.confidence_level(z)
    plots = completeness_plots(surf, storage.join(out, "plots"), experiment=exp,
                               recovery=recovery.describe(), cl=cl)
    total = comp.overall(rows, z)
    fpr = comp.false_positive_rate(rows, z) if recovery.mode == "scores" else None
    status = "ok" if dsets.is_complete(metrics) else \
        f"ok, but {metrics} has no _SUCCESS: 4c has not finished, surfaces may be partial"
    summary = {"experiment": exp, "status": status, "recovery": recovery.describe(),
               "confidence_level": cl, **total, "false_positive": fpr,
               "outputs": outputs, "plots": plots}
    summary_uri = storage.join(out, "summary.json")
    storage.write_text_atomic(summary_uri, json.dumps(summary, indent=2, sort_keys=True, default=str))
    counts = {k: total[k] for k in ("n_attempted", "n_valid", "n_recovered", "n_controls")}
    ctx.record_dataset(out, cfg, inputs={"metrics": metrics, **({"scores": recovery.scores_path}
                                                               if recovery.scores_path else {})},
                       counts=counts, extra={"recovery": recovery.describe(), "surfaces": outputs,
                                             "plots": plots, "false_positive": fpr})
    dsets.mark_success(out, {"fingerprint": fingerprint, "summary": summary})
    return summary


def run(cfg: Any, ctx: Any) -> dict:
    t0 = time.time()
    present, skipped = layout.experiments_with_metrics(cfg, "stage 4d")
    scores = load_scores(str(cfg.completeness.scores)) if cfg.completeness.scores else None
    results = [run_experiment(cfg, ctx, e, scores) for e in present]
    table_rows = []
    for r in results:
        fp = (r.get("false_positive") or {}).get("all")
        table_rows.append({
            "experiment": r["experiment"], "status": r["status"], "attempted": r["n_attempted"],
            "valid": r["n_valid"], "recovered": r["n_recovered"],
            "completeness [CI]": f"{r['completeness']:.3f} [{r['completeness_lo']:.3f}, "
                                 f"{r['completeness_hi']:.3f}]",
            "false-positive rate [CI]": (f"{fp['false_positive_rate']:.3f} [{fp['false_positive_rate_lo']:.3f}, "
                                         f"{fp['false_positive_rate_hi']:.3f}]") if fp else "-",
            "plots": "\n".join(r["plots"]),
        })
    for e, why in skipped.items():
        table_rows.append({"experiment": e, "status": f"skipped: {why}"})
    ctx.print(summary_table(f"4d completeness ({results[0]['recovery']})", table_rows,
                            columns=["experiment", "status", "attempted", "valid", "recovered",
                                     "completeness [CI]", "false-positive rate [CI]", "plots"]))
    wall = round(time.time() - t0, 3)
    ctx.print(f"4d: {len(results)} experiment(s), {len(skipped)} skipped, wall time {wall} s")
    return {"stage": "4d", "experiments": results, "skipped": skipped, "wall_s": wall,
            "plots": [p for r in results for p in r["plots"]],
            "outputs": [o for r in results for o in r["outputs"]]}
