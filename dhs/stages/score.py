"""stage=score (alias stage=finder): the configured lens finder on the 4c stamps.

    dhs stage=score                                   # the built-in arc finder
    dhs stage=score finder=onnx finder.model=net.onnx finder.normalisation=asinh "finder.scale=[0.01,0.02,0.04]"
    dhs stage=score finder=python finder.target=my_finder.py:score

Reads the stamps of every configured experiment and writes, one shard per 4c shard (same shard
ids, committed atomically; a re-run keeps a shard only when its fingerprint, the stamps it scored,
the finder settings and model checksum and the schema, is the one it would be written with now;
``force=true`` redoes every shard), the scores dataset
``{data_root}/phase4c/{variant}/{inject.run_name}/scores/{score.run_name}/{experiment_id}/``
(columns: dhs.schema.SCORES). The dataset record holds the finder's settings, their hash and
the model checksum. Shards run through the configured executor (``cluster=``), as 4c's do.
"""

from __future__ import annotations

import json
import time
from typing import Any

from dhs.console import summary_table
from dhs.errors import ConfigError, MissingInputError
from dhs.executors import run_shards
from dhs.io import datasets as dio
from dhs.io import shards as shardio
from dhs.io import storage
from dhs.stages import layout
from dhs.stages import settings as stage_settings

#: Bumped when a column of the scores dataset changes meaning (part of every shard's fingerprint).
SCHEMA_REVISION = 1


def datasets(cfg: Any) -> dict:
    exps = layout.experiment_ids(cfg)
    return {"reads": [layout.stamps_dir(cfg, e) for e in exps], "writes": [layout.scores_dir(cfg, e) for e in exps]}


def settings_record(cfg: Any) -> dict:
    if str(cfg.finder.name) == "snr_proxy":
        return {"finder": "snr_proxy", "note": "not run by stage=score; 4d reads arc_snr from the metrics"}
    return stage_settings.score_settings(cfg).record()


def stamps_state(stamps: str, sid: str, files: list[tuple[str, str]]) -> str:
    """What a shard's stamps are: the fingerprint digest of the 4c shard (its manifest rows, 4c
    settings and schema), else (stamps compacted or written elsewhere) a hash of the files' names
    and sizes. The same on every executor; new when 4c writes other stamps."""
    import hashlib

    fp = (shardio.read_marker(stamps, sid) or {}).get("fingerprint") or {}
    if fp.get("digest"):
        return str(fp["digest"])
    base = storage.normalize(stamps).rstrip("/")
    text = json.dumps(sorted((uri[len(base):], storage.size(uri)) for uri, _ in files))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def make_shards(stamps: str, scores: str, exp: str, settings: dict) -> list[dict]:
    """One shard per 4c shard: the stamps files named ``part-<shard>.parquet`` (one per split),
    with its fingerprint (the stamps it scores, the finder settings and checksum, the schema)."""
    from dhs import schema

    base = storage.normalize(stamps).rstrip("/")
    by_shard: dict[str, list[tuple[str, str]]] = {}
    for uri in dio.data_files(stamps):
        rel = uri[len(base):].lstrip("/").split("/")
        split = next((p.split("=", 1)[1] for p in rel[:-1] if p.startswith(f"{dio.PARTITION_COL}=")), "")
        name = rel[-1][:-len(".parquet")]
        sid = name[len("part-"):] if name.startswith("part-") else name
        by_shard.setdefault(sid, []).append((uri, split))
    version = shardio.schema_version(schema.SCORES, SCHEMA_REVISION)
    return [{"experiment_id": exp, "shard_id": sid, "files": by_shard[sid], "scores_dir": scores,
             "fingerprint": shardio.Fingerprint(stamps_state(stamps, sid, by_shard[sid]), settings, version)}
            for sid in sorted(by_shard)]


