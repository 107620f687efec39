"""Nothing stale: 4c after a rebuilt manifest or changed settings redoes what changed, and its
``_SUCCESS`` and record describe the shards present."""

from __future__ import annotations

import json

import pytest

from dhs.stages import layout
from dhs.io import datasets as dio
from dhs.io import shards
from tests.helpers import DEBUG_64, SMALL_SURVEY, compose_config, run_stage


@pytest.fixture(scope="module")
def own_root(tmp_path_factory):
    """A mock survey and debug manifest of this module's own (it rebuilds the manifest)."""
    root = tmp_path_factory.mktemp("stale")
    base = [f"paths.data_root={root}", *SMALL_SURVEY]
    run_stage(["stage=mock_survey", *base])
    run_stage(["stage=4a", *base, *DEBUG_64])
    return [*base, *DEBUG_64, "cache.mode=none", "cluster.n_jobs=1"]


def _ids(cfg, exp, which=layout.metrics_dir):
    return dio.read_dataset(which(cfg, exp), columns=["task_id"]).column("task_id").to_pylist()


def test_rebuilt_manifest_then_4c_matches_the_manifest(own_root):
    over = [*own_root, "stage=4c", "inject.shard_max_tasks=60", "inject.run_name=rebuilt"]
    run_stage(over)
    cfg = compose_config(over)
    exp = layout.experiment_ids(cfg)[0]
    first = set(_ids(cfg, exp))
    # another split seed moves galaxies between region splits: other task_ids, other partitions
    run_stage(["stage=4a", *own_root, "force=true", "seeds.split_seed=7", "tier.n_per_config=2"])
    manifest = dio.read_dataset(layout.manifest_dir(cfg, exp), columns=["task_id", "region_split"])
    summary = run_stage(over)["experiments"][exp]
    for which in (layout.metrics_dir, layout.stamps_dir):
        ids = _ids(cfg, exp, which)
        assert len(ids) == len(set(ids)), "duplicate task_id"
        assert set(ids) == set(manifest.column("task_id").to_pylist())
    assert set(_ids(cfg, exp)) != first
    assert summary["rows"] == manifest.num_rows and summary["shards_skipped"] == 0
    ok = json.loads(open(f"{layout.metrics_dir(cfg, exp)}/_SUCCESS").read())
    assert ok["rows"] == manifest.num_rows
    by_split = {}
    for s in manifest.column("region_split").to_pylist():
        by_split[s] = by_split.get(s, 0) + 1
    assert ok["rows_by_partition"] == by_split
    assert sum(ok["errors"].values()) == manifest.num_rows
    # markers and files agree: no shard of the earlier manifest is left
    names = set(shards.committed(layout.metrics_dir(cfg, exp)))
    files = {f.rsplit("part-", 1)[1].split(".")[0] for f in dio.data_files(layout.metrics_dir(cfg, exp))}
    assert files == names and len(names) == summary["shards"]
    assert run_stage(["stage=validate", *own_root, "inject.run_name=rebuilt"])["passed"]
    run_stage(["stage=4a", *own_root, "force=true"])  # the module's manifest back for the next test


def test_changed_psf_beta_redoes_the_shards_and_the_record_is_true(own_root):
    over = [*own_root, "stage=4c", "inject.run_name=beta", "inject.shard_max_tasks=200"]
    run_stage(over)
    again = run_stage([*over, "psf.beta=2.5"])
    cfg = compose_config(over)
    exp = layout.experiment_ids(cfg)[0]
    c = again["experiments"][exp]
    assert c["shards_skipped"] == 0 and c["shards_redone"] == c["shards"] > 1
    betas = set(dio.read_dataset(layout.metrics_dir(cfg, exp), columns=["moffat_beta"])
                .column("moffat_beta").to_pylist())
    assert betas == {2.5}
    for d in (layout.metrics_dir(cfg, exp), layout.stamps_dir(cfg, exp)):
        rec = json.loads(open(f"{d}/_dhs_record.json").read())
        assert rec["shard_settings"]["psf"]["beta"] == 2.5
        assert rec["config"]["psf"]["beta"] == 2.5
        assert rec["counts"]["rows"] == c["manifest_rows"] and rec["counts"]["complete"]
        for name, m in shards.markers(d).items():
            assert m["fingerprint"]["settings"]["psf"]["beta"] == 2.5, name
    # the same settings again: every shard kept, and the record still counts every row
    third = run_stage([*over, "psf.beta=2.5"])["experiments"][exp]
    assert third["shards_skipped"] == third["shards"] and third["rows_injected_now"] == 0
    assert third["rows"] == c["manifest_rows"] and third["errors"] == c["errors"]
