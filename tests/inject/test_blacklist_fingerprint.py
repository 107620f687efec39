"""4c shard fingerprints carry which of the shard's bricks are blacklisted: after the blacklist
changes, a rerun redoes exactly the shards of the bricks whose status changed, and the dataset
record stays complete (the blacklist is not part of the settings the shards share)."""

from __future__ import annotations

import json
import os

import pyarrow.parquet as pq
import pytest

from dhs.errors import RunFailedError
from dhs.fetch.blacklist import write_rows
from dhs.io import datasets as dio
from dhs.io import shards
from dhs.stages import layout
from tests.helpers import compose_config, run_stage


def _state(d: str) -> dict:
    """{shard: (marker inode, mtime)}: a rewritten marker gets a new inode (atomic rename)."""
    out = {}
    for name in shards.committed(d):
        st = os.stat(shards.marker_uri(d, name))
        out[name] = (st.st_ino, st.st_mtime_ns)
    return out


def _bytes(d: str) -> dict:
    return {os.path.relpath(f, d): open(f, "rb").read() for f in dio.data_files(d)}


def _bricks_by_shard(d: str) -> dict:
    out: dict = {}
    for f in dio.data_files(d):
        sid = f.rsplit("part-", 1)[1].split(".")[0]
        out.setdefault(sid, set()).update(pq.read_table(f, columns=["brickname"]).column(0).to_pylist())
    return out


def _run(over: list[str]) -> dict:
    try:
        return run_stage(over)
    except RunFailedError as exc:  # blacklisted rows failed for good: exit 3, summary attached
        return exc.summary


def test_blacklist_change_redoes_exactly_the_shards_of_its_bricks(mini_base, tmp_path):
    over = [*mini_base, "stage=4c", "inject.run_name=blfp", "inject.shard_max_tasks=4",
            f"paths.cache_root={tmp_path}/cache"]
    cfg = compose_config(over)
    exp = layout.experiment_ids(cfg)[0]
    mdir, sdir, bl = layout.metrics_dir(cfg, exp), layout.stamps_dir(cfg, exp), layout.blacklist_path(cfg)
    base_url = str(cfg.survey.base_url)

    first = _run(over)["experiments"][exp]
    assert first["errors"].get("blacklisted_brick", 0) == 0
    ref = {d: _bytes(d) for d in (mdir, sdir)}
    by_shard = _bricks_by_shard(mdir)
    brick = sorted(set().union(*by_shard.values()))[1]
    mine = {sid for sid, bs in by_shard.items() if brick in bs}
    assert mine and set(by_shard) - mine, "the test needs shards with and without the brick"

    # brick blacklisted (and an entry made against another survey root, not applied)
    before = _state(mdir)
    write_rows(bl, [{"brick": brick, "file": "image-g", "status": 404, "time": "2026-01-01T00:00:00Z",
                     "base_url": base_url},
                    {"brick": "0000m000", "file": "image-g", "status": 404, "time": "2026-01-01T00:00:00Z",
                     "base_url": "http://elsewhere.invalid/coadd/"}])
    added = _run(over)["experiments"][exp]
    after = _state(mdir)
    assert {s for s in before if before[s] != after[s]} == mine
    assert added["shards_redone"] == len(mine) and added["shards_skipped"] == len(by_shard) - len(mine)
    assert added["complete"]
    m = dio.read_dataset(mdir, columns=["brickname", "error_code"]).to_pandas()
    assert set(m[m.brickname == brick].error_code) == {"blacklisted_brick"}
    assert "blacklisted_brick" not in set(m[m.brickname != brick].error_code)
    for name in mine:
        fp = shards.read_marker(mdir, name)["fingerprint"]
        assert fp["local"] == {"blacklisted_bricks": [brick]}
    ok = json.loads(open(os.path.join(mdir, "_SUCCESS")).read())
    assert ok["errors"]["blacklisted_brick"] == int((m.brickname == brick).sum())
    assert len(ok["settings_digests"]) == 1  # the shared settings did not change

    # entry removed (the file now holds only the foreign entry): those shards again, bytes as first
    before = after
    write_rows(bl, [{"brick": "0000m000", "file": "image-g", "status": 404, "time": "2026-01-01T00:00:00Z",
                     "base_url": "http://elsewhere.invalid/coadd/"}])
    removed = _run(over)["experiments"][exp]
    after = _state(mdir)
    assert {s for s in before if before[s] != after[s]} == mine
    assert removed["shards_redone"] == len(mine) and removed["complete"]
    assert removed["errors"] == first["errors"]
    for d in (mdir, sdir):
        assert _bytes(d) == ref[d]
    assert all("local" not in shards.read_marker(mdir, n)["fingerprint"] for n in by_shard)

    # nothing changed: nothing redone
    again = _run(over)["experiments"][exp]
    assert _state(mdir) == after and again["shards_redone"] == 0
    assert again["shards_skipped"] == len(by_shard)


@pytest.mark.parametrize("local", [{}, {"blacklisted_bricks": ["b1"]}])
def test_local_facts_change_the_digest_not_the_shared_settings(local):
    plain = shards.Fingerprint("rows", {"a": 1}, "r1")
    fp = shards.Fingerprint("rows", {"a": 1}, "r1", local=local)
    assert fp.settings_digest == plain.settings_digest
    assert (fp.digest == plain.digest) == (not local)
    marker = {"fingerprint": fp.to_json()}
    assert shards.changes(marker, plain) == ([("blacklisted_bricks", ["b1"], None)] if local else [])
