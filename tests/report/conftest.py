"""Fixtures for the 4d / 4p5 / validate tests: a synthetic 4c experiment on disk and its config."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
import pytest

from dhs import config as _registers_schemas  # noqa: F401  (ConfigStore schemas)
from dhs import layout
from dhs.context import make_context
from tests.conftest import compose_config
from tests.report import synth


@dataclass
class Experiment:
    cfg: Any
    frame: pd.DataFrame
    metrics: str
    stamps: str
    bank: str


def experiment_cfg(data_root, bank, stage: str, extra: list[str] | None = None):
    return compose_config([f"stage={stage}", f"paths.data_root={data_root}", f"experiment_id={synth.EXP}",
                           "source=cosmos", f"paths.cosmos_bank={bank}", *(extra or [])])


def write_experiment(data_root, frame: pd.DataFrame, stage: str = "4d", extra: list[str] | None = None,
                     stamps: Any = None) -> Experiment:
    bank = str(synth.make_bank(data_root / "bank.h5"))
    cfg = experiment_cfg(data_root, bank, stage, extra)
    metrics = layout.metrics_dir(cfg, synth.EXP)
    synth.write_dataset(synth.metrics_table(frame), metrics)
    sdir = layout.stamps_dir(cfg, synth.EXP)
    synth.write_dataset(stamps if stamps is not None else synth.stamps_table(frame), sdir, n_shards=6)
    return Experiment(cfg, frame, metrics, sdir, bank)


@pytest.fixture
def frame():
    return synth.metrics_frame()


@pytest.fixture
def experiment(data_root, frame):
    return write_experiment(data_root, frame)


@pytest.fixture
def ctx(tmp_path):
    return make_context(tmp_path / "run")
