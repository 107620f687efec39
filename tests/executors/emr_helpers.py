"""Helpers of the EMR tests: config overrides for a moto server, finishing its steps."""

from __future__ import annotations

import contextlib
import threading
from typing import Iterator

from dhs.executors.emr.submit import TERMINAL_STATES
from tests.s3_server import MotoServer, storage_overrides


def emr_overrides(moto: MotoServer, region: str, bucket: str, *extra: str,
                  source: str = "cosmos") -> list[str]:
    """A `dhs ... cluster=emr` command line against ``moto`` with staging/logs in ``bucket``."""
    return ["stage=4c", "bands=[g,r,z]", f"source={source}", "cluster=emr",
            f"cluster.emr.region={region}", f"cluster.emr.endpoint_url={moto.endpoint_url}",
            f"cluster.emr.staging_uri=s3://{bucket}/staging", f"cluster.emr.log_uri=s3://{bucket}/logs",
            f"paths.data_root=s3a://{bucket}/data", "cluster.emr.poll_seconds=0.01",
            "cluster.emr.timeout_minutes=1", *storage_overrides(moto), *extra]


def clusters_of(moto: MotoServer, bucket: str) -> list:
    """moto's clusters logging to ``bucket`` (its server files EMR calls under one region)."""
    return [c for c in moto.emr_backend().clusters.values() if f"s3://{bucket}/" in (c.log_uri or "")]


def finish_steps(moto: MotoServer, bucket: str, state: str, reason: str | None = None):
    """A `sleep` for the waiter: moves the unfinished steps of ``bucket``'s clusters to ``state``."""
    def sleep(_seconds: float = 0.0) -> None:
        for cluster in clusters_of(moto, bucket):
            for step in cluster.steps:
                if step.state not in TERMINAL_STATES:
                    step.state = state
                    step.last_state_change_reason = reason
    return sleep


@contextlib.contextmanager
def finishing(moto: MotoServer, bucket: str, state: str, reason: str | None = None) -> Iterator[None]:
    """While inside, a thread finishes ``bucket``'s steps (for a `dhs` run in a subprocess)."""
    done = threading.Event()
    sleep = finish_steps(moto, bucket, state, reason)

    def loop() -> None:
        while not done.wait(0.1):
            sleep()
    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
