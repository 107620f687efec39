"""One pass per brick: two experiments injected together write exactly what each writes alone,
and each brick's pixels are decoded once for both."""

from __future__ import annotations

from pathlib import Path

import pytest

from dhs.stages import layout
from dhs.errors import MissingInputError
from dhs.fetch import remote
from dhs.inject import ranges
from dhs.inject.onepass import plan_passes
from dhs.io import datasets as dio
from dhs.stages.inject import experiments, make_shards
from dhs.survey import tiles
from tests.helpers import SMALL_SURVEY, compose_config, run_stage

#: A second experiment on the same bricks: another tier, stamp size and bandset.
OTHER = ["tier=grid", "grid=grid_small", "tier.stamp_sizes=[96]", "tier.bandsets=[r]", "tier.n_per_config=1",
         "tier.replicates=1", "tier.control_frac=0.2"]


def _files(cfg, exp) -> dict[str, bytes]:
    out = {}
    for d in (layout.stamps_dir(cfg, exp), layout.metrics_dir(cfg, exp)):
        for f in dio.data_files(d):
            out[f.split("/phase4c/", 1)[1].split("/", 2)[2]] = Path(f).read_bytes()
    return out


def _run(over) -> tuple[dict, dict]:
    remote.close_all()  # every run starts with no open files and no decoded tiles
    tiles.reset_counters()
    summary = run_stage(over)
    remote.close_all()
    return summary, tiles.counters()


@pytest.fixture(scope="module")
def runs(mini_base):
    root = [a for a in mini_base if a.startswith("paths.data_root=")]
    run_stage(["stage=4a", *root, *SMALL_SURVEY, *OTHER])
    common = [*mini_base, "stage=4c", "source=cosmos", "output.save_arc=true", "inject.shard_max_tasks=40"]
    first = compose_config(common)
    second = compose_config([*common, *OTHER])
    exps = [layout.experiment_ids(first)[0], layout.experiment_ids(second)[0]]
    alone = [_run([*common, "inject.run_name=alone"]), _run([*common, *OTHER, "inject.run_name=alone"])]
    together = _run([*common, "inject.run_name=together", f"inject.experiments=[{exps[0]},{exps[1]}]"])
    cfgs = {"alone": (compose_config([*common, "inject.run_name=alone"]),
                      compose_config([*common, *OTHER, "inject.run_name=alone"])),
            "together": compose_config([*common, "inject.run_name=together"])}
    return common, exps, cfgs, alone, together


def test_experiments_together_write_the_bytes_of_each_alone(runs):
    _, exps, cfgs, alone, together = runs
    assert set(together[0]["experiments"]) == set(exps)
    for k, exp in enumerate(exps):
        solo, both = _files(cfgs["alone"][k], exp), _files(cfgs["together"], exp)
        assert len(solo) >= 4 and sorted(solo) == sorted(both)
        for name in solo:
            assert solo[name] == both[name], name
        assert dio.is_complete(layout.stamps_dir(cfgs["together"], exp))
        assert together[0]["experiments"][exp]["rows"] == alone[k][0]["experiments"][exp]["rows"]


def test_each_brick_is_decoded_once_for_both(runs):
    _, _, _, alone, together = runs
    decodes = [c["whole_reads"] + c["tiles_decoded"] for _, c in alone]
    both = together[1]["whole_reads"] + together[1]["tiles_decoded"]
    assert min(decodes) > 0
    # the r files serve both experiments: fewer decodes than the two runs, not more than the larger one
    assert both < sum(decodes) and both <= max(decodes)
    assert together[1]["whole_reused"] + together[1]["tiles_reused"] > 0


def test_passes_group_overlapping_shards_and_keep_them_whole(runs):
    common, exps, cfgs, _, _ = runs
    cfg = cfgs["together"]
    shards = [make_shards(dio.read_dataset(layout.manifest_dir(cfg, e)), e, 40) for e in exps]
    passes = plan_passes(shards, 40)
    got = sorted((sh["experiment_id"], sh["shard_id"]) for p in passes for sh in p["shards"])
    assert got == sorted((sh["experiment_id"], sh["shard_id"]) for s in shards for sh in s)
    assert any(len({sh["experiment_id"] for sh in p["shards"]}) == 2 for p in passes)
    for p in passes:  # at most shard_max_tasks rows of each experiment in a pass
        for e in exps:
            assert sum(sh["rows"].num_rows for sh in p["shards"] if sh["experiment_id"] == e) <= 40
    again = plan_passes(shards, 40)
    assert [[(sh["experiment_id"], sh["shard_id"]) for sh in p["shards"]] for p in again] == \
        [[(sh["experiment_id"], sh["shard_id"]) for sh in p["shards"]] for p in passes]
    # shards as manifest ranges (what the stage hands executors) make the same passes
    by_range = [ranges.plan_shards(layout.manifest_dir(cfg, e), e, 40)[0] for e in exps]
    assert [[(sh["experiment_id"], sh["shard_id"]) for sh in p["shards"]] for p in plan_passes(by_range, 40)] == \
        [[(sh["experiment_id"], sh["shard_id"]) for sh in p["shards"]] for p in passes]
    assert ranges.shard_rows(by_range[0][0]).equals(shards[0][0]["rows"].combine_chunks())


def test_experiment_patterns_match_manifests_and_a_miss_names_the_fix(runs):
    common, exps, _, _, _ = runs
    assert experiments(compose_config([*common, "inject.experiments=[debug_*,grid_*]"])) == exps
    assert experiments(compose_config([*common, "inject.experiments=[*_stamp96_*]"])) == [exps[1]]
    with pytest.raises(MissingInputError, match="matches no manifest.*stage=4a"):
        experiments(compose_config([*common, "inject.experiments=[train_*]"]))
