"""Kill a real ``dhs`` process with SIGKILL once a dataset has some committed shards, for the
tests that resume killed runs."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

from dhs.io import shards

DHS = os.path.join(os.path.dirname(sys.executable), "dhs")


def _count(dataset: str, since: float | None) -> int:
    """Shard markers of ``dataset`` (written at ``since`` or later, when given)."""
    folder = os.path.join(dataset, shards.SHARDS_DIR)
    try:
        return sum(1 for e in os.scandir(folder) if e.name.endswith(".json") and not e.name.startswith(".")
                   and (since is None or e.stat().st_mtime >= since))
    except FileNotFoundError:
        return 0


def kill_after(args: list[str], dataset: str, n_shards: int, cwd: Path, timeout: float = 300,
               fresh: bool = False) -> None:
    """Run ``dhs *args`` and SIGKILL it as soon as ``dataset`` has ``n_shards`` shard markers
    (with ``fresh``: markers written by this process, not left by an earlier run); asserts the
    process was killed mid-run (it had not finished)."""
    since = time.time() - 0.01
    proc = subprocess.Popen([DHS, *args, f"hydra.run.dir={cwd}/killed_run"], cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    t0 = time.monotonic()
    try:
        while proc.poll() is None and time.monotonic() - t0 < timeout:
            if _count(dataset, since if fresh else None) >= n_shards:
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


@contextlib.contextmanager
def held_lock(dataset: str, command: str) -> Iterator[int]:
    """A live process (its pid yielded) holding the write lock of ``dataset`` since 2026-01-01;
    the process is gone after the ``with``, so its lock is stale."""
    import json
    import socket

    from dhs.io import locks

    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock = locks.lock_uri(dataset)
        os.makedirs(os.path.dirname(lock), exist_ok=True)
        with open(lock, "w") as f:
            json.dump({"host": socket.gethostname(), "pid": holder.pid, "started": "2026-01-01T00:00:00Z",
                       "command": command}, f)
        yield holder.pid
    finally:
        holder.kill()
        holder.wait()
