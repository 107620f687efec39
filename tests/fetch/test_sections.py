"""Section reads (dhs.fetch.remote) from a local path, file://, HTTP Range and the cache."""

from __future__ import annotations

import os

import numpy as np
import pytest
from astropy.io import fits

import dhs.config.schema  # noqa: F401  (registers the config schemas)
from dhs.fetch import rangefile
from dhs.fetch import remote
from dhs.fetch.retry import RetryPolicy
from dhs.survey.files import coadd_relpath
from tests.fetch.fixtures import brick_hdus, write_brick
from dhs.stages.settings import survey_access
from tests.helpers import compose_config
from tests.servers import Faults, http_server

BRICK = "1126p222"
SIZE = 1200  # 12 x 12 tiles of 100 x 100 pixels, RICE like DR10 images
WINDOWS = [(0, 64, 0, 64), (530, 594, 470, 534), (1136, 1200, 1136, 1200), (95, 159, 195, 259)]


@pytest.fixture(scope="module")
def big_survey(tmp_path_factory):
    coadd = tmp_path_factory.mktemp("big") / "coadd"
    write_brick(coadd, BRICK, size=SIZE, kinds=("image", "maskbits"), bands=("r",))
    path = coadd / coadd_relpath(BRICK, "image", "r")
    full = fits.getdata(path, 1)
    return coadd, path, full


def _cfg(tmp_path, base, *extra):
    return survey_access(compose_config(["stage=4c", f"paths.data_root={tmp_path}",
                                         f"survey.base_url={base}",
                                         "cache.mode=none", "cache.backoff_s=0.01", "cache.timeout_s=2",
                                         *extra]))


def _check_windows(cfg, full, size):
    remote.close_all()
    before = remote.io_counters()["bytes"]
    for y0, y1, x0, x1 in WINDOWS[:1]:
        got = remote.read_section(cfg, BRICK, "image", "r", y0, y1, x0, x1)
        np.testing.assert_array_equal(got, full[y0:y1, x0:x1])
    one_stamp = remote.io_counters()["bytes"] - before
    for y0, y1, x0, x1 in WINDOWS[1:]:
        got = remote.read_section(cfg, BRICK, "image", "r", y0, y1, x0, x1)
        np.testing.assert_array_equal(got, full[y0:y1, x0:x1])
    remote.close_all()
    assert 0 < one_stamp * 20 < size, (one_stamp, size)
    return one_stamp


@pytest.mark.parametrize("scheme", ["path", "file"])
def test_local_sections_equal_full_read(tmp_path, big_survey, scheme):
    coadd, path, full = big_survey
    base = str(coadd) if scheme == "path" else f"file://{coadd}"
    _check_windows(_cfg(tmp_path, base), full, os.path.getsize(path))


def test_http_range_sections_equal_full_read_despite_faults(tmp_path, big_survey):
    coadd, path, full = big_survey
    with http_server(coadd, Faults(p_503=0.3, p_drop=0.1, p_truncate=0.1)) as srv:
        cfg = _cfg(tmp_path, srv.url)
        one = _check_windows(cfg, full, os.path.getsize(path))
        reqs = srv.requests()
        assert any(r[2] == 206 for r in reqs)
        assert not any(r[0] == "GET" and r[2] == 200 for r in reqs)  # never the whole file
        assert {"503", "drop", "truncate"} & {r[4] for r in reqs}
    assert one < 200_000


def test_maskbits_extension_and_lru(tmp_path, big_survey):
    coadd, _path, _full = big_survey
    cfg = _cfg(tmp_path, str(coadd), "cache.lru_files=1")
    mb = remote.open_survey_file(cfg, BRICK, "maskbits")
    want = brick_hdus(BRICK, "maskbits", None, SIZE)
    np.testing.assert_array_equal(mb.section(10, 74, 20, 84), want[1].data[10:74, 20:84])
    np.testing.assert_array_equal(mb.section(10, 74, 20, 84, ext="WISEM1"),
                                  want["WISEM1"].data[10:74, 20:84])
    assert remote.open_survey_file(cfg, BRICK, "maskbits") is mb  # kept open
    img = remote.open_survey_file(cfg, BRICK, "image", "r")
    assert remote.open_survey_file(cfg, BRICK, "image", "r") is img
    assert remote.open_survey_file(cfg, BRICK, "maskbits") is not mb  # evicted (lru_files=1)
    remote.close_all()


def test_missing_file_names_the_fix(tmp_path, big_survey):
    coadd, _path, _full = big_survey
    cached = survey_access(compose_config(["stage=4c", f"paths.data_root={tmp_path}"]))
    with pytest.raises(FileNotFoundError, match="not in the coadd cache.*stage=4b"):
        remote.open_survey_file(cached, BRICK, "image", "r")
    with pytest.raises(FileNotFoundError, match="no such file"):
        remote.open_survey_file(_cfg(tmp_path, str(coadd)), BRICK, "image", "g")
    with http_server(coadd) as srv:
        with pytest.raises(FileNotFoundError, match="no such file"):
            remote.open_survey_file(_cfg(tmp_path, srv.url), BRICK, "image", "g")


def test_range_file_reads_like_a_file(tmp_path, big_survey):
    _coadd, path, _full = big_survey
    data = open(path, "rb").read()
    with http_server(os.path.dirname(path)) as srv:
        rf = rangefile.open_range_file(f"{srv.url}/{os.path.basename(path)}",
                                       policy=RetryPolicy(2, 0.01), block_size=4096)
        for off, n in [(0, 80), (10, 5000), (len(data) - 100, 500), (4095, 2), (123456, 70000)]:
            rf.seek(off)
            assert rf.read(n) == data[off:off + n]
        rf.seek(-10, 2)
        assert rf.read() == data[-10:]
        assert rf.requests <= 6
        rf.close()
