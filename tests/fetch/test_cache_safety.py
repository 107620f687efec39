"""Stage 4b writes a cache alone (a lock), never counts a brick cached from another survey URL as
complete, and removes the temporary files of killed runs from every brick."""

from __future__ import annotations

import json
import os
import time

import pytest

import dhs.config.schema  # noqa: F401  (registers the config schemas)
from dhs.context import make_context
from dhs.io import locks
from dhs.io.locks import DatasetLockedError
from dhs.stages import cache as stage
from dhs.stages import layout
from dhs.survey.files import brick_files, coadd_relpath
from tests.fetch.fixtures import write_brick, write_bricks_manifest
from tests.helpers import compose_config
from tests.killed import held_lock
from tests.servers import http_server

BRICKS = ["0100p010", "0101p010"]
N_FILES = 10  # image, invvar x g r z; maskbits; psfsize x g r z


@pytest.fixture(scope="module")
def survey(tmp_path_factory):
    coadd = tmp_path_factory.mktemp("survey") / "coadd"
    for b in BRICKS:
        write_brick(coadd, b, size=100)
    return coadd


def _cfg(tmp_path, url):
    cfg = compose_config(["stage=4b", f"paths.data_root={tmp_path}/data", f"survey.base_url={url}",
                          "cache.retries=2", "cache.backoff_s=0.01", "cache.timeout_s=5", "cache.threads=4"])
    write_bricks_manifest(layout.bricks_manifest_dir(cfg), BRICKS)
    return cfg


def _gets(srv):
    return [r for r in srv.requests() if r[0] == "GET"]


def _assert_cache_is_the_survey(cfg, coadd, url):
    root = layout.cache_root(cfg)
    for b in BRICKS:
        rec = json.loads(open(os.path.join(root, b, "_SUCCESS")).read())
        assert rec["source"] == url
        for kind, band, name in brick_files(b, list(cfg.cache.kinds), list(cfg.bands)):
            assert open(os.path.join(root, b, name), "rb").read() == \
                open(os.path.join(coadd, coadd_relpath(b, kind, band)), "rb").read()


def test_a_live_writer_makes_a_second_4b_refuse_and_a_dead_ones_lock_is_taken_over(tmp_path, survey):
    with http_server(survey) as srv:
        cfg = _cfg(tmp_path, srv.url)
        lock = locks.lock_uri(layout.cache_root(cfg))
        with held_lock(layout.cache_root(cfg), "dhs stage=4b") as pid:
            with pytest.raises(DatasetLockedError, match=f"pid {pid}, started 2026-01-01T00:00:00Z"):
                stage.run(cfg, make_context())
            assert _gets(srv) == [] and not os.path.exists(os.path.join(layout.cache_root(cfg), BRICKS[0]))
        out = stage.run(cfg, make_context())  # the owner is dead: its lock is stale
        assert out["bricks_fetched"] == len(BRICKS) and not os.path.exists(lock)
    _assert_cache_is_the_survey(cfg, survey, srv.url)


def test_a_brick_cached_from_another_base_url_is_fetched_again(tmp_path, survey):
    with http_server(survey) as first:
        cfg = _cfg(tmp_path, first.url)
        stage.run(cfg, make_context())
    with http_server(survey) as second:  # the same files at another URL (port)
        assert second.url != first.url
        cfg2 = _cfg(tmp_path, second.url)
        out = stage.run(cfg2, make_context())
        assert len(_gets(second)) == len(BRICKS) * N_FILES  # every file again, none adopted
        assert out["bricks_other_source"] == len(BRICKS) and out["bricks_fetched"] == len(BRICKS)
        assert out["bricks_skipped_complete"] == 0 and out["files_adopted"] == 0
        assert out["other_sources"] == [first.url]
        _assert_cache_is_the_survey(cfg2, survey, second.url)
        second.reset()
        again = stage.run(cfg2, make_context())
        assert _gets(second) == [] and again["bricks_skipped_complete"] == len(BRICKS)
        assert again["bricks_other_source"] == 0


def test_temporary_files_of_killed_runs_are_removed_from_complete_bricks_too(tmp_path, survey):
    with http_server(survey) as srv:
        cfg = _cfg(tmp_path, srv.url)
        stage.run(cfg, make_context())
        root = layout.cache_root(cfg)
        name = brick_files(BRICKS[0], list(cfg.cache.kinds), list(cfg.bands))[0][2]
        stale = [os.path.join(root, BRICKS[0], f".dhs-tmp-0123456789ab-{name}"),
                 os.path.join(root, BRICKS[1], ".tmp-0123456789ab-_SUCCESS"),
                 os.path.join(root, ".tmp-0123456789ab-_blacklist.csv")]
        for p in stale:
            with open(p, "wb") as f:
                f.write(b"partial")
            os.utime(p, (time.time() - 60, time.time() - 60))
        srv.reset()
        out = stage.run(cfg, make_context())
        assert _gets(srv) == [] and out["bricks_skipped_complete"] == len(BRICKS)
        assert out["temps_removed"] == len(stale)
        assert not [p for p in stale if os.path.exists(p)]
        assert not [f for d, _, fs in os.walk(root) for f in fs if f.startswith(".")]
