"""stage=validate: a data-quality report of a stage's output; fails (non-zero exit) on a failed check.

    dhs stage=validate                  # validate.target=4c: metrics + stamps of every configured experiment
    dhs stage=validate validate.target=4a   # the task manifests (dhs.manifest.checks)

For 4c it writes ``{data_root}/validate/{variant}/4c/{experiment_id}/report.json`` and
``plots/*.png`` (arc SNR per split, intrinsic vs lensed half-light radius); the checks are listed
in dhs.quality.report.
"""

from __future__ import annotations

import json
import time
from typing import Any

from dhs.stages import layout
from dhs.stages import settings as stage_settings
from dhs.errors import ConfigError, DhsError
from dhs.io import datasets as dsets
from dhs.io import storage
from dhs.console import summary_table

TARGETS = ("4a", "4c")


class ValidationFailed(DhsError):
    """At least one data-quality check failed; the message names them."""


def datasets(cfg: Any) -> dict:
    target = str(cfg.validate.target)
    exps = layout.experiment_ids(cfg)
    if target == "4a":
        return {"reads": [layout.manifest_dir(cfg, e) for e in exps],
                "writes": [layout.validate_dir(cfg, "4a", e) for e in exps]}
    return {"reads": [u for e in exps for u in (layout.metrics_dir(cfg, e), layout.stamps_dir(cfg, e))],
            "writes": [layout.validate_dir(cfg, target, e) for e in exps]}


def recorded_source(metrics: str) -> str | None:
    """The source.name the 4c run recorded next to its metrics (None without a record)."""
    uri = storage.join(metrics, "_dhs_record.json")
    if not storage.exists(uri):
        return None
    try:
        return json.loads(storage.read_text(uri))["config"]["source"]["name"]
    except (ValueError, KeyError, TypeError):
        return None


def validate_experiment(cfg: Any, ctx: Any, exp: str) -> dict:
    from dhs.quality import report as quality
    from dhs.quality.integrity import check_dataset

    metrics = layout.metrics_dir(cfg, exp)
    out = layout.validate_dir(cfg, "4c", exp)
    df = dsets.read_dataset(metrics).to_pandas()
    expected = recorded_source(metrics) or str(cfg.source.name)
    bank = cfg.source.get("bank_path") or cfg.paths.cosmos_bank
    report = quality.build_report(df, experiment=exp, expected_mode=expected, bank_uri=str(bank),
                                  stamps_uri=layout.stamps_dir(cfg, exp), bands=list(cfg.bands),
                                  metrics_only=bool(cfg.inject.metrics_only))
    report["checks"] += check_dataset(metrics, layout.stamps_dir(cfg, exp), layout.manifest_dir(cfg, exp),
                                      bool(cfg.inject.metrics_only))
    report["rerender"] = _rerender(cfg, df, layout.stamps_dir(cfg, exp), expected)
    if report["rerender"] is not None:
        rr = report["rerender"]
        worst = ", ".join(f"{b}: L2 max {v['l2_max']:.2e}, |flux| max {v['flux_max']:.2e}"
                          for b, v in rr["bands"].items())
        check = {"name": "lenstronomy_rerender", "ok": bool(rr["ok"]), "status": "pass" if rr["ok"] else "FAIL",
                 "detail": f"{rr['rows']} rows vs {rr['reference']} (tolerance L2 {rr['l2_tolerance']}, "
                           f"flux {rr['flux_tolerance']}): {worst or rr.get('detail', '')}"}
        report["checks"].append(check)
    report["failed"] = [c["name"] for c in report["checks"] if c["ok"] is False]
    report["passed"] = not report["failed"]
    report["plots"] = quality.report_plots(df, out, exp)
    report["inputs"] = {"metrics": metrics, "stamps": layout.stamps_dir(cfg, exp)}
    uri = storage.join(out, "report.json")
    storage.write_text_atomic(uri, json.dumps(report, indent=2, sort_keys=True, default=str))
    report["report"] = uri
    ctx.print(summary_table(f"validate 4c: {exp} ({'passed' if report['passed'] else 'FAILED'})",
                            quality.summary_rows(report), columns=["item", "value"]))
    ctx.record_dataset(out, cfg, inputs=report["inputs"], counts={"rows": report["rows"]},
                       extra={"passed": report["passed"], "failed": report["failed"]})
    return report


