"""The storage layer and Parquet datasets on s3:// (and s3a://) against a moto server."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from dhs.io import datasets, storage
from tests.s3_server import configure_storage

pytestmark = pytest.mark.s3


@pytest.fixture
def bucket(moto, request):
    configure_storage(moto)
    name = moto.make_bucket(f"dhs-{request.node.name.replace('_', '-')[:40]}")
    yield name
    storage.configure()


def test_normalize_accepts_s3a_and_s3n():
    assert storage.normalize("s3a://b/k/x.parquet") == "s3://b/k/x.parquet"
    assert storage.normalize("s3n://b/k") == "s3://b/k"
    assert storage.is_s3("s3a://b/k") and not storage.is_s3("/tmp/s3a")
    assert storage.join("s3a://b/root/", "x", "y.json") == "s3://b/root/x/y.json"


def test_write_read_list_walk(bucket):
    root = f"s3a://{bucket}/root"
    storage.write_bytes_atomic(f"{root}/a/one.bin", b"\x00\x01")
    storage.write_text_atomic(f"{root}/a/two.txt", "two")
    storage.write_bytes_atomic(f"{root}/b/c/three.bin", b"3" * 1000)
    assert storage.read_bytes(f"s3://{bucket}/root/a/one.bin") == b"\x00\x01"
    assert storage.read_text(f"{root}/a/two.txt") == "two"
    assert storage.listdir(root) == ["a", "b"]
    assert storage.listdir(f"{root}/a") == ["one.bin", "two.txt"]
    assert storage.walk_files(root) == [f"s3://{bucket}/root/a/one.bin",
                                        f"s3://{bucket}/root/a/two.txt",
                                        f"s3://{bucket}/root/b/c/three.bin"]
    assert storage.size(f"{root}/b/c/three.bin") == 1000
    assert storage.exists(f"{root}/a/one.bin") and not storage.exists(f"{root}/a/none.bin")
    assert storage.listdir(f"{root}/missing") == [] and storage.walk_files(f"{root}/missing") == []
    with storage.open_input(f"{root}/b/c/three.bin") as f:  # seekable, as section reads need
        f.seek(990)
        assert f.read() == b"3" * 10
    storage.write_bytes_atomic(f"{root}/a/one.bin", b"new")  # overwrite in place
    assert storage.read_bytes(f"{root}/a/one.bin") == b"new"
    # no temporary names are left behind by atomic writes
    assert not [u for u in storage.walk_files(root) if "/.tmp-" in u]


def test_dataset_round_trip_on_s3(bucket):
    ds = f"s3a://{bucket}/data/phase4a/v/manifests/exp"
    t1 = pa.table({"task_id": ["a", "b", "c"], "region_split": ["train", "val", "train"],
                   "x": [1.0, 2.0, 3.0]})
    t2 = pa.table({"task_id": ["d"], "region_split": ["test"], "x": [4.0]})
    assert datasets.write_shard(t1, ds, "s0000") == {"train": 2, "val": 1}
    assert datasets.write_shard(t2, ds, "s0001") == {"test": 1}
    assert datasets.shard_done(ds, "s0000") and not datasets.shard_done(ds, "s0002")
    assert sorted(datasets.committed_shards(ds)) == ["s0000", "s0001"]
    assert not datasets.is_complete(ds)
    datasets.mark_success(ds, {"rows": 4})
    assert datasets.is_complete(ds)
    assert json.loads(storage.read_text(f"{ds}/_SUCCESS"))["rows"] == 4
    table = datasets.read_dataset(ds).sort_by("task_id")
    assert table.column("task_id").to_pylist() == ["a", "b", "c", "d"]
    assert table.column("region_split").to_pylist() == ["train", "val", "train", "test"]
    assert table.column("x").to_pylist() == [1.0, 2.0, 3.0, 4.0]
    # same bytes as the same shard written to a local path
    files = datasets.data_files(ds)
    assert [f.rsplit("/", 2)[-2] for f in files] == ["region_split=test", "region_split=train",
                                                     "region_split=val"]


def test_s3_and_local_shards_are_byte_identical(bucket, tmp_path):
    table = pa.table({"task_id": ["a", "b"], "region_split": ["train", "train"], "x": [1, 2]})
    datasets.write_shard(table, f"s3://{bucket}/ds", "s0000")
    datasets.write_shard(table, str(tmp_path / "ds"), "s0000")
    rel = "region_split=train/part-s0000.parquet"
    assert storage.read_bytes(f"s3://{bucket}/ds/{rel}") == (tmp_path / "ds" / rel).read_bytes()
