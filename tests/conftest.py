"""Shared fixtures: composed configs, a data root, and a small embedded survey built once per session."""

from __future__ import annotations

import os
import sys

import pytest

from tests.helpers import DEBUG_64, SMALL_SURVEY, compose_config, run_stage

os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")


@pytest.fixture
def compose():
    return compose_config


@pytest.fixture
def data_root(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    return root


@pytest.fixture(scope="session")
def mini_root(tmp_path_factory):
    """A COSMOS bank, a 3-brick mock survey and a debug manifest (64 px, grz)."""
    root = tmp_path_factory.mktemp("mini")
    base = [f"paths.data_root={root}", *SMALL_SURVEY]
    run_stage(["stage=cosmos_bank", *base])
    run_stage(["stage=mock_survey", *base])
    run_stage(["stage=4a", *base, *DEBUG_64])
    return root


@pytest.fixture(scope="session")
def mini_base(mini_root):
    """Overrides that point every stage at the session's mini survey (direct section reads)."""
    return [f"paths.data_root={mini_root}", *SMALL_SURVEY, *DEBUG_64, "cache.mode=none", "cluster.n_jobs=1"]
