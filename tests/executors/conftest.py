"""Fixtures of the executor tests: one local SparkSession per process, one moto server per module."""

from __future__ import annotations

import os
import sys

import pytest

from tests.s3_server import MotoServer, moto_server


@pytest.fixture(scope="session")
def spark():
    """A local[2] SparkSession for the test process (run_shards reuses it: getOrCreate)."""
    from dhs.executors import ExecutorSettings
    from dhs.executors.spark import get_session, stop_session

    os.environ["PYSPARK_PYTHON"] = sys.executable
    session = get_session(ExecutorSettings("spark_local", spark_master="local[2]",
                                           spark_conf=(("spark.dhs.check", "applied"),)))
    yield session
    stop_session()


@pytest.fixture(scope="module")
def moto() -> MotoServer:
    with moto_server() as srv:
        yield srv


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """The dhs wheel, built once per module with the EMR submission's own builder."""
    from dhs.executors.emr.submit import build_wheel

    return build_wheel(tmp_path_factory.mktemp("wheel"))