def run_experiment(cfg: Any, ctx: Any, exp: str, s: Any, checksum: str) -> dict:
    sdir, out = layout.stamps_dir(cfg, exp), layout.scores_dir(cfg, exp)
    record = {**s.record(), "model_checksum": checksum}
    plan_shards = make_shards(sdir, out, exp, record)
    if cfg.force and storage.exists(out):
        storage.remove(out)
    fps = {sh["shard_id"]: sh["fingerprint"] for sh in plan_shards}
    plan = shardio.plan([out], fps, s.skip_existing)
    if plan.stale:
        ctx.console.print(summary_table(
            f"score {exp}: {len(plan.stale)} committed shard(s) scored otherwise are redone "
            f"(to keep them, rerun with score.run_name=<new name>)", plan.changes()))
    removed = shardio.begin([out], fps, plan.todo)
    todo = [sh for sh in plan_shards if sh["shard_id"] in set(plan.todo)]
    t0 = time.perf_counter()
    results = run_shards(_shard_fn(), todo, s, stage_settings.executor_settings(cfg),
                         desc=f"score {exp}", console=ctx.console)
    wall = time.perf_counter() - t0
    n_new = sum(r["rows"] for r in results if not r["skipped"])
    summary = shardio.finalize(out, fps, {"experiment_id": exp, "finder": record})
    counts = {"rows": summary["rows"], "shards": len(plan_shards), "shards_skipped": len(plan.kept),
              "shards_redone": len(plan.stale), "shards_removed": len(removed.get(out, [])),
              "rows_scored_now": n_new, "flags": summary["errors"], "complete": summary["complete"],
              "wall_s": round(wall, 3), "stamps_per_s": round(n_new / wall, 2) if wall > 0 and n_new else 0.0}
    ctx.record_dataset(out, cfg, inputs={"stamps": sdir}, counts=counts, extra={"finder": record})
    return counts


def _shard_fn() -> Any:
    from dhs.finders.scoring import run_score_shard

    return run_score_shard


def run(cfg: Any, ctx: Any) -> dict:
    if str(cfg.finder.name) == "snr_proxy":
        raise ConfigError("finder=snr_proxy is not a finder on pixels and stage=score does not run it: stage 4d "
                          "reads arc_snr from the 4c metrics itself; run `dhs stage=4d finder=snr_proxy`")
    s = stage_settings.score_settings(cfg)
    from dhs.finders.scoring import finder_for

    checksum = finder_for(s).checksum  # opens the model (or imports the callable) before any work
    exps = layout.experiment_ids(cfg)
    present = [e for e in exps if dio.is_complete(layout.stamps_dir(cfg, e))
               and dio.data_files(layout.stamps_dir(cfg, e))]
    skipped = {e: f"no complete 4c stamps at {layout.stamps_dir(cfg, e)}" for e in exps if e not in present}
    if not present:
        raise MissingInputError("stage score found no 4c stamps: " + "; ".join(skipped.values())
                                + ". Run `dhs stage=4c` first (same paths.data_root, variant, tier; "
                                  "inject.metrics_only=false).")
    summaries = {exp: run_experiment(cfg, ctx, exp, s, checksum) for exp in present}
    rows = []
    for exp, c in summaries.items():
        flagged = ", ".join(f"{k}: {v}" for k, v in sorted(c["flags"].items()) if k != "ok") or "none"
        rows.append({"experiment": exp, "scored": c["flags"].get("ok", 0), "flagged": flagged,
                     "shards (skipped)": f"{c['shards']} ({c['shards_skipped']})", "stamps/s": c["stamps_per_s"]})
    rows += [{"experiment": e, "flagged": f"skipped: {why}"} for e, why in skipped.items()]
    ctx.console.print(summary_table(f"score: finder={s.finder} (settings {s.settings_hash}"
                                    + (f", model sha256 {checksum[:12]}" if checksum else "") + ")", rows))
    return {"stage": "score", "finder": s.finder, "settings_hash": s.settings_hash, "model_checksum": checksum,
            "experiments": summaries, "skipped": skipped,
            "outputs": [layout.scores_dir(cfg, e) for e in summaries]}
