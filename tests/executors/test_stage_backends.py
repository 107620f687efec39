"""Stages 4a, 4c and score on the embedded survey: same bytes with joblib (1 and 2 workers) and Spark."""

from __future__ import annotations

import pytest

from dhs.context import make_context
from dhs.stages import load
from tests.executors.backends import run_on_backends
from tests.helpers import DEBUG_64, SMALL_SURVEY, run_stage

pytestmark = [pytest.mark.slow, pytest.mark.spark]


@pytest.fixture(scope="module")
def survey(tmp_path_factory):
    """A small embedded survey and COSMOS bank, shared (read-only) by every backend's run."""
    root = tmp_path_factory.mktemp("survey")
    for stage in ("cosmos_bank", "mock_survey"):
        run_stage([f"stage={stage}", f"paths.data_root={root}", *SMALL_SURVEY])
    return root


def _4a_then_4c(cfg):
    return {stage: load(stage).run(cfg, make_context()) for stage in ("4a", "4c", "score")}


def test_4a_then_4c_are_byte_identical_on_every_backend(spark, compose, survey, tmp_path):
    shared = [f"survey.base_url={survey}/mock_survey/coadd",
              f"survey.tables_root={survey}/mock_survey/tables",
              f"paths.cosmos_bank={survey}/cosmos_bank/cosmos_bank.h5"]
    overrides = ["paths.data_root={root}", *shared, *SMALL_SURVEY, *DEBUG_64, "cache.mode=none",
                 "source=cosmos", "inject.shard_max_tasks=100"]
    results = run_on_backends(compose, overrides, _4a_then_4c, lambda name: str(tmp_path / name))
    ref = results["joblib1"][1]
    assert any("/phase4a/" in f"/{k}" for k in ref) and any("/phase4c/" in f"/{k}" for k in ref)
    assert sum(k.endswith(".parquet") and "/stamps/" in f"/{k}" for k in ref) >= 3
    assert sum(k.endswith(".parquet") and "/scores/arcfinder/" in f"/{k}" for k in ref) >= 3
    for name, (_, dig) in results.items():
        assert dig == ref, f"{name} wrote different bytes"
    exps = [s["4c"]["experiments"] for s, _ in results.values()]
    counts = [{e: (v["rows"], v["errors"]) for e, v in x.items()} for x in exps]
    assert counts[0] == counts[1] == counts[2] and all(n > 0 for n, _ in counts[0].values())
