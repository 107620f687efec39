"""Stage 4b against a real local HTTP server that injects faults."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import dhs.config.schema  # noqa: F401  (registers the config schemas)
from dhs.stages import layout
from dhs.context import make_context
from dhs.errors import RunFailedError
from dhs.fetch import blacklist
from dhs.stages import cache as stage
from dhs.survey.files import brick_files, coadd_relpath
from tests.fetch.fixtures import write_brick, write_bricks_manifest
from tests.helpers import compose_config
from tests.servers import Faults, http_server

GOOD = ["0100p010", "0101p010", "0102p010", "0103p010"]
MISSING_ALL = "0200p020"      # the whole brick answers 404
MISSING_ONE = "0201p020"      # only its maskbits file answers 404
ALL = GOOD + [MISSING_ALL, MISSING_ONE]
N_FILES = 10                  # image, invvar x g r z; maskbits; psfsize x g r z


@pytest.fixture(scope="module")
def survey(tmp_path_factory):
    root = tmp_path_factory.mktemp("survey")
    coadd = root / "coadd"
    for b in ALL:
        write_brick(coadd, b, size=200)
    return coadd


def _cfg(tmp_path, url, *extra):
    cfg = compose_config(["stage=4b", f"paths.data_root={tmp_path}/data",
                          f"survey.base_url={url}", "cache.retries=4", "cache.backoff_s=0.01",
                          "cache.timeout_s=1.0", "cache.threads=8", *extra])
    write_bricks_manifest(layout.bricks_manifest_dir(cfg), ALL)
    return cfg


def _missing_faults(**kw):
    return Faults(missing=(MISSING_ALL, f"{MISSING_ONE}-maskbits"), **kw)


def _assert_cache_identical(cfg, coadd, bricks):
    root = layout.cache_root(cfg)
    for b in bricks:
        rec = json.loads(open(os.path.join(root, b, "_SUCCESS")).read())
        assert sorted(rec["files"]) == sorted(n for _k, _bd, n in brick_files(b, stage_kinds(cfg),
                                                                           list(cfg.bands)))
        for kind, band, name in brick_files(b, stage_kinds(cfg), list(cfg.bands)):
            got = open(os.path.join(root, b, name), "rb").read()
            want = open(os.path.join(coadd, coadd_relpath(b, kind, band)), "rb").read()
            assert got == want, name
            assert rec["files"][name]["size"] == len(want)
            import hashlib

            assert rec["files"][name]["sha256"] == hashlib.sha256(want).hexdigest()


def stage_kinds(cfg):
    return list(cfg.cache.kinds)


def _hidden_files(root):
    return [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs if f.startswith(".")]


def test_faults_blacklist_and_rerun_transfers_nothing(tmp_path, survey):
    faults = _missing_faults(p_503=0.3, p_drop=0.1, p_truncate=0.1, p_slow=0.1, p_stall=0.08)
    with http_server(survey, faults) as srv:
        cfg = _cfg(tmp_path, srv.url)
        out = stage.run(cfg, make_context(tmp_path / "run"))
        log = srv.requests()
        faults_seen = {r[4] for r in log}
        assert {"503", "drop", "truncate", "slow"} <= faults_seen
        assert any(f.startswith("stall") for f in faults_seen)  # client timed out, retried
        assert out["bricks_fetched"] == len(GOOD)
        assert out["bricks_blacklisted"] == 2 and out["bricks_failed"] == 0
        assert out["files_fetched"] >= len(GOOD) * N_FILES
        assert out["retries"] > 0
        _assert_cache_identical(cfg, survey, GOOD)
        assert not _hidden_files(layout.cache_root(cfg))
        assert not os.path.exists(os.path.join(layout.cache_root(cfg), MISSING_ALL, "_SUCCESS"))
        assert not os.path.exists(os.path.join(layout.cache_root(cfg), MISSING_ONE, "_SUCCESS"))
        assert blacklist.bricks(layout.blacklist_path(cfg)) == {MISSING_ALL, MISSING_ONE}
        rows = list(csv.DictReader(open(layout.blacklist_path(cfg))))
        assert {r["file"] for r in rows if r["brick"] == MISSING_ONE} == \
            {f"legacysurvey-{MISSING_ONE}-maskbits.fits.fz"}
        assert all(r["status"] == "404" and r["time"] for r in rows)
        assert os.path.exists(os.path.join(layout.cache_root(cfg), "_dhs_record.json"))

        srv.reset()
        again = stage.run(cfg, make_context(tmp_path / "run2"))
        assert srv.requests() == []  # nothing asked of the server
        assert again["bricks_skipped_complete"] == len(GOOD)
        assert again["bricks_skipped_blacklisted"] == 2
        assert again["files_fetched"] == 0 and again["bytes_transferred"] == 0

        srv.reset(_missing_faults())
        forced = stage.run(compose_config([*_overrides(cfg), "force=true"]), make_context())
        gets = [r for r in srv.requests() if r[0] == "GET" and r[2] == 200
                and any(b in r[1] for b in GOOD)]
        assert len(gets) == len(GOOD) * N_FILES  # everything fetched again, once
        assert forced["bricks_fetched"] == len(GOOD) and forced["bricks_blacklisted"] == 2
        assert blacklist.bricks(layout.blacklist_path(cfg)) == {MISSING_ALL, MISSING_ONE}


def _overrides(cfg):
    return ["stage=4b", f"paths.data_root={cfg.paths.data_root}",
            f"survey.base_url={cfg.survey.base_url}", "cache.retries=4", "cache.backoff_s=0.01",
            "cache.timeout_s=1.0", "cache.threads=8"]


def test_wrong_file_fails_without_retry_and_run_goes_on(tmp_path):
    coadd = tmp_path / "survey" / "coadd"
    write_brick(coadd, "0300p030", kinds=("image",), bands=("r",))
    write_brick(coadd, "0301p030", kinds=("image",), bands=("r",), header_brick="9999p999")
    with http_server(coadd) as srv:
        cfg = _cfg(tmp_path, srv.url, "cache.kinds=[image]", "bands=[r]")
        write_bricks_manifest(layout.bricks_manifest_dir(cfg), ["0300p030", "0301p030"])
        with pytest.raises(RunFailedError, match="1 of 2 brick.s. failed after the retries") as failed:
            stage.run(cfg, make_context())
        out = failed.value.summary
        assert out["bricks_fetched"] == 1 and out["bricks_failed"] == 1
        assert out["failure_reasons"] == {"WrongFileError": 1}
        assert "BRICKNAM='9999p999'" in out["failures"][0][2]
        bad = [r for r in srv.requests() if "0301p030" in r[1]]
        assert len(bad) == 1  # not retried
        root = layout.cache_root(cfg)
        assert os.listdir(os.path.join(root, "0301p030")) == []
        assert blacklist.bricks(layout.blacklist_path(cfg)) == set()


def test_kind_added_later_fetches_only_new_files(tmp_path, survey):
    with http_server(survey, _missing_faults()) as srv:
        cfg = _cfg(tmp_path, srv.url, "cache.kinds=[image,invvar,maskbits]")
        first = stage.run(cfg, make_context())
        assert first["bricks_fetched"] == len(GOOD) and first["files_fetched"] >= len(GOOD) * 7
        srv.reset()
        cfg2 = compose_config(_overrides(cfg))  # default kinds: psfsize added
        out = stage.run(cfg2, make_context())
        gets = [r for r in srv.requests() if r[0] == "GET"]
        assert gets and all("-psfsize-" in r[1] for r in gets)
        assert out["files_fetched"] == len(GOOD) * 3 and out["bricks_fetched"] == len(GOOD)
        _assert_cache_identical(cfg2, survey, GOOD)


KILL_SCRIPT = textwrap.dedent("""
    import sys
    from dhs.fetch.coadd_cache import CacheSettings, fill_cache
    from dhs.fetch.download import FetchSettings
    from dhs.fetch.retry import RetryPolicy
    url, cache, bricks = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
    s = CacheSettings(url, cache, ("image", "invvar", "maskbits", "psfsize"), ("g", "r", "z"),
                      threads=2, fetch=FetchSettings(RetryPolicy(4, 0.01), timeout_s=5.0, pool=2))
    fill_cache(s, bricks)
