"""A Python callable as a finder: its scores come back as they are; rows it cannot score (NaN)
are flagged and the batch finishes."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from dhs.finders import make_finder
from dhs.finders.base import FinderError
from dhs.finders.python_callable import PythonFinderSettings, StampBatch

SOURCE = '''
import numpy as np

def score(batch, gain=1.0):
    """Blue flux in the centre; NaN for stamps whose centre is masked (maskbits != 0)."""
    g = batch.images[:, batch.bands.index("g")]
    s = gain * g[:, 6:10, 6:10].sum(axis=(1, 2))
    s[batch.maskbits[:, 8, 8] != 0] = np.nan
    return s, {"centre_r": batch.images[:, 1, 8, 8]}

def wrong_length(batch):
    return np.zeros(len(batch) + 1)
'''


@pytest.fixture
def user_file(tmp_path):
    path = tmp_path / "user_finder.py"
    path.write_text(SOURCE)
    return path


def _batch(n=8, size=16):
    rng = np.random.default_rng(3)
    images = rng.normal(0, 1, (n, 3, size, size)).astype(np.float32)
    return images, np.ones_like(images), np.zeros((n, size, size), np.int32)


def test_nan_rows_are_flagged_and_the_others_scored(user_file):
    images, invvar, mask = _batch()
    mask[[1, 4], 8, 8] = 2
    finder = make_finder("python", PythonFinderSettings(target=f"{user_file}:score", kwargs={"gain": 2.0}))
    res = finder(images, invvar, mask, bands="grz", pixscale=0.262)
    want = 2.0 * images[:, 0, 6:10, 6:10].sum(axis=(1, 2), dtype=np.float64)
    assert list(np.flatnonzero(~res.ok)) == [1, 4]
    assert set(res.reason[[1, 4]]) == {"nan_score"} and set(np.delete(res.reason, [1, 4])) == {""}
    np.testing.assert_allclose(np.delete(res.scores, [1, 4]), np.delete(want, [1, 4]), rtol=1e-5)
    np.testing.assert_array_equal(res.features["centre_r"], images[:, 1, 8, 8])
    assert finder.checksum == hashlib.sha256(user_file.read_bytes()).hexdigest()


def test_importable_modules_work_and_bad_targets_say_what_to_fix(user_file, monkeypatch):
    monkeypatch.syspath_prepend(str(user_file.parent))
    images, invvar, mask = _batch()
    res = make_finder("python", PythonFinderSettings(target="user_finder:score"))(
        images, invvar, mask, bands="grz", pixscale=0.262)
    assert res.ok.all()
    with pytest.raises(FinderError, match="one score per stamp"):
        make_finder("python", PythonFinderSettings(target="user_finder:wrong_length"))(
            images, invvar, mask, bands="grz", pixscale=0.262)
    with pytest.raises(FinderError, match="cannot import"):
        make_finder("python", PythonFinderSettings(target="no_such_module_xyz:score")).checksum
    with pytest.raises(FinderError, match="no callable"):
        make_finder("python", PythonFinderSettings(target="user_finder:absent")).checksum
    with pytest.raises(FinderError, match="module:function"):
        PythonFinderSettings(target="user_finder.score")


def test_a_python_finder_receives_pixels_and_nothing_else():
    import dataclasses

    assert [f.name for f in dataclasses.fields(StampBatch)] == ["images", "invvar", "maskbits", "bands",
                                                                 "pixscale"]
