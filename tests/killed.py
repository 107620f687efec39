"""Kill a real ``dhs`` process with SIGKILL once a dataset has some committed shards, for the
tests that resume killed runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from dhs.io import shards

DHS = os.path.join(os.path.dirname(sys.executable), "dhs")


def kill_after(args: list[str], dataset: str, n_shards: int, cwd: Path, timeout: float = 300) -> None:
    """Run ``dhs *args`` and SIGKILL it as soon as ``dataset`` has ``n_shards`` shard markers;
    asserts the process was killed mid-run (it had not finished)."""
    proc = subprocess.Popen([DHS, *args, f"hydra.run.dir={cwd}/killed_run"], cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    t0 = time.monotonic()
    try:
        while proc.poll() is None and time.monotonic() - t0 < timeout:
            if os.path.isdir(os.path.join(dataset, shards.SHARDS_DIR)) and len(shards.committed(dataset)) >= n_shards:
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.005)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL, \
        f"finished before the kill: {proc.returncode} {proc.stderr.read()[-2000:]}"


def digest(*dirs: str) -> dict:
    """Bytes of each dataset, leaving out the dataset records (they carry times and run folders)."""
    from dhs.io import storage

    return {d: storage.tree_digest(d, exclude_names=("_dhs_record.json",)) for d in dirs}
