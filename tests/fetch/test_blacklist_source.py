"""Blacklist entries record where their 404 came from; a survey root that has none of the bricks
stops the run before anything is blacklisted; entries found at another root are not applied."""

from __future__ import annotations

import csv
import os
import re

import pytest

from dhs.stages import layout
from dhs.errors import ConfigError
from dhs.fetch import blacklist
from tests.fetch.fixtures import write_bricks_manifest
from tests.fetch.test_cache_http import ALL, MISSING_ALL, MISSING_ONE, _missing_faults, survey  # noqa: F401
from tests.helpers import run_stage
from tests.servers import http_server


def _over(tmp_path, url, *extra):
    from tests.helpers import compose_config

    over = ["stage=4b", f"paths.data_root={tmp_path}/data", f"survey.base_url={url}", "cache.retries=1",
            "cache.backoff_s=0", "cache.timeout_s=2", "cache.kinds=[image]", "bands=[r]", *extra]
    write_bricks_manifest(layout.bricks_manifest_dir(compose_config(over)), ALL)
    return over


def _rows(over):
    from tests.helpers import compose_config

    path = layout.blacklist_path(compose_config(over))
    return list(csv.DictReader(open(path))) if os.path.exists(path) else []


@pytest.mark.parametrize("mode", ["brick", "none"])
def test_a_wrong_base_url_stops_before_blacklisting_anything(tmp_path, survey, mode):  # noqa: F811
    with http_server(survey, _missing_faults()) as srv:
        wrong = _over(tmp_path, srv.url + "/cooad", f"cache.mode={mode}")
        with pytest.raises(ConfigError, match=r"every one of the 6 brick\(s\) asked is missing there.*"
                                              r"nothing was put on the blacklist"):
            run_stage(wrong)
        assert _rows(wrong) == []
        right = _over(tmp_path, srv.url, f"cache.mode={mode}")
        run_stage(right)
        rows = _rows(right)
    assert {r["brick"] for r in rows} == {MISSING_ALL}  # one file (image-r) per brick is asked
    assert all(r["base_url"] == srv.url and r["status"] == "404" for r in rows)
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", r["time"]) for r in rows)


def test_entries_found_at_another_base_url_are_not_applied(tmp_path, survey, capsys):  # noqa: F811
    with http_server(survey, _missing_faults()) as first:
        over = _over(tmp_path, first.url)
        run_stage(over)
        assert blacklist.bricks(layout.blacklist_path(_compose(over))) == {MISSING_ALL}
    with http_server(survey) as second:  # another server that has every brick
        capsys.readouterr()
        again = _over(tmp_path, second.url)
        out = run_stage(again)
        printed = " ".join(capsys.readouterr().out.split())
        assert f"1 brick(s) found missing at {first.url}, not at survey.base_url={second.url}: not applied" \
            in printed
        assert out["bricks_skipped_blacklisted"] == 0  # asked again; the 5 cached from the first URL too
        assert out["bricks_fetched"] == len(ALL) and out["bricks_other_source"] == len(ALL) - 1
        assert any(MISSING_ALL in r[1] for r in second.requests())
    assert _rows(again) == []  # the stale entry is dropped


def _compose(over):
    from tests.helpers import compose_config

    return compose_config(over)
