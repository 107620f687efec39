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


def _short(cfg: Any) -> str:
    """A step's name for the summary: the stage, plus the tier and experiments where they matter."""
    name = cfg.stage.name
    if name in ("4a", "4c", "4d", "validate"):
        extra = f" target={cfg.validate.target}" if name == "validate" else ""
        return f"{name} tier={cfg.tier.name}{extra}"
    return name


def run(cfg: Any, ctx: Any) -> dict:
    from dhs.config import schema as dhs_config
    from dhs.config.paths import absolute_paths, note

    rows: list[dict] = []
    summaries: list[dict] = []
    plots: list[str] = []
    for step in cfg.stage.steps:
        step = list(step)
        step_cfg = compose_step(ctx.overrides, step)
        name = step_cfg.stage.name
        label = " ".join(step)
        dhs_config.check(step_cfg)
        changed = absolute_paths(step_cfg)  # remote executors: relative paths made absolute
        if changed:
            ctx.console.print(f"[yellow]{escape(note(step_cfg, changed))}[/yellow]", soft_wrap=True)
        ctx.console.rule(f"[bold]dhs {escape(label)}")
        t0 = time.time()
        summary = stages.load(name).run(step_cfg, ctx) or {}
        summaries.append({"step": label, **summary})
        plots += [str(p) for p in summary.get("plots", []) if str(p).endswith(".png")]
        rows.append({"step": _short(step_cfg), "overrides": label, "status": "ok",
                     "wall_s": round(time.time() - t0, 2),
                     "outputs": [str(o) for o in summary.get("outputs", [])]})
    table = Table(title="dhs stage=all: summary", title_justify="left")
    for col in ("step", "status", "wall s"):
        table.add_column(col, justify="right" if col == "wall s" else "left")
    for r in rows:
        table.add_row(escape(r["step"]), r["status"], f"{r['wall_s']:.1f}")
    table.add_row("total", "", f"{sum(r['wall_s'] for r in rows):.1f}")
    ctx.console.print(table)
    if plots:
        ctx.console.print("[bold]plots[/bold]")
        for p in plots:
            ctx.console.print(f"  {escape(p)}", soft_wrap=True)
    return {"stage": "all", "steps": rows, "summaries": summaries, "plots": plots}
