"""Stage 4b and section reads against a moto S3 server: S3 as cache target and as survey source."""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np
import pytest
from astropy.io import fits

import dhs.config.schema  # noqa: F401  (registers the config schemas)
from dhs.stages import layout
from dhs.context import make_context
from dhs.io import storage
from dhs.fetch import blacklist
from dhs.fetch import remote
from dhs.stages import cache as stage
from dhs.stages.settings import survey_access
from dhs.survey.files import brick_files, coadd_relpath
from tests.fetch.fixtures import write_brick, write_bricks_manifest
from tests.helpers import compose_config
from tests.s3_server import configure_storage, moto_server, storage_overrides
from tests.servers import http_server

pytestmark = pytest.mark.s3

GOOD = ["0100p010", "0101p010"]
MISSING = "0200p020"
KINDS = ("image", "maskbits")


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    coadd = tmp_path_factory.mktemp("s3survey") / "coadd"
    for b in GOOD:
        write_brick(coadd, b, size=300, kinds=KINDS)
    with moto_server() as srv:
        srv.make_bucket("src")
        srv.make_bucket("cache")
        client = srv.client("s3")
        for d, _, fs in os.walk(coadd):
            for f in fs:
                rel = os.path.relpath(os.path.join(d, f), coadd)
                client.upload_file(os.path.join(d, f), "src", f"coadd/{rel}")
        yield srv, coadd
    storage.configure()


@pytest.fixture(autouse=True)
def _aws_env(monkeypatch, s3):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    configure_storage(s3[0])


def _cfg(tmp_path, srv, base, cache_root, *extra):
    cfg = compose_config(["stage=4b", f"paths.data_root={tmp_path}/data",
                          f"paths.cache_root={cache_root}", f"survey.base_url={base}",
                          "cache.kinds=[image,maskbits]", "cache.backoff_s=0.01",
                          "cache.timeout_s=5", *storage_overrides(srv), *extra])
    write_bricks_manifest(layout.bricks_manifest_dir(cfg), GOOD + [MISSING])
    return cfg


def _assert_cached(cache_root, coadd, cfg):
    for b in GOOD:
        rec = json.loads(storage.read_text(storage.join(cache_root, b, "_SUCCESS")))
        for kind, band, name in brick_files(b, KINDS, list(cfg.bands)):
            want = open(os.path.join(coadd, coadd_relpath(b, kind, band)), "rb").read()
            assert storage.read_bytes(storage.join(cache_root, b, name)) == want
            assert rec["files"][name]["sha256"] == hashlib.sha256(want).hexdigest()


@pytest.mark.parametrize("source", ["s3", "http"])
def test_s3_cache_target(tmp_path, s3, source):
    srv, coadd = s3
    root = f"s3://cache/{source}/coadd_cache"
    if source == "http":
        with http_server(coadd) as web:
            cfg = _cfg(tmp_path, srv, web.url, root)
            out = stage.run(cfg, make_context())
    else:
        cfg = _cfg(tmp_path, srv, "s3://src/coadd", root)
        out = stage.run(cfg, make_context())
    assert out["bricks_fetched"] == 2 and out["bricks_blacklisted"] == 1
    assert out["files_fetched"] == 2 * 4
    _assert_cached(root, coadd, cfg)
    assert blacklist.bricks(layout.blacklist_path(cfg)) == {MISSING}
    assert storage.exists(storage.join(root, "_dhs_record.json"))
    assert not [f for f in storage.walk_files(root) if "/." in f]
    again = stage.run(cfg, make_context())
    assert again["bricks_skipped_complete"] == 2 and again["bricks_skipped_blacklisted"] == 1
    assert again["files_fetched"] == 0 and again["bytes_transferred"] == 0


def test_s3_source_to_local_cache_and_sections(tmp_path, s3):
    srv, coadd = s3
    cfg = _cfg(tmp_path, srv, "s3://src/coadd", str(tmp_path / "cache"))
    out = stage.run(cfg, make_context())
    assert out["bricks_fetched"] == 2 and blacklist.bricks(layout.blacklist_path(cfg)) == {MISSING}
    _assert_cached(str(tmp_path / "cache"), coadd, cfg)

    full = fits.getdata(os.path.join(coadd, coadd_relpath(GOOD[0], "image", "r")), 1)
    size = os.path.getsize(os.path.join(coadd, coadd_relpath(GOOD[0], "image", "r")))
    for mode, extra in [("none", []), ("brick", ["paths.cache_root=s3://cache/s3/coadd_cache"])]:
        c = compose_config(["stage=4c", f"paths.data_root={tmp_path}/data",
                            "survey.base_url=s3://src/coadd", f"cache.mode={mode}",
                            "cache.range_block_bytes=8192", *storage_overrides(srv), *extra])
        if mode == "brick":  # fill the S3 cache first
            stage.run(_cfg(tmp_path, srv, "s3://src/coadd", "s3://cache/s3/coadd_cache"),
                      make_context())
        remote.close_all()
        before = remote.io_counters()["bytes"]
        got = remote.read_section(survey_access(c), GOOD[0], "image", "r", 110, 174, 120, 184)
        np.testing.assert_array_equal(got, full[110:174, 120:184])
        moved = remote.io_counters()["bytes"] - before
        assert 0 < moved < size / 2, (mode, moved, size)  # one of 9 tiles
        remote.close_all()
