"""stage=plan: show the resolved choices and, for every stage, what it would read and write."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table

from dhs import stages
from dhs.io import storage


def datasets(cfg: Any) -> dict:
    return {"reads": [], "writes": []}


def _exists(uri: str) -> str:
    try:
        return "[green]yes[/green]" if storage.exists(uri) else "[yellow]no[/yellow]"
    except Exception as exc:  # unreachable bucket, bad credentials
        return f"[red]? ({type(exc).__name__})[/red]"


def resolved(cfg: Any) -> Any:
    """A copy of ``cfg`` with its interpolations resolved once (the plan reads every stage's paths,
    and each read of an interpolated value parses and resolves it again); ``cfg`` itself where
    one does not resolve (the stage that reads it reports it)."""
    import copy

    from omegaconf import OmegaConf
    from omegaconf.errors import InterpolationResolutionError, MissingMandatoryValue

    view = copy.deepcopy(cfg)
    try:
        OmegaConf.resolve(view)
    except (InterpolationResolutionError, MissingMandatoryValue):
        return cfg
    return view


def run(cfg: Any, ctx: Any) -> dict:
    cfg = resolved(cfg)
    choices = Table(title="dhs plan: resolved choices", title_justify="left")
    choices.add_column("group")
    choices.add_column("choice")
    for group in ("stage", "source", "psf", "grid", "tier", "cluster", "survey", "finder"):
        choices.add_row(group, escape(str(ctx.choices.get(group, cfg[group].name))))
    for key in ("variant", "bands", "paths.data_root", "seeds.split_seed", "seeds.seed_base",
                "skip_if_exists", "force"):
        node: Any = cfg
        for part in key.split("."):
            node = node[part]
        choices.add_row(key, escape(str(list(node) if key == "bands" else node)))
    ctx.console.print(choices)

    table = Table(title="dhs plan: datasets per stage", title_justify="left")
    for col in ("stage", "reads / writes", "dataset", "exists"):
        table.add_column(col)
    plan: dict[str, Any] = {}
    for name in stages.STAGE_MODULES:
        if name in ("plan", "all"):
            continue
        ds = stages.load(name).datasets(cfg)
        plan[name] = ds
        for kind in ("reads", "writes"):
            for uri in ds.get(kind, []):
                table.add_row(name, kind, escape(str(uri)), _exists(str(uri)))
    ctx.console.print(table)
    settings = stage_settings(cfg)
    for name, record in settings.items():
        t = Table(title=f"dhs plan: stage {name} settings", title_justify="left")
        t.add_column("setting")
        t.add_column("value")
        for key, value in _flat(record):
            t.add_row(escape(key), escape(str(value)))
        ctx.console.print(t)
    return {"stage": "plan", "datasets": plan, "settings": settings}


def stage_settings(cfg: Any) -> dict[str, dict]:
    """The settings objects of the stages that define ``settings_record(cfg)``, as plain data."""
    out = {}
    for name in stages.STAGE_MODULES:
        if name in ("plan", "all"):
            continue
        mod = stages.load(name)
        if hasattr(mod, "settings_record"):
            out[name] = mod.settings_record(cfg)
    return out


def _flat(record: dict, prefix: str = "") -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for key, value in record.items():
        if isinstance(value, dict) and value and all(isinstance(k, str) for k in value):
            rows += _flat(value, f"{prefix}{key}.")
        else:
            rows.append((f"{prefix}{key}", value))
    return rows
