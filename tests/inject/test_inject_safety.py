"""force=true checks its inputs before replacing anything; one writer per dataset."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from dhs.stages import layout
from dhs.io import datasets as dio
from dhs.io import locks, storage
from dhs.io.locks import DatasetLockedError
from tests.cli.test_user_errors import dhs, the_line
from tests.helpers import compose_config, run_stage


def _digest(cfg, exp):
    return {d: storage.tree_digest(d) for d in (layout.metrics_dir(cfg, exp), layout.stamps_dir(cfg, exp))}


@pytest.fixture
def done_4c(mini_base, request):
    over = [*mini_base, "stage=4c", "source=cosmos", f"inject.run_name={request.node.name[:40]}",
            "inject.shard_max_tasks=150"]
    run_stage(over)
    cfg = compose_config(over)
    return over, cfg, layout.experiment_ids(cfg)[0]


@pytest.mark.parametrize("bad", ["source.bank_path={root}/no_such_bank.h5", "survey.base_url={root}/no_such_coadd"])
def test_force_with_a_bad_input_changes_nothing_and_exits_2(done_4c, mini_root, tmp_path, bad):
    over, cfg, exp = done_4c
    before = _digest(cfg, exp)
    out = dhs([*over, "force=true", bad.format(root=mini_root)], tmp_path)
    line = the_line(out.returncode, out.stdout, out.stderr)
    assert "no_such" in line
    assert _digest(cfg, exp) == before


def test_force_replaces_the_dataset_only_once_the_new_one_is_committed(done_4c):
    over, cfg, exp = done_4c
    before = _digest(cfg, exp)
    summary = run_stage([*over, "force=true"])["experiments"][exp]
    assert summary["shards_skipped"] == 0 and summary["complete"]
    after = _digest(cfg, exp)
    strip = {d: {k: v for k, v in t.items() if not k.endswith("_dhs_record.json")} for d, t in after.items()}
    assert strip == {d: {k: v for k, v in t.items() if not k.endswith("_dhs_record.json")}
                     for d, t in before.items()}
    parent = storage.dirname(layout.metrics_dir(cfg, exp))
    assert [n for n in os.listdir(parent) if n.startswith(".")] == []  # no staging, lock or old copy left


def test_a_live_writer_makes_the_second_run_refuse(done_4c):
    over, cfg, exp = done_4c
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock = locks.lock_uri(layout.metrics_dir(cfg, exp))
        with open(lock, "w") as f:
            json.dump({"host": socket.gethostname(), "pid": holder.pid, "started": "2026-01-01T00:00:00Z",
                       "command": "dhs stage=4c"}, f)
        with pytest.raises(DatasetLockedError, match=f"pid {holder.pid}, started 2026-01-01T00:00:00Z"):
            run_stage([*over, "psf.beta=4.5"])
    finally:
        holder.kill()
        holder.wait()
    # its owner is dead now: the lock is stale and taken over
    summary = run_stage([*over, "psf.beta=4.5"])["experiments"][exp]
    assert summary["complete"] and not os.path.exists(lock)


def test_two_runs_at_once_never_mix_their_rows(done_4c, tmp_path):
    over, cfg, exp = done_4c
    procs = []
    for beta in (3.0, 4.5):
        procs.append(subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "dhs"), *over, f"psf.beta={beta}",
                                       f"hydra.run.dir={tmp_path}/run{beta}"],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path))
        time.sleep(0.5)
    results = [(p.wait(timeout=600), p.stderr.read()) for p in procs]
    assert {rc for rc, _ in results} <= {0, 2}, results
    for rc, err in results:
        if rc == 2:
            assert "is being written by another run" in err
    betas = set(dio.read_dataset(layout.metrics_dir(cfg, exp), columns=["moffat_beta"])
                .column("moffat_beta").to_pylist())
    assert len(betas) == 1 and betas <= {3.0, 4.5}
    for d in (layout.metrics_dir(cfg, exp), layout.stamps_dir(cfg, exp)):
        rec = json.loads(open(f"{d}/_dhs_record.json").read())
        assert {rec["shard_settings"]["psf"]["beta"]} == betas
        assert json.loads(open(f"{d}/_SUCCESS").read())["rows"] == rec["counts"]["manifest_rows"]
