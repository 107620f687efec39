"""Stage registry. Each stage module defines:

- ``run(cfg, ctx) -> dict``: does the work, returns a summary (counts, wall time, outputs);
- ``datasets(cfg) -> {"reads": [uri, ...], "writes": [uri, ...]}``: what it would read and write.

Modules are imported only when their stage runs, so start-up stays fast.
"""

from __future__ import annotations

import importlib
from types import ModuleType

STAGE_MODULES: dict[str, str] = {
    "plan": "dhs.stages.plan",
    "all": "dhs.stages.pipeline",
    "cosmos_bank": "dhs.stages.cosmos_bank",
    "mock_survey": "dhs.stages.mock_survey",
    "4a": "dhs.stages.manifest",
    "4b": "dhs.stages.cache",
    "4c": "dhs.stages.inject",
    "4d": "dhs.stages.completeness",
    "4p5": "dhs.stages.compact",
    "validate": "dhs.stages.validate",
}

#: The order in which `stage=all` runs the pipeline on the embedded survey.
PIPELINE: tuple[str, ...] = ("cosmos_bank", "mock_survey", "4a", "4b", "4c", "4d", "validate")


class StageNotAvailable(RuntimeError):
    """The requested stage is not part of this version of dhs yet."""


def available(name: str) -> bool:
    if name not in STAGE_MODULES:
        return False
    return importlib.util.find_spec(STAGE_MODULES[name]) is not None


def load(name: str) -> ModuleType:
    """The module of stage ``name``; a plain error if it does not exist yet."""
    if name not in STAGE_MODULES:
        raise StageNotAvailable(f"unknown stage {name!r}; stages: {', '.join(STAGE_MODULES)}")
    if not available(name):
        raise StageNotAvailable(
            f"stage {name!r} is not available in this version of dhs yet "
            f"(module {STAGE_MODULES[name]} is not installed). Available stages: "
            + ", ".join(n for n in STAGE_MODULES if available(n))
        )
    return importlib.import_module(STAGE_MODULES[name])
