"""Input values checked in the driver before any work (through the CLI's path): impossible
coordinates dropped with a count by reason, a text value in a numeric column named with its file
and column."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from dhs.errors import InputTableError
from dhs.io import datasets as dio
from dhs.stages import layout
from tests.helpers import compose_config, run_stage
from tests.manifest.synth import overrides, write_table, write_tables

SMALL = ("tier.stamp_sizes=[64]", "tier.bandsets=[grz]")


def _set(table: pa.Table, name: str, values) -> pa.Table:
    return table.set_column(table.column_names.index(name), name, pa.array(values))


def test_impossible_coordinates_are_dropped_with_a_count_by_reason(tables, tmp_path):
    p = tables["parent"]
    flag = np.asarray(p.column("is_v3_color_relaxed").to_pylist(), bool)
    rows = np.flatnonzero(flag)[:4]  # rows that would become tasks
    ra = p.column("ra").to_numpy().copy()
    dec = p.column("dec").to_numpy().copy()
    ra[rows[0]], dec[rows[1]], dec[rows[2]], ra[rows[3]] = np.nan, np.inf, 95.0, -10.0
    bad = {**tables, "parent": _set(_set(p, "ra", ra), "dec", dec)}
    over = overrides(write_tables(tmp_path / "in", bad), tmp_path / "data", *SMALL)
    out = run_stage(over)
    (warning,) = [w for w in out["warnings"] if "impossible coordinates" in w]
    assert "dropped 4 row(s)" in warning
    assert "2 ra or dec not finite, 1 |dec| > 90, 1 ra outside [0, 360)" in warning
    assert ("ra in [0, 360), dec in [-90, 90]", int(flag.sum()) - 4) in [tuple(f) for f in out["funnel"]]
    cfg = compose_config(over)
    man = dio.read_dataset(layout.manifest_dir(cfg, layout.experiment_ids(cfg)[0]))
    got = np.c_[man.column("ra").to_numpy(), man.column("dec").to_numpy()]
    assert np.isfinite(got).all() and (np.abs(got[:, 1]) <= 90).all() and (got[:, 0] >= 0).all()


@pytest.mark.parametrize("key,column", [("parent", "rmag"), ("parent", "dec"), ("parent", "region_id")])
def test_text_in_a_numeric_column_names_file_column_and_value(tables, tmp_path, key, column):
    t = tables[key]
    values = [str(v) for v in t.column(column).to_pylist()]
    values[3] = "faint"
    paths = write_tables(tmp_path / "in", tables)
    name = {"parent": "parent", "bricks": "bricks_with_region"}[key]
    csv_path = tmp_path / "in" / f"{name}.csv"
    write_table(_set(t, column, values), csv_path, "csv")
    paths[name] = str(csv_path)
    with pytest.raises(InputTableError) as err:
        run_stage(overrides(paths, tmp_path / "data", *SMALL))
    msg = str(err.value)
    assert str(csv_path) in msg and f"column '{column}' must hold numbers" in msg and "'faint'" in msg
    assert not (tmp_path / "data" / "phase4a").exists()


def test_numbers_written_as_text_are_read_as_numbers(tables, tmp_path):
    p = tables["parent"]
    paths = write_tables(tmp_path / "in", tables)
    text = _set(p, "rmag", [repr(float(v)) for v in p.column("rmag").to_pylist()])
    pq = tmp_path / "in" / "parent_text.parquet"
    write_table(text, pq, "parquet")
    out = run_stage(overrides({**paths, "parent": str(pq)}, tmp_path / "data", *SMALL))
    ref = run_stage(overrides(paths, tmp_path / "ref", *SMALL))
    assert out["funnel"] == ref["funnel"]
