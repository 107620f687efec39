"""A 4c run killed (SIGKILL) at several moments, then rerun, gives the bytes of an uninterrupted run."""

from __future__ import annotations

import pytest

from dhs.stages import layout
from tests.helpers import compose_config, run_experiment, run_stage
from tests.killed import digest, kill_after


@pytest.fixture(scope="module")
def reference(mini_base):
    over = [*mini_base, "stage=4c", "inject.shard_max_tasks=30", "inject.run_name=ref"]
    cfg, exp = run_experiment(over)
    return over, digest(layout.stamps_dir(cfg, exp), layout.metrics_dir(cfg, exp))


@pytest.mark.parametrize("kind,n", [("stamps", 1), ("metrics", 4)])
def test_killed_4c_resumes_to_the_same_bytes(reference, tmp_path, kind, n):
    over_ref, ref = reference
    over = [o for o in over_ref if not o.startswith("inject.run_name")] + [f"inject.run_name=killed_{kind}"]
    cfg = compose_config(over)
    exp = layout.experiment_ids(cfg)[0]
    dirs = (layout.stamps_dir(cfg, exp), layout.metrics_dir(cfg, exp))
    kill_after(over, dirs[0] if kind == "stamps" else dirs[1], n, tmp_path)
    summary = run_stage(over)["experiments"][exp]
    assert (n if kind == "metrics" else 0) <= summary["shards_skipped"] < summary["shards"]
    got = digest(*dirs)
    assert list(got.values()) == list(ref.values())