""")


def test_killed_run_resumes_without_partial_files(tmp_path, survey):
    cache = tmp_path / "cache"
    # every request is slow so the kill lands in the middle of the run
    with http_server(survey, Faults(p_slow=1.0, slow_s=0.2, faulty_attempts=10**6)) as srv:
        proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, srv.url, str(cache),
                                 ",".join(GOOD)], cwd=str(tmp_path))
        deadline = time.time() + 30
        committed = []
        while time.time() < deadline and len(committed) < 6:
            committed = [f for d, _, fs in os.walk(cache) for f in fs if f.startswith("legacy")]
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert 6 <= len(committed) < len(GOOD) * N_FILES
    # what is visible after the kill is complete and correct
    for d, _, fs in os.walk(cache):
        for f in fs:
            if f.startswith("legacy"):
                b = os.path.basename(d)
                assert open(os.path.join(d, f), "rb").read() == \
                    open(os.path.join(survey, b[:3], b, f), "rb").read()
    with http_server(survey) as srv:
        cfg = compose_config(["stage=4b", f"paths.data_root={tmp_path}/data",
                              f"paths.cache_root={cache}", f"survey.base_url={srv.url}",
                              "cache.backoff_s=0.01", "cache.timeout_s=5"])
        write_bricks_manifest(layout.bricks_manifest_dir(cfg), GOOD)
        n_before = len([f for d, _, fs in os.walk(cache) for f in fs if f.startswith("legacy")])
        out = stage.run(cfg, make_context())
        gets = [r for r in srv.requests() if r[0] == "GET"]
        assert len(gets) == len(GOOD) * N_FILES - n_before  # committed files are not fetched again
        assert out["files_adopted"] == n_before
        assert out["bricks_fetched"] == len(GOOD)
    _assert_cache_identical(cfg, survey, GOOD)
    assert not _hidden_files(cache)


def test_cache_mode_none_probes_and_blacklists(tmp_path, survey):
    with http_server(survey, _missing_faults()) as srv:
        cfg = _cfg(tmp_path, srv.url, "cache.mode=none")
        out = stage.run(cfg, make_context())
        assert out["bricks_blacklisted"] == 1  # only the first file of each brick is asked
        assert blacklist.bricks(layout.blacklist_path(cfg)) == {MISSING_ALL}
        assert all(r[0] == "HEAD" for r in srv.requests())
        assert sorted(os.listdir(layout.cache_root(cfg))) == ["_blacklist.csv", "_dhs_record.json"]


def test_blacklist_file_with_bad_header_names_the_file(tmp_path):
    cfg = compose_config(["stage=4b", f"paths.data_root={tmp_path}"])
    path = layout.blacklist_path(cfg)
    assert blacklist.bricks(layout.blacklist_path(cfg)) == set()
    os.makedirs(os.path.dirname(path))
    open(path, "w").write("brickname,why\n0001m002,x\n")
    with pytest.raises(ValueError, match="_blacklist.csv.*lacks column"):
        blacklist.bricks(layout.blacklist_path(cfg))


def test_exception_midway_then_rerun_completes(tmp_path, survey):
    from dhs.fetch.coadd_cache import fill_cache
    from dhs.stages.settings import cache_settings

    class Boom(RuntimeError):
        pass

    seen = []

    def explode(brick, name):
        seen.append(name)
        if len(seen) == 5:
            raise Boom("stop after 5 files")

    with http_server(survey, _missing_faults(p_slow=0.5, slow_s=0.05)) as srv:
        cfg = _cfg(tmp_path, srv.url, "cache.threads=2")
        s = cache_settings(cfg)
        with pytest.raises(Boom):
            fill_cache(s, ALL, on_file=explode)
        root = layout.cache_root(cfg)
        visible = [f for d, _, fs in os.walk(root) for f in fs if f.startswith("legacy")]
        assert 5 <= len(visible) < len(GOOD) * N_FILES
        rep = fill_cache(s, ALL)
        assert rep.bricks_fetched == len(GOOD) and rep.files_adopted >= 5
    _assert_cache_identical(cfg, survey, GOOD)
    assert not _hidden_files(root)


def test_a_cached_file_deleted_or_resized_since_is_fetched_again(tmp_path, survey):
    with http_server(survey, _missing_faults()) as srv:
        cfg = _cfg(tmp_path, srv.url)
        stage.run(cfg, make_context())
        root = layout.cache_root(cfg)
        gone, cut = (os.path.join(root, GOOD[0], n) for n in sorted(
            json.loads(open(os.path.join(root, GOOD[0], "_SUCCESS")).read())["files"])[:2])
        os.remove(gone)
        with open(cut, "r+b") as f:
            f.truncate(1000)
        srv.reset()
        out = stage.run(compose_config(_overrides(cfg)), make_context())
        gets = sorted(r[1].rsplit("/", 1)[1] for r in srv.requests() if r[0] == "GET")
        assert gets == sorted([os.path.basename(gone), os.path.basename(cut)])
        assert out["bricks_fetched"] == 1
        _assert_cache_identical(cfg, survey, GOOD)
