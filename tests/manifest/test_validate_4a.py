"""`dhs stage=validate target=4a` through the stage: passes on a good manifest, fails naming the
check on a broken one."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from dhs.stages import layout
from dhs.io import datasets as dio
from dhs.io import storage
from dhs.stages.validate import ValidationFailed
from tests.helpers import compose_config
from tests.helpers import run_stage


def test_validate_4a_passes_then_fails_on_a_duplicated_task(mini_base, mini_root):
    over = [*mini_base, "stage=validate", "validate.target=4a"]
    summary = run_stage(over)
    assert summary["passed"] and summary["checks"]["draws_recomputed"]["ok"]
    report = json.loads(storage.read_text(summary["outputs"][0]))
    assert report["passed"] and not report["failed"]
    # a broken copy of the manifest in another variant: one task duplicated
    cfg = compose_config(over)
    (exp,) = layout.experiment_ids(cfg)
    man = dio.read_dataset(layout.manifest_dir(cfg, exp))
    broken = pa.concat_tables([man, man.slice(0, 1)])
    bcfg = compose_config([*over, "variant=broken4a"])
    dio.write_shard(broken, layout.manifest_dir(bcfg, exp), "00000")
    dio.mark_success(layout.manifest_dir(bcfg, exp), {"rows": broken.num_rows})
    stage_record = storage.read_text(layout.stage4a_record(cfg))
    storage.write_text_atomic(layout.stage4a_record(bcfg), stage_record)
    with pytest.raises(ValidationFailed, match="task_id_unique"):
        run_stage([*over, "variant=broken4a"])
