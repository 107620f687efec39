"""One writer per dataset: a lock file beside the dataset, naming its owner.

``<parent>/.<name>.lock`` holds the owner's host, pid, start time and command line. It is created
exclusively (local paths) or written when absent (``s3://``, best effort). A lock whose owner is a
dead process on this host is stale and taken over; a live owner, or one on another host, makes
the second run stop with :class:`DatasetLockedError`.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from contextlib import contextmanager
from typing import Iterator

from dhs.errors import DhsError
from dhs.io import storage


class DatasetLockedError(DhsError):
    """Another run is writing the dataset."""


def lock_uri(dataset: str) -> str:
    return storage.join(storage.dirname(dataset), f".{storage.basename(dataset)}.lock")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _owner() -> dict:
    return {"host": socket.gethostname(), "pid": os.getpid(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "command": " ".join(sys.argv)[:500]}


def _create(uri: str, text: str) -> bool:
    """Create ``uri`` with ``text`` unless it exists; True when this call created it."""
    if storage.is_s3(uri):
        if storage.exists(uri):
            return False
        storage.write_text_atomic(uri, text)
        return True
    os.makedirs(os.path.dirname(uri), exist_ok=True)
    try:
        fd = os.open(uri, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return True


def _read(uri: str) -> dict:
    try:
        return json.loads(storage.read_text(uri))
    except (OSError, ValueError):
        return {}


def acquire(dataset: str) -> str:
    """Take the lock of ``dataset``; returns the lock's path. Raises DatasetLockedError."""
    uri = lock_uri(dataset)
    me = _owner()
    text = json.dumps(me, sort_keys=True)
    for _ in range(2):
        if _create(uri, text):
            return uri
        held = _read(uri)
        if held.get("host") == me["host"] and held.get("pid") == me["pid"]:
            return uri  # this process holds it already
        stale = held.get("host") == me["host"] and isinstance(held.get("pid"), int) and not _alive(held["pid"])
        if not stale:
            raise DatasetLockedError(
                f"{dataset} is being written by another run (host {held.get('host', '?')}, pid "
                f"{held.get('pid', '?')}, started {held.get('started', '?')}: {held.get('command', '?')}); "
                f"wait for it to end, or write elsewhere (inject.run_name, variant or paths.data_root). "
                f"If that run is gone, delete {uri}.")
        storage.remove(uri)  # its owner died: take it over
    raise DatasetLockedError(f"could not take the lock {uri}; delete it if no run is writing {dataset}")


def release(uri: str) -> None:
    held = _read(uri)
    if held.get("pid") == os.getpid() and held.get("host") == socket.gethostname():
        storage.remove(uri)


@contextmanager
def hold(datasets: list[str]) -> Iterator[None]:
    """Hold the locks of ``datasets`` (all or none) for the body of the ``with``."""
    taken: list[str] = []
    try:
        for d in datasets:
            taken.append(acquire(d))
        yield
    finally:
        for uri in reversed(taken):
            release(uri)
