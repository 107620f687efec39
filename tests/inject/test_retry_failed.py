"""Rows lost to a flaky server (30% 503s and dropped connections on one brick's files, no retries,
``cache.mode=none``) are stored with their reason, the stage exits 3 with the command
that retries them, and ``retry_failed=true`` against a healthy server redoes exactly the shards
holding them: every row then equals a run from local files."""

from __future__ import annotations

import pyarrow.compute as pc
import pytest

from dhs.stages import layout
from dhs.errors import RunFailedError
from dhs.io import datasets as dio
from tests.helpers import compose_config, run_stage
from tests.servers import Faults, http_server


def _sorted(table):
    return table.take(pc.sort_indices(table, [("task_id", "ascending")]))


def _markers(cfg, exp) -> dict[str, int]:
    """mtime (ns) of every committed shard marker of the metrics dataset."""
    import os

    d = os.path.join(layout.metrics_dir(cfg, exp), dio.SHARDS_DIR)
    return {n: os.stat(os.path.join(d, n)).st_mtime_ns for n in sorted(os.listdir(d))}


def test_flaky_server_then_retry_failed_gives_the_local_result(mini_root, mini_base):
    coadd = mini_root / "mock_survey" / "coadd"
    base = [*mini_base, "stage=4c", "inject.shard_max_tasks=40", "cache.backoff_s=0",
            "cache.timeout_s=5"]
    local = [*base, "inject.run_name=retry_local"]
    run_stage(local)
    cfg_local = compose_config(local)
    exp = layout.experiment_ids(cfg_local)[0]
    want = _sorted(dio.read_dataset(layout.metrics_dir(cfg_local, exp)))
    stamps_want = _sorted(dio.read_dataset(layout.stamps_dir(cfg_local, exp)))
    assert set(want.column("error_code").to_pylist()) <= {"", "edge", "nan_pixels"}

    bricks = sorted(set(want.column("brickname").to_pylist()))
    faults = Faults(p_503=0.3, p_drop=0.1, faulty_attempts=1, salt="retry", only=(bricks[1],))
    with http_server(coadd, faults) as srv:
        flaky = [*base, "inject.run_name=retry_http", f"survey.base_url={srv.url}", "cache.retries=0"]
        with pytest.raises(RunFailedError) as failed:
            run_stage(flaky)
        cfg = compose_config(flaky)
        got = dio.read_dataset(layout.metrics_dir(cfg, exp))
        codes = got.column("error_code").to_pylist()
        n_lost = codes.count("transient_io")
        assert n_lost > 0 and "corrupt_file" not in codes
        assert f"{n_lost} can be retried: `dhs" in str(failed.value) and "retry_failed=true`" in str(failed.value)
        lost = got.filter(pc.equal(got.column("error_code"), "transient_io")).to_pylist()
        assert all(r["error_file"].startswith(srv.url) for r in lost)
        assert {r["error_status"] for r in lost} <= {503, None}
        assert any(r["error_status"] == 503 for r in lost)  # the answer's status is kept
        assert all(r["error_message"] for r in lost)
        good = [r for r in got.to_pylist() if not r["error_code"]]
        assert all(r["error_file"] is None and r["error_message"] is None for r in good)

        redo = {f"{r['task_id']}" for r in lost}
        from dhs.stages.inject import make_shards

        shards = make_shards(dio.read_dataset(layout.manifest_dir(cfg, exp)), exp, 40)
        dirty = {sh["shard_id"] + ".json" for sh in shards
                 if redo & set(sh["rows"].column("task_id").to_pylist())}
        before = _markers(cfg, exp)
        assert dirty and set(before) - dirty, "the faults should hit some shards, not all"

        srv.reset(Faults())
        summary = run_stage([*flaky, "retry_failed=true"])
        after = _markers(cfg, exp)
        assert {n for n in before if before[n] != after[n]} == dirty  # the others are untouched
        assert summary["experiments"][exp]["shards_retried"] == len(dirty)
        assert summary["rows"]["failed"] == 0

    got = _sorted(dio.read_dataset(layout.metrics_dir(cfg, exp)))
    assert got.equals(want)
    assert _sorted(dio.read_dataset(layout.stamps_dir(cfg, exp))).equals(stamps_want)
