"""Same config, same bytes: n_jobs=1 vs 2, and a killed run resumed, with no duplicate task_id."""

from __future__ import annotations

import numpy as np
import pytest

from dhs.stages import layout
from dhs.inject.shard import run_shard
from dhs.io import datasets as dio
from dhs.stages.inject import make_shards, with_bank_checksum
from dhs.stages.settings import inject_settings
from tests.helpers import compose_config
from tests.helpers import run_stage


def _read(cfg, exp):
    m = dio.read_dataset(layout.metrics_dir(cfg, exp)).sort_by("task_id")
    s = dio.read_dataset(layout.stamps_dir(cfg, exp)).sort_by("task_id")
    return m, s


@pytest.fixture(scope="module")
def runs(mini_base):
    common = [*mini_base, "stage=4c", "source=cosmos", "inject.shard_max_tasks=50"]
    out = {}
    for name, extra in [("one", ["cluster.n_jobs=1"]), ("two", ["cluster.n_jobs=2"])]:
        over = [*common, *extra, f"inject.run_name=det_{name}"]
        run_stage(over)
        out[name] = compose_config(over)
    return common, out


def test_one_and_two_workers_give_identical_arrays_and_metrics(runs):
    _, cfgs = runs
    exp = layout.experiment_ids(cfgs["one"])[0]
    (m1, s1), (m2, s2) = _read(cfgs["one"], exp), _read(cfgs["two"], exp)
    assert m1.num_rows > 100
    assert m1.equals(m2)
    assert s1.equals(s2)
    f1 = [f.split("/stamps/")[1] for f in dio.data_files(layout.stamps_dir(cfgs["one"], exp))]
    f2 = [f.split("/stamps/")[1] for f in dio.data_files(layout.stamps_dir(cfgs["two"], exp))]
    assert f1 == f2 and len(f1) > 3


def test_killed_run_resumes_to_the_same_output(runs):
    common, cfgs = runs
    over = [*common, "inject.run_name=det_killed"]
    cfg = compose_config(over)
    exp = layout.experiment_ids(cfg)[0]
    manifest = dio.read_dataset(layout.manifest_dir(cfg, exp))
    dirs = {"stamps_dir": layout.stamps_dir(cfg, exp), "metrics_dir": layout.metrics_dir(cfg, exp)}
    shards = [{**sh, **dirs} for sh in make_shards(manifest, exp, 50)]
    assert len(shards) >= 4
    s = with_bank_checksum(inject_settings(cfg))
    run_shard(shards[0], s)  # finished before the kill
    # a shard killed mid-write: its stamps part exists, its metrics marker does not
    run_shard(shards[1], s)
    dio.storage.remove(dio.storage.join(layout.metrics_dir(cfg, exp), "_shards", f"{shards[1]['shard_id']}.json"))
    summary = run_stage(over)
    assert summary["experiments"][exp]["shards_skipped"] == 1
    (m1, s1), (mk, sk) = _read(cfgs["one"], exp), _read(cfg, exp)
    assert mk.equals(m1) and sk.equals(s1)
    ids = mk.column("task_id").to_pylist()
    assert len(ids) == len(set(ids)) == manifest.num_rows
    # rerun: everything is skipped, nothing rewritten
    again = run_stage(over)
    assert again["experiments"][exp]["shards_skipped"] == len(shards)


def test_force_redoes_committed_shards(runs):
    common, cfgs = runs
    over = [*common, "inject.run_name=det_one", "force=true"]
    cfg = compose_config(over)
    exp = layout.experiment_ids(cfg)[0]
    before = _read(cfgs["one"], exp)[0]
    summary = run_stage(over)
    assert summary["experiments"][exp]["shards_skipped"] == 0
    assert _read(cfg, exp)[0].equals(before)
    assert np.isfinite(before.column("arc_snr").to_numpy(zero_copy_only=False)).any()
