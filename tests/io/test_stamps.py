"""dhs.io.stamps: stamp rows (Arrow, pandas, dataset path) -> NumPy arrays."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from dhs.io.stamps import read_stamps, to_numpy
from tests import synth4c as synth


@pytest.fixture
def stamps(tmp_path):
    frame = synth.metrics_frame(n_per=2, stamp_size=8)
    table = synth.stamps_table(frame, size=8)
    uri = synth.write_dataset(table, str(tmp_path / "stamps"), n_shards=2)
    return frame, table, uri


def test_to_numpy_shapes_values_and_failed_rows(stamps):
    frame, table, _ = stamps
    img = to_numpy(table)
    assert img.shape == (len(frame), 3, 8, 8) and img.dtype == np.float32
    i = int(np.flatnonzero(frame["cutout_ok"].to_numpy() == 1)[0])
    flat = np.asarray(table.column("image")[i].as_py(), dtype=np.float32)
    np.testing.assert_array_equal(img[i], flat.reshape(3, 8, 8))  # band-major (bands, y, x)
    failed = frame["cutout_ok"].to_numpy() == 0
    assert failed.any() and np.isnan(img[failed]).all() and np.isfinite(img[~failed]).all()
    mb = to_numpy(table, column="maskbits")
    assert mb.shape == (len(frame), 8, 8) and mb.dtype == np.int32 and (mb[failed] == 0).all()


def test_pandas_rows_and_dataset_path(stamps):
    frame, table, uri = stamps
    ids = frame["task_id"].iloc[[0, 3]].tolist()
    sub = read_stamps(uri, task_ids=ids)
    assert sorted(sub.column("task_id").to_pylist()) == sorted(ids)
    df = sub.to_pandas()
    np.testing.assert_array_equal(to_numpy(df, "invvar"), to_numpy(sub, "invvar"))
    one = to_numpy(df.iloc[0])
    assert one.shape == (1, 3, 8, 8)
    assert to_numpy(uri).shape == (len(frame), 3, 8, 8)
    assert read_stamps(uri, limit=5).num_rows == 5


def test_wrong_length_names_the_task():
    t = pa.table({"task_id": ["a", "b"], "bandset": ["grz", "grz"], "stamp_size": [4, 4],
                  "image": pa.array([[0.0] * 48, [0.0] * 47], pa.list_(pa.float32()))})
    with pytest.raises(ValueError, match="stamp b: column 'image' has 47 values, expected 48"):
        to_numpy(t)
    mixed = pa.table({"task_id": ["a", "b"], "bandset": ["grz", "r"], "stamp_size": [4, 4],
                      "image": pa.array([[0.0] * 48, [0.0] * 16], pa.list_(pa.float32()))})
    with pytest.raises(ValueError, match="different bandset"):
        to_numpy(mixed)
    assert to_numpy(pd.DataFrame({"image": [[1.0] * 16]}), bands=1, size=4).shape == (1, 1, 4, 4)


def test_iter_batches_streams_every_good_stamp_once_with_its_label(stamps):
    from dhs.io.stamps import iter_batches

    frame, table, uri = stamps
    ok = table.column("cutout_ok").to_numpy() == 1
    want = dict(zip(np.asarray(table.column("task_id").to_pylist())[ok], to_numpy(table)[ok]))
    label = dict(zip(frame["task_id"], frame["is_control"]))
    batches = list(iter_batches(uri, batch_size=7, columns=("image", "maskbits", "task_id")))
    assert [len(b[1]) for b in batches[:-1]] == [7] * (len(batches) - 1) and 0 < len(batches[-1][1]) <= 7
    ids = np.concatenate([b[0]["task_id"] for b in batches])
    assert sorted(ids) == sorted(want) and len(ids) == ok.sum()  # failed cutouts left out
    for arrays, labels in batches:
        assert arrays["image"].shape[1:] == (3, 8, 8) and arrays["image"].dtype == np.float32
        assert arrays["maskbits"].shape[1:] == (8, 8) and labels.dtype == np.int64
        for tid, img, lab in zip(arrays["task_id"], arrays["image"], labels):
            np.testing.assert_array_equal(img, want[tid])
            assert lab == label[tid]
    order = [np.concatenate([b[0]["task_id"] for b in iter_batches(uri, 5, ("task_id",), shuffle=True, seed=s)])
             for s in (1, 1, 2)]
    assert list(order[0]) == list(order[1]) != list(order[2]) and sorted(order[0]) == sorted(want)
    assert list(ids) != list(order[0])
