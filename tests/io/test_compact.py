"""Compaction keeps every row, their order, the partitioning and the metadata; fewer files."""

from __future__ import annotations

import json
import os

import pyarrow.parquet as pq
import pytest

from dhs.io import compact
from dhs.io.datasets import data_files, read_dataset, shard_done
from dhs.stages import compact as stage
from tests import synth4c as synth


def _dataset(tmp_path, n_shards=12):
    frame = synth.metrics_frame(n_per=4)
    table = synth.stamps_table(frame)
    uri = str(tmp_path / "stamps")
    synth.write_dataset(table, uri, n_shards=n_shards)
    return uri


def _per_split(uri):
    t = read_dataset(uri).to_pandas()
    return {s: g.drop(columns="region_split").reset_index(drop=True) for s, g in t.groupby("region_split")}


def test_compaction_keeps_rows_order_partitions(tmp_path):
    uri = _dataset(tmp_path)
    before_files = data_files(uri)
    before = _per_split(uri)
    dirs_before = sorted({os.path.dirname(f) for f in before_files})
    # stamps use byte-stream-split for floats in 4c; the compacted files must keep the encoding
    rep = compact.compact_dataset(uri, target_file_mb=0.2)
    after_files = data_files(uri)
    assert rep.status == "compacted" and rep.files_before == len(before_files) > len(after_files) == rep.files_after
    assert sorted({os.path.dirname(f) for f in after_files}) == dirs_before
    after = _per_split(uri)
    assert set(after) == set(before)
    for split in before:  # same rows, same order, array columns included
        assert after[split]["task_id"].tolist() == before[split]["task_id"].tolist()
        assert after[split]["image"].map(lambda a: None if a is None else list(a)).tolist() == \
            before[split]["image"].map(lambda a: None if a is None else list(a)).tolist()
    assert rep.rows == sum(len(v) for v in after.values())
    success = json.loads(open(os.path.join(uri, "_SUCCESS")).read())
    assert success["rows"] == rep.rows and success["compaction"]["files_after"] == len(after_files)
    assert shard_done(uri, "00000") and shard_done(uri, "00011")
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]  # no temporary or old folder left
    # idempotent: a second pass finds nothing to merge
    again = compact.compact_dataset(uri, target_file_mb=0.2)
    assert again.status.startswith("skipped") and data_files(uri) == after_files


def test_compaction_splits_to_target_size_and_keeps_encoding(tmp_path):
    import pyarrow as pa

    frame = synth.metrics_frame(n_per=4)
    table = synth.stamps_table(frame).drop_columns(["region_split"])
    uri = str(tmp_path / "flat")
    os.makedirs(uri)
    q = table.num_rows // 4
    for i in range(4):
        part = table.slice(i * q, q)
        pq.write_table(part, os.path.join(uri, f"part-{i:05d}.parquet"), compression="zstd",
                       use_byte_stream_split=["image.list.element", "invvar.list.element"],
                       use_dictionary=["task_id"])
    open(os.path.join(uri, "_SUCCESS"), "w").write("")
    total_mb = sum(os.path.getsize(f) for f in data_files(uri)) / 2**20
    rep = compact.compact_dataset(uri, target_file_mb=total_mb / 2.5)  # 4 files -> 3 of ~40 %
    files = data_files(uri)
    assert len(files) == 3 and rep.rows == 4 * q
    t = pa.concat_tables([pq.read_table(f) for f in files])
    assert t.column("task_id").to_pylist() == table.slice(0, 4 * q).column("task_id").to_pylist()
    md = pq.ParquetFile(files[0]).metadata.row_group(0)
    enc = {md.column(i).path_in_schema: md.column(i).encodings for i in range(md.num_columns)}
    assert "BYTE_STREAM_SPLIT" in enc["image.list.element"]


def test_a_compaction_is_kept_only_while_its_shards_and_settings_hold(tmp_path):
    """Unchanged: skipped; other settings, or shards redone by their stage (even with the same file
    names and count as the compaction's): compacted again, and _compaction.json tells what made it."""
    import shutil

    frame = synth.metrics_frame(n_per=4)
    table = synth.stamps_table(frame)
    uri = str(tmp_path / "stamps")
    synth.write_dataset(table, uri, n_shards=6, keys=table.select(["task_id"]))

    def recorded():
        return json.loads(open(os.path.join(uri, compact.RECORD)).read())["fingerprint"]

    first = compact.compact_dataset(uri, 64.0)  # one file per split
    assert first.status == "compacted" and first.files_after == len(_per_split(uri))
    first_inputs = recorded()["inputs"]
    assert recorded()["settings"] == {"target_file_mb": 64.0, "compression": "zstd"}
    assert recorded()["digest"] == compact.fingerprint(uri, 64.0, "zstd").digest
    mtimes = {f: os.stat(f).st_mtime_ns for f in data_files(uri)}
    again = compact.compact_dataset(uri, 64.0)
    assert again.status == "skipped: up to date"
    assert {f: os.stat(f).st_mtime_ns for f in data_files(uri)} == mtimes

    snappy = compact.compact_dataset(uri, 64.0, compression="snappy")  # same file count, other codec
    assert snappy.status == "compacted" and recorded()["settings"]["compression"] == "snappy"
    assert pq.ParquetFile(data_files(uri)[0]).metadata.row_group(0).column(0).compression == "SNAPPY"

    # the stage redoes every shard (other inputs): one shard, so the same file names as the compaction's
    for f in data_files(uri):
        os.remove(f)
    shutil.rmtree(os.path.join(uri, "_shards"))
    other = synth.stamps_table(frame, seed=6)
    synth.write_dataset(other, uri, n_shards=1, keys=other.select(["task_id", "image"]))
    assert sorted(mtimes) == data_files(uri)
    redone = compact.compact_dataset(uri, 64.0, compression="snappy")
    assert redone.status == "compacted"
    assert recorded()["inputs"] == compact.fingerprint(uri, 64.0, "snappy").inputs != first_inputs
    assert compact.compact_dataset(uri, 64.0, compression="snappy").status == "skipped: up to date"
    want = other.to_pandas()
    for split, rows in _per_split(uri).items():
        assert rows["task_id"].tolist() == want[want["region_split"] == split]["task_id"].tolist()


