"""stage=all: run the pipeline's steps in order (``cfg.stage.steps``), ending with one summary."""

from __future__ import annotations

import time
from typing import Any

from rich.markup import escape
from rich.table import Table

from dhs import stages


def datasets(cfg: Any) -> dict:
    return {"reads": [], "writes": []}


def step_overrides(run_overrides: list[str], step: list[str]) -> list[str]:
    """The run's overrides (minus its stage choice) followed by the step's own overrides."""
    keep = [o for o in run_overrides if not o.lstrip("+~").startswith(("stage=", "stage.", "hydra"))]
    return keep + list(step)


def compose_step(run_overrides: list[str], step: list[str]) -> Any:
    """Compose the config of one step with Hydra's compose API (inside the running app)."""
    from hydra import compose

    return compose(config_name="config", overrides=step_overrides(run_overrides, step))


def run(cfg: Any, ctx: Any) -> dict:
    from dhs import config as dhs_config

    rows: list[dict] = []
    summaries: list[dict] = []
    for step in cfg.stage.steps:
        step = list(step)
        step_cfg = compose_step(ctx.overrides, step)
        name = step_cfg.stage.name
        label = " ".join(step)
        if not stages.available(name):
            rows.append({"step": label, "status": "not available yet", "wall_s": 0.0, "outputs": ""})
            continue
        dhs_config.check(step_cfg)
        ctx.console.rule(f"[bold]dhs {escape(label)}")
        t0 = time.time()
        summary = stages.load(name).run(step_cfg, ctx) or {}
        summaries.append({"step": label, **summary})
        outputs = summary.get("plots") or summary.get("outputs") or ""
        rows.append({"step": label, "status": "ok", "wall_s": round(time.time() - t0, 2),
                     "outputs": "\n".join(map(str, outputs)) if isinstance(outputs, (list, tuple)) else str(outputs)})
    table = Table(title="dhs stage=all: summary", title_justify="left")
    for col in ("step", "status", "wall_s", "outputs"):
        table.add_column(col)
    for r in rows:
        table.add_row(escape(r["step"]), r["status"], f"{r['wall_s']:.1f}", escape(r["outputs"]))
    ctx.console.print(table)
    return {"stage": "all", "steps": rows, "summaries": summaries}
