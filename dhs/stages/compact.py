"""stage=4p5: rewrite Parquet datasets into fewer, larger files (partitioning and row order kept).

    dhs stage=4p5                                        # the 4c stamps and metrics of the tier
    dhs stage=4p5 compact.dataset=s3://bucket/phase4c/v3/stamps/train_stamp64_bandsgrz_gridgrid_small
    dhs stage=4p5 compact.target_file_mb=512

The work is in dhs.io.compact; the swap is atomic on local disks (see its module doc).
"""

from __future__ import annotations

import time
from typing import Any

from dhs.stages import layout
from dhs.errors import ConfigError, MissingInputError
from dhs.io import compact, storage
from dhs.io import datasets as dsets
from dhs.console import summary_table


def targets(cfg: Any) -> list[str]:
    """cfg.compact.dataset, or the 4c stamps and metrics datasets of every configured experiment."""
    if cfg.compact.get("dataset"):
        return [str(cfg.compact.dataset)]
    out = []
    for exp in layout.experiment_ids(cfg):
        out += [layout.stamps_dir(cfg, exp), layout.metrics_dir(cfg, exp)]
    return out


def datasets(cfg: Any) -> dict:
    t = targets(cfg)
    return {"reads": t, "writes": t}


def run(cfg: Any, ctx: Any) -> dict:
    t0 = time.time()
    if float(cfg.compact.target_file_mb) <= 0:
        raise ConfigError(f"compact.target_file_mb={cfg.compact.target_file_mb} must be > 0 (MB per file)")
    uris = targets(cfg)
    explicit = bool(cfg.compact.get("dataset"))
    present = [u for u in uris if dsets.data_files(u)]
    skipped = {u: "no Parquet files" for u in uris if u not in present}
    if not present:
        raise MissingInputError("stage 4p5 found nothing to compact: " + ", ".join(uris)
                                 + (" (compact.dataset)" if explicit else "; run `dhs stage=4c` first"))
    reports = []
    for uri in present:
        provenance = {"stage": "4p5", "run_dir": str(ctx.run_dir), "compression": str(cfg.output.compression)}
        rep = compact.compact_dataset(uri, float(cfg.compact.target_file_mb),
                                      compression=str(cfg.output.compression), record=provenance)
        reports.append(rep)
    rows = [{"dataset": r.dataset, "status": r.status, "rows": r.rows, "files before": r.files_before,
             "files after": r.files_after, "MB before": round(r.bytes_before / 1e6, 3),
             "MB after": round(r.bytes_after / 1e6, 3), "wall (s)": r.wall_s} for r in reports]
    rows += [{"dataset": u, "status": f"skipped: {why}"} for u, why in skipped.items()]
    ctx.print(summary_table(f"4p5 compaction (target {cfg.compact.target_file_mb} MB per file)", rows,
                            columns=["dataset", "status", "rows", "files before", "files after",
                                     "MB before", "MB after", "wall (s)"]))
    wall = round(time.time() - t0, 3)
    ctx.print(f"4p5: {sum(r.status == 'compacted' for r in reports)} compacted, "
              f"{len(reports) - sum(r.status == 'compacted' for r in reports) + len(skipped)} skipped, "
              f"wall time {wall} s")
    return {"stage": "4p5", "datasets": [r.as_dict() for r in reports], "skipped": skipped,
            "files_before": sum(r.files_before for r in reports),
            "files_after": sum(r.files_after for r in reports),
            "rows": sum(r.rows for r in reports), "wall_s": wall,
            "outputs": [r.dataset for r in reports if storage.exists(r.dataset)]}