def test_a_shard_redone_in_a_compacted_dataset_redoes_them_all(tmp_path):
    """Compacted files hold the rows of many shards: redoing one alone would drop the others' rows
    (its name is a compacted file's) or keep its old rows beside the new ones."""
    from dhs.io import shards
    from dhs.io.datasets import write_shard

    frame = synth.metrics_frame(n_per=4)
    table = synth.stamps_table(frame)
    uri = str(tmp_path / "stamps")
    synth.write_dataset(table, uri, n_shards=6, keys=table.select(["task_id"]))
    compact.compact_dataset(uri, 64.0)
    n_rows = read_dataset(uri).num_rows
    fps = {n: shards.Fingerprint(m["fingerprint"]["inputs"], m["fingerprint"]["settings"], m["fingerprint"]["schema"])
           for n, m in shards.markers(uri).items()}
    same = shards.plan([uri], fps, keep_current=True)
    assert same.todo == [] and len(same.kept) == 6
    assert shards.begin([uri], fps, same.todo) == {uri: []} and read_dataset(uri).num_rows == n_rows
    assert shards.plan([uri], fps, True, redo=["00002"]).todo == sorted(fps)

    fps["00000"] = shards.Fingerprint("other rows", fps["00000"].settings, fps["00000"].schema)
    changed = shards.plan([uri], fps, keep_current=True)
    assert sorted(changed.todo) == sorted(fps) and changed.kept == []
    assert any("compacted" in row["key"] for row in changed.changes())
    shards.begin([uri], fps, changed.todo)
    assert data_files(uri) == [] and shards.committed(uri) == [] and not shards.is_compacted(uri)
    edges = [round(i * table.num_rows / 6) for i in range(7)]
    for i, name in enumerate(sorted(fps)):  # the stage then writes every shard again
        write_shard(table.slice(edges[i], edges[i + 1] - edges[i]), uri, name, fingerprint=fps[name])
    assert read_dataset(uri).num_rows == n_rows
    assert sorted(read_dataset(uri).column("task_id").to_pylist()) == sorted(table.column("task_id").to_pylist())


def test_compaction_refuses_an_unfinished_dataset(tmp_path):
    uri = _dataset(tmp_path, n_shards=2)
    os.remove(os.path.join(uri, "_SUCCESS"))
    with pytest.raises(RuntimeError, match="_SUCCESS"):
        compact.compact_dataset(uri, 1.0)
    with pytest.raises(FileNotFoundError, match="nothing to compact"):
        compact.compact_dataset(str(tmp_path / "absent"), 1.0)


def test_stage_4p5_compacts_the_4c_datasets(data_root, ctx):
    from tests.synth4c import write_experiment

    exp = write_experiment(data_root, synth.metrics_frame(n_per=3), stage="4p5",
                           extra=["compact.target_file_mb=64"])
    n_before = len(data_files(exp.stamps)) + len(data_files(exp.metrics))
    rows_before = read_dataset(exp.metrics).num_rows
    summary = stage.run(exp.cfg, ctx)
    assert summary["files_before"] == n_before > summary["files_after"] == 2 * 3  # one file per split
    assert read_dataset(exp.metrics).num_rows == rows_before
    assert sorted(summary["outputs"]) == sorted([exp.stamps, exp.metrics])


@pytest.mark.s3
def test_compaction_on_s3():
    from dhs.io import storage
    from tests.s3_server import configure_storage, moto_server

    with moto_server() as srv:
        srv.make_bucket("bkt")
        configure_storage(srv)
        try:
            frame = synth.metrics_frame(n_per=2)
            uri = synth.write_dataset(synth.metrics_table(frame), "s3://bkt/metrics", n_shards=5)
            before = read_dataset(uri).to_pandas()
            rep = compact.compact_dataset(uri, target_file_mb=64)
            after = read_dataset(uri).to_pandas()
            assert rep.files_after == 3 < rep.files_before
            for s in ("train", "val", "test"):
                assert after[after.region_split == s]["task_id"].tolist() == \
                    before[before.region_split == s]["task_id"].tolist()
            assert "compaction" in json.loads(storage.read_text("s3://bkt/metrics/_SUCCESS"))
            assert not [u for u in storage.walk_files("s3://bkt") if "/." in u]
        finally:
            storage.configure()
