"""validate 4c checks the dataset against its manifest and its shard markers, and names the
failed check: duplicate task_ids, tasks missing, rows per split, shards of other settings."""

from __future__ import annotations

import json

import pytest

from dhs.io import datasets as dio
from dhs.io import shards, storage
from dhs.stages import validate


def _run(exp, ctx):
    exp.cfg.stage.name = "validate"
    return validate.run(exp.cfg, ctx)


def test_duplicated_rows_fail_uniqueness(experiment, ctx):
    part = dio.read_dataset(experiment.metrics).slice(0, 5)
    dio.write_shard(part, experiment.metrics, "00099")
    with pytest.raises(validate.ValidationFailed, match=r"metrics_task_ids_unique \(5 duplicate task_id"):
        _run(experiment, ctx)


def test_missing_tasks_fail_the_manifest_check(experiment, ctx):
    shards.remove_shard(experiment.stamps, "00001")
    with pytest.raises(validate.ValidationFailed) as err:
        _run(experiment, ctx)
    msg = str(err.value)
    assert "stamps_task_ids_match_manifest" in msg and "manifest task(s) missing" in msg
    assert "stamps_rows_per_split" in msg and "stamps_metrics_same_shards" in msg
    assert "metrics_task_ids_match_manifest" not in msg


def test_a_shard_of_other_settings_fails_the_fingerprint_check(experiment, ctx):
    uri = shards.marker_uri(experiment.metrics, "00002")
    marker = json.loads(storage.read_text(uri))
    marker["fingerprint"]["settings"]["psf"]["beta"] = 4.5
    marker["fingerprint"]["settings_digest"] = shards.Fingerprint("", marker["fingerprint"]["settings"]).settings_digest
    storage.write_text_atomic(uri, json.dumps(marker))
    with pytest.raises(validate.ValidationFailed, match=r"metrics_shard_fingerprints \(2 distinct settings in 3"):
        _run(experiment, ctx)


def test_good_dataset_passes_the_integrity_checks(experiment, ctx):
    report = json.loads(open(_run(experiment, ctx)["reports"][0]).read())
    status = {c["name"]: c["status"] for c in report["checks"]}
    for kind in ("metrics", "stamps"):
        for check in ("task_ids_unique", "task_ids_match_manifest", "rows_per_split", "complete",
                      "shard_fingerprints"):
            assert status[f"{kind}_{check}"] == "pass"
    assert status["stamps_metrics_same_shards"] == "pass"
