"""A small embedded survey, COSMOS bank and debug manifest, built once per test session."""

from __future__ import annotations

import pytest

from dhs.context import make_context
from dhs.stages import load
from tests.conftest import compose_config

SMALL_SURVEY = ["mock_survey.n_bricks=3", "mock_survey.brick_size_pix=300", "mock_survey.galaxies_per_brick=12",
                "mock_survey.n_regions=3"]
DEBUG_64 = ["tier=debug", "tier.stamp_sizes=[64]", "tier.bandsets=[grz]", "tier.n_per_config=1",
            "tier.replicates=1"]


def run_stage(overrides: list[str], run_dir=None) -> dict:
    cfg = compose_config(overrides)
    return load(cfg.stage.name).run(cfg, make_context(run_dir))


@pytest.fixture(scope="session")
def mini_root(tmp_path_factory):
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
