"""Fixtures of the stage-4a tests: synthetic input tables and a runner."""

from __future__ import annotations

from pathlib import Path

import pytest

import dhs.config.schema  # noqa: F401  (registers the structured configs)
from tests.manifest.synth import make_tables, overrides, write_tables


@pytest.fixture
def tables():
    return make_tables()


@pytest.fixture
def inputs(tmp_path, tables):
    return write_tables(tmp_path / "inputs", tables)


@pytest.fixture
def run4a(compose, inputs, tmp_path):
    """run4a(*overrides, paths=None, root=None) -> (cfg, summary)."""
    from dhs.context import make_context
    from dhs.stages import manifest

    def _run(*extra: str, paths: dict | None = None, root: Path | None = None):
        cfg = compose(overrides(paths or inputs, root or tmp_path / "data", *extra))
        return cfg, manifest.run(cfg, make_context(tmp_path / "run"))

    return _run
