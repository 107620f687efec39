"""iter_table: the rows of read_table in batches (Parquet streamed, CSV and FITS file by file)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from dhs.io.tables import InputTableError, iter_table, read_table
from tests.manifest.synth import make_tables, write_table

COLS = ("brickname", "ra", "dec", "rmag")
OPT = ("objid", "zmag", "not_there")


@pytest.mark.parametrize("fmt", ["parquet", "csv", "fits"])
def test_batches_hold_the_rows_of_read_table(tmp_path, fmt):
    parent = make_tables(n_galaxies=500, n_bricks=20)["parent"]
    path = tmp_path / f"parent.{fmt}"
    write_table(parent, path, fmt)
    kw = {"what": "parent", "optional": OPT, "true_filter": "is_v3_color_relaxed", "numeric": ("ra", "rmag")}
    whole, n = read_table(str(path), COLS + ("is_v3_color_relaxed",), **kw)
    stream = iter_table(str(path), COLS + ("is_v3_color_relaxed",), 37, **kw)
    batches = list(stream)
    assert stream.count_rows() == n == stream.n_read == 500
    assert max(b.num_rows for b in batches) <= 37 and len(batches) >= whole.num_rows // 37
    assert stream.names == list(COLS) + ["is_v3_color_relaxed", "objid", "zmag"]
    got = pa.concat_tables(batches)
    assert got.num_rows == whole.num_rows < 500
    for c in whole.column_names:
        assert got.column(c).to_pylist() == whole.column(c).to_pylist(), c


def test_a_folder_of_csv_files_fills_a_column_one_file_lacks_with_nulls(tmp_path):
    parent = make_tables(n_galaxies=60, n_bricks=5)["parent"].select(list(COLS) + ["zmag"])
    (tmp_path / "cat").mkdir()
    write_table(parent.slice(0, 40), tmp_path / "cat" / "a.csv", "csv")
    write_table(parent.slice(40).drop_columns(["zmag"]), tmp_path / "cat" / "b.csv", "csv")
    stream = iter_table(str(tmp_path / "cat"), COLS, 16, what="parent", optional=("zmag",))
    got = pa.concat_tables([b.cast(stream_schema(b)) for b in stream])
    assert stream.n_read == 60 and stream.names == list(COLS) + ["zmag"]
    z = got.column("zmag").to_pylist()
    assert z[:40] == pytest.approx(parent.column("zmag").to_pylist()[:40]) and z[40:] == [None] * 20


def stream_schema(batch: pa.Table) -> pa.Schema:
    return pa.schema([pa.field(f.name, pa.float64() if pa.types.is_null(f.type) else f.type)
                      for f in batch.schema])


def test_a_bad_number_is_reported_at_its_row_in_the_table(tmp_path):
    table = pa.table({"brickname": ["a"] * 10, "ra": [str(x) for x in range(9)] + ["x"],
                      "dec": np.zeros(10), "rmag": np.ones(10)})
    write_table(table, tmp_path / "p.parquet", "parquet")
    with pytest.raises(InputTableError, match=r"'ra' must hold numbers .*row 9: 'x'"):
        list(iter_table(str(tmp_path / "p.parquet"), COLS, 4, what="parent", numeric=("ra",)))


def test_missing_columns_and_tables_are_named_before_reading(tmp_path):
    write_table(pa.table({"ra": [1.0]}), tmp_path / "p.parquet", "parquet")
    with pytest.raises(InputTableError, match="lacks column.*'brickname'"):
        iter_table(str(tmp_path / "p.parquet"), COLS, 4, what="parent")
    with pytest.raises(InputTableError, match="does not exist"):
        iter_table(str(tmp_path / "nope.parquet"), COLS, 4, what="parent")


@pytest.mark.parametrize("hive", [False, True])
def test_a_parquet_folder_streams_file_by_file_in_the_order_of_read_table(tmp_path, hive):
    import pyarrow.parquet as pq

    parent = make_tables(n_galaxies=300, n_bricks=12)["parent"].select(list(COLS) + ["zmag", "region_split"])
    root = tmp_path / "cat.parquet"
    for k, lo in enumerate(range(0, 300, 100)):
        part = parent.slice(lo, 100)
        if k == 1:
            part = part.drop_columns(["zmag"])
        sub = root / f"region_split={('train', 'val', 'test')[k]}" if hive else root
        sub.mkdir(parents=True, exist_ok=True)
        pq.write_table(part.drop_columns(["region_split"]) if hive else part, sub / f"part-{k}.parquet",
                       row_group_size=30)
    whole, _ = read_table(str(root), COLS, what="parent", optional=("zmag", "region_split"))
    stream = iter_table(str(root), COLS, 17, what="parent", optional=("zmag", "region_split"))
    batches = list(stream)
    assert max(b.num_rows for b in batches) <= 17 and stream.n_read == 300
    got = pa.concat_tables(batches)
    assert got.schema == whole.schema
    for c in whole.column_names:
        assert got.column(c).to_pylist() == whole.column(c).to_pylist(), c