def _rerender(cfg: Any, df: Any, stamps: str, source: str) -> dict | None:
    """lenstronomy re-render of a sample of rows (dhs.quality.rerender); None when disabled."""
    n = int(cfg.validate.rerender_rows)
    if n <= 0:
        return None
    from dhs.quality.rerender import run_check
    from dhs.stages.settings import inject_settings

    s = inject_settings(cfg)
    bank = None
    if source == "cosmos":
        from dhs.cosmos.bank import load_bank

        bank = load_bank(str(cfg.source.get("bank_path") or cfg.paths.cosmos_bank))
    use_stamps = stamps if not bool(cfg.inject.metrics_only) and storage.exists(stamps) else None
    return run_check(df, s, use_stamps, bank, n, int(cfg.seeds.seed_base),
                     float(cfg.validate.rerender_l2_tol), float(cfg.validate.rerender_flux_tol))


def validate_4a(cfg: Any, ctx: Any) -> dict:
    """Checks of the task manifests: a table, ``report.json`` per run, an error if any fails."""
    from dhs.manifest.checks import validate_manifest

    checks = validate_manifest(stage_settings.manifest_checks(cfg))
    rows = [{"check": name, "result": "pass" if c["ok"] else "FAIL", "detail": c["detail"]}
            for name, c in checks.items()]
    ctx.print(summary_table("validate 4a: task manifests", rows, columns=["check", "result", "detail"]))
    failed = [name for name, c in checks.items() if not c["ok"]]
    out = storage.join(layout.phase_root(cfg, "validate"), "4a", "report.json")
    storage.write_text_atomic(out, json.dumps({"checks": checks, "failed": failed, "passed": not failed},
                                              indent=2, sort_keys=True, default=str))
    if failed:
        raise ValidationFailed("task-manifest checks failed: " + "; ".join(
            f"{n} ({checks[n]['detail']})" for n in failed) + f". Report: {out}")
    return {"stage": "validate", "target": "4a", "passed": True, "checks": checks, "outputs": [out]}


def run(cfg: Any, ctx: Any) -> dict:
    target = str(cfg.validate.target)
    if target == "4a":
        return validate_4a(cfg, ctx)
    if target != "4c":
        raise ConfigError(f"validate.target={target!r}: stage validate knows targets {', '.join(TARGETS)}; "
                          f"write e.g. `dhs stage=validate validate.target=4c`")
    t0 = time.time()
    present, skipped = layout.experiments_with_metrics(cfg, "validate")
    reports = [validate_experiment(cfg, ctx, e) for e in present]
    rows = [{"experiment": r["experiment"], "rows": r["rows"], "passed": r["passed"],
             "failed checks": ", ".join(r["failed"]) or "-", "report": r["report"]} for r in reports]
    rows += [{"experiment": e, "rows": 0, "passed": "skipped", "failed checks": why} for e, why in skipped.items()]
    ctx.print(summary_table("validate 4c: summary", rows,
                            columns=["experiment", "rows", "passed", "failed checks", "report"]))
    wall = round(time.time() - t0, 3)
    summary = {"stage": "validate", "target": "4c", "reports": [r["report"] for r in reports],
               "passed": all(r["passed"] for r in reports), "skipped": skipped, "wall_s": wall,
               "plots": [p for r in reports for p in r["plots"]],
               "outputs": [r["report"] for r in reports]}
    failed = {r["experiment"]: r["failed"] for r in reports if r["failed"]}
    if failed:
        details = "; ".join(f"{e}: " + ", ".join(f"{c['name']} ({c['detail']})" for c in r["checks"]
                                                 if c["ok"] is False)
                            for e, r in ((r["experiment"], r) for r in reports) if e in failed)
        raise ValidationFailed(f"data-quality checks failed: {details}. Reports: "
                               + ", ".join(r["report"] for r in reports if r["failed"]))
    return summary
