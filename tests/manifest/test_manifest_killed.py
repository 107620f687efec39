"""4a killed (SIGKILL) mid-write or late, then rerun: the bytes of an uninterrupted run, and the
stage record and bricks manifest written on the resumed run too."""

from __future__ import annotations

import os

from dhs.stages import layout
from dhs.io import storage
from tests.helpers import DEBUG_64, SMALL_SURVEY, run_experiment, run_stage
from tests.killed import digest, kill_after


def test_killed_4a_resumes_to_the_same_bytes_and_records(tmp_path):
    root = tmp_path / "data"
    base = [f"paths.data_root={root}", *SMALL_SURVEY]
    run_stage(["stage=mock_survey", *base])
    over = ["stage=4a", *base, *DEBUG_64, "tier.n_per_config=2", "manifest.shard_max_tasks=40"]
    cfg, exp = run_experiment(over)
    phase = layout.phase_root(cfg, "phase4a")
    ref = digest(layout.manifest_dir(cfg, exp), layout.bricks_manifest_dir(cfg))
    storage.remove(phase)

    kill_after(over, layout.manifest_dir(cfg, exp), 2, tmp_path)
    run_stage(over)
    assert digest(layout.manifest_dir(cfg, exp), layout.bricks_manifest_dir(cfg)) == ref
    assert run_stage(["stage=validate", "validate.target=4a", *base, *DEBUG_64, "tier.n_per_config=2"])["passed"]

    # killed late: every manifest shard committed, the bricks manifest and stage record not yet
    os.remove(layout.stage4a_record(cfg))
    storage.remove(layout.bricks_manifest_dir(cfg))
    run_stage(over)
    assert os.path.exists(layout.stage4a_record(cfg))
    assert digest(layout.manifest_dir(cfg, exp), layout.bricks_manifest_dir(cfg)) == ref
    assert run_stage(["stage=validate", "validate.target=4a", *base, *DEBUG_64, "tier.n_per_config=2"])["passed"]
