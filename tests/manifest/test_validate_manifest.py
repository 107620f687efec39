"""validate target=4a passes on a good manifest and names the failing check on a broken one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dhs.stages import layout
from dhs.io import datasets as dio
from dhs.manifest.checks import validate_manifest
from dhs.stages.settings import manifest_checks


@pytest.fixture
def built(run4a):
    cfg, _ = run4a("tier.n_per_config=2", "tier.control_frac=0.2", "tier.bandsets=[grz]")
    return cfg


def _first_file(cfg):
    return Path(dio.data_files(layout.manifest_dir(cfg, layout.experiment_ids(cfg)[0]))[0])


def _rewrite(path: Path, fn) -> None:
    t = pq.read_table(path)
    pq.write_table(fn(t), path)


def test_good_manifest_passes_every_check(built):
    checks = validate_manifest(manifest_checks(built))
    assert {"seeds_recorded", "complete", "schema", "experiment_id_pattern", "task_id_unique",
            "control_fraction", "replicates", "frozen_columns", "draw_ranges", "draws_recomputed",
            "stamp_sizes", "bandsets"} <= set(checks)
    assert all(c["ok"] for c in checks.values()), {k: v for k, v in checks.items() if not v["ok"]}


def _col(t: pa.Table, name: str, values) -> pa.Table:
    i = t.column_names.index(name)
    return t.set_column(i, t.schema.field(i), pa.array(values, t.schema.field(i).type))


@pytest.mark.parametrize("check,breaker", [
    ("task_id_unique", lambda t: pa.concat_tables([t, t.slice(0, 3)])),
    ("draws_recomputed", lambda t: _col(t, "lens_e", np.where(t.column("is_control").to_numpy() == 1, None,
                                                              t.column("lens_e").to_numpy()[::-1]))),
    ("frozen_columns", lambda t: _col(t, "src_gr", np.where(t.column("is_control").to_numpy() == 1, 0.3,
                                                            t.column("src_gr").to_numpy()))),
    ("control_fraction", lambda t: _col(t, "is_control", np.zeros(t.num_rows, np.int32))),
    ("experiment_id_pattern", lambda t: _col(t, "stamp_size", np.full(t.num_rows, 80, np.int32))),
])
def test_broken_manifest_fails_the_named_check(built, check, breaker):
    _rewrite(_first_file(built), breaker)
    checks = validate_manifest(manifest_checks(built))
    assert not checks[check]["ok"], checks[check]
    assert layout.experiment_ids(built)[0] in checks[check]["detail"]


def test_missing_seeds_and_incomplete_manifest(built):
    rec_path = Path(layout.stage4a_record(built))
    rec = json.loads(rec_path.read_text())
    del rec["seeds"]
    rec_path.write_text(json.dumps(rec))
    (Path(layout.manifest_dir(built, layout.experiment_ids(built)[1])) / "_SUCCESS").unlink()
    checks = validate_manifest(manifest_checks(built))
    assert not checks["seeds_recorded"]["ok"]
    assert not checks["complete"]["ok"] and "no _SUCCESS" in checks["complete"]["detail"]
    assert not checks["stamp_sizes"]["ok"]  # the 96-pixel experiment was not read


def test_a_prior_grid_passes_the_checks_with_its_draws_recomputed(run4a):
    cfg, _ = run4a("grid=grid_lenses_small", "tier.n_per_config=2", "tier.bandsets=[grz]")
    checks = validate_manifest(manifest_checks(cfg))
    assert all(c["ok"] for c in checks.values()), {k: v for k, v in checks.items() if not v["ok"]}
    assert "draws match" in checks["draws_recomputed"]["detail"]
