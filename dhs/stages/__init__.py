"""Stage registry. Each stage module defines:

- ``run(cfg, ctx) -> dict``: does the work, returns a summary (counts, wall time, outputs);
- ``datasets(cfg) -> {"reads": [uri, ...], "writes": [uri, ...]}``: what it would read and write.

Modules are imported only when their stage runs, so start-up stays fast. A stage is chosen by
its id (``dhs stage=4c``) or by its alias (``dhs stage=inject``: ``conf/stage/inject.yaml``
names the same id, so runs and paths are the same).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Optional


@dataclass(frozen=True)
class Stage:
    """A stage: its module, its descriptive alias (if any) and what it does, in one line."""

    module: str
    alias: Optional[str]
    summary: str


STAGES: dict[str, Stage] = {
    "plan": Stage("dhs.stages.plan", None, "show what every stage would read and write, and its settings"),
    "all": Stage("dhs.stages.pipeline", None, "the whole pipeline on the embedded survey (make demo)"),
    "cosmos_bank": Stage("dhs.stages.cosmos_bank", None, "HST galaxies of a RealGalaxyCatalog -> COSMOS bank (HDF5)"),
    "mock_survey": Stage("dhs.stages.mock_survey", None, "the embedded survey (survey=mock) in DR10 format"),
    "parent": Stage("dhs.stages.parent", None, "DR10 LRG parent sample, brick and region tables from sweeps"),
    "4a": Stage("dhs.stages.manifest", "manifests", "task manifests of a tier (galaxies x grid configs)"),
    "4b": Stage("dhs.stages.cache", "cache", "coadd cache: the survey files of every brick of the manifests"),
    "4c": Stage("dhs.stages.inject", "inject", "inject lensed arcs into survey stamps: stamps and metrics"),
    "score": Stage("dhs.stages.score", "finder", "score the 4c stamps with a lens finder (finder=...)"),
    "4d": Stage("dhs.stages.completeness", "completeness",
                "completeness at a false-positive rate set on the controls, Wilson intervals, plots"),
    "4p5": Stage("dhs.stages.compact", "compact", "rewrite Parquet datasets into fewer, larger files"),
    "validate": Stage("dhs.stages.validate", None, "data-quality report of the 4a or 4c outputs"),
}

#: Stage id -> module (every stage id the config may name).
STAGE_MODULES: dict[str, str] = {name: s.module for name, s in STAGES.items()}

#: Alias -> stage id.
ALIASES: dict[str, str] = {s.alias: name for name, s in STAGES.items() if s.alias}


def load(name: str) -> ModuleType:
    """The module of stage ``name`` (a stage id; dhs.config.checks has checked it)."""
    return importlib.import_module(STAGE_MODULES[name])


def help_lines() -> str:
    """One line per stage for ``dhs --help``: id, alias, what it does."""
    labels = {name: name + (f" ({s.alias})" if s.alias else "") for name, s in STAGES.items()}
    width = max(map(len, labels.values()))
    return "\n".join(f"  {labels[name].ljust(width)}  {s.summary}" for name, s in STAGES.items())
