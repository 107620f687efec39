"""Shared fixtures: compose dhs configs with Hydra's compose API, like Hydra's own examples."""

from __future__ import annotations

import os
import sys

import pytest

os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")


def compose_config(overrides: list[str] | None = None):
    """Compose the dhs config (no Hydra run context) with the given overrides."""
    from hydra import compose, initialize_config_module

    with initialize_config_module(config_module="dhs.conf", version_base=None):
        return compose(config_name="config", overrides=list(overrides or []))


@pytest.fixture
def compose():
    return compose_config


@pytest.fixture
def data_root(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    return root
