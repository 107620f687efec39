"""The stamps dataset's encoding (list<float32> with BYTE_STREAM_SPLIT + zstd) reads back in
Spark exactly as dhs.io.stamps gives it, so Spark users need no dhs code."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from dhs.inject.shard import STAMP_PARQUET, _list_column
from dhs.io import datasets as dio
from dhs.io.stamps import read_stamps, to_numpy
from dhs.schema import arrow_schema, stamp_columns


def test_spark_reads_stamps_bit_for_bit(spark, tmp_path):
    rng = np.random.default_rng(5)
    n, size = 7, 16
    image = rng.normal(0, 0.02, (n, 3, size, size)).astype(np.float32)
    invvar = rng.uniform(100, 900, (n, 3, size, size)).astype(np.float32)
    mask = rng.integers(0, 4, (n, size, size)).astype(np.int32)
    cols = stamp_columns(False)
    data = {"task_id": [f"t{i}" for i in range(n)], "experiment_id": ["e"] * n, "brickname": ["0001m040"] * n,
            "is_control": [0] * n, "bandset": ["grz"] * n, "stamp_size": [size] * n, "cutout_ok": [1] * n,
            "image": _list_column(image, pa.list_(pa.float32())),
            "invvar": _list_column(invvar, pa.list_(pa.float32())),
            "maskbits": _list_column(mask, pa.list_(pa.int32()))}
    table = pa.table(data, schema=arrow_schema(cols)).append_column("region_split", pa.array(["train"] * n))
    ds = str(tmp_path / "stamps")
    dio.write_shard(table, ds, "00000", parquet_options=STAMP_PARQUET)
    ours = to_numpy(read_stamps(ds))
    np.testing.assert_array_equal(ours, image)
    rows = spark.read.parquet(ds).orderBy("task_id").select("image", "maskbits", "region_split").collect()
    theirs = np.asarray([r["image"] for r in rows], np.float32).reshape(n, 3, size, size)
    np.testing.assert_array_equal(theirs, image)
    np.testing.assert_array_equal(np.asarray([r["maskbits"] for r in rows]).reshape(n, size, size), mask)
    assert {r["region_split"] for r in rows} == {"train"}
