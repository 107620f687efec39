"""What executors on any Spark master get: storage credentials (or a clear refusal), the numba
cache directory and the interpreter of their environment."""

from __future__ import annotations

import os
import sys

import pytest

from dhs.executors import ExecutorSettings
from dhs.executors.spark import session_conf
from dhs.io import storage
from dhs.stages.settings import executor_settings

STANDALONE = ["cluster=spark_local", "cluster.spark_master=spark://10.0.0.5:7077"]


@pytest.fixture
def no_aws(monkeypatch, tmp_path):
    """No AWS credentials anywhere: environment, files or instance metadata."""
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    yield
    storage.configure()


def test_remote_executors_get_the_drivers_credentials(compose, monkeypatch, no_aws):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDDRIVER")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "driver-secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "driver-token")
    st = executor_settings(compose(STANDALONE)).storage
    assert (st.access_key, st.secret_key, st.session_token) == ("AKIDDRIVER", "driver-secret", "driver-token")
    assert "driver-secret" not in repr(st) and "driver-token" not in repr(st)
    # keys in the config win; a local master keeps the process's own chain
    st = executor_settings(compose([*STANDALONE, "storage.aws_access_key_id=AKIDCFG",
                                    "storage.aws_secret_access_key=cfg"])).storage
    assert (st.access_key, st.session_token) == ("AKIDCFG", None)
    assert executor_settings(compose(["cluster=spark_local"])).storage.access_key is None


def test_executors_without_credentials_refuse_anonymous_s3(compose, no_aws):
    st = executor_settings(compose(STANDALONE)).storage
    assert st.require_credentials and st.access_key is None
    storage.configure_from(st)  # what an executor does before its shards
    with pytest.raises(storage.StorageCredentialsError, match="no AWS credentials on .*instance role"):
        storage.exists("s3://some-bucket/data/_SUCCESS")
    storage.configure_from(executor_settings(compose(["cluster=spark_local"])).storage)
    assert storage.is_s3("s3://b/k")  # local masters go on as before (public buckets)


def test_every_master_sets_the_numba_cache_and_the_workers_python(compose, monkeypatch):
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setenv("PYSPARK_PYTHON", "/opt/env/bin/python")
    for overrides in (STANDALONE, ["cluster=spark_local"]):
        conf = session_conf(executor_settings(compose(overrides)))
        assert conf["spark.executorEnv.NUMBA_CACHE_DIR"] == "/tmp/numba_cache"
        assert conf["spark.pyspark.python"] == "/opt/env/bin/python"
    conf = session_conf(executor_settings(compose([*STANDALONE, "cluster.python=/nodes/py"])))
    assert conf["spark.pyspark.python"] == conf["spark.executorEnv.PYSPARK_PYTHON"] == "/nodes/py"
    monkeypatch.setenv("NUMBA_CACHE_DIR", "/scratch/numba")
    monkeypatch.delenv("PYSPARK_PYTHON")
    conf = session_conf(ExecutorSettings("spark_local", spark_master="yarn",
                                         spark_conf=(("spark.pyspark.python", "python3.11"),)))
    assert conf["spark.executorEnv.NUMBA_CACHE_DIR"] == "/scratch/numba"
    assert conf["spark.pyspark.python"] == "python3.11"
    assert session_conf(ExecutorSettings("spark_local"))["spark.pyspark.python"] == sys.executable


def _worker_env(_: int) -> tuple[str, str]:
    return os.environ.get("NUMBA_CACHE_DIR", ""), sys.executable


def test_spark_workers_see_the_numba_cache(spark):
    seen = spark.sparkContext.parallelize(range(2), 2).map(_worker_env).collect()
    assert all(cache for cache, _ in seen), seen
    assert {exe for _, exe in seen} == {os.environ["PYSPARK_PYTHON"]}
