"""Nonsense numbers, URL schemes, S3 endpoints and Spark masters fail before any work: one line
naming the key, exit 2 (through ``dhs.cli.main`` in this process)."""

from __future__ import annotations

import sys

import pytest

from tests.cli.test_user_errors import the_line


@pytest.fixture
def dhs_main(monkeypatch, capsys, tmp_path):
    """Run `dhs.cli.main()` with ``args`` (stage=plan unless given); returns (exit code, stdout,
    stderr) and checks nothing was written besides the run record."""
    from hydra.core.global_hydra import GlobalHydra

    from dhs import cli

    monkeypatch.chdir(tmp_path)

    def run(args: list[str]) -> tuple[int, str, str]:
        argv = ["dhs", *args, f"paths.runs_root={tmp_path}/runs", f"paths.data_root={tmp_path}/data"]
        if not any(a.startswith("stage=") for a in args):
            argv.insert(1, "stage=plan")
        monkeypatch.setattr(sys, "argv", argv)
        code = 0
        try:
            cli.main()
        except SystemExit as exc:
            code = exc.code
        finally:
            GlobalHydra.instance().clear()
        out = capsys.readouterr()
        assert not (tmp_path / "data").exists(), "a bad value must fail before any work"
        return code, out.out, out.err

    return run


@pytest.mark.parametrize("args,expect", [
    (["inject.shard_max_tasks=0"], "inject.shard_max_tasks=0 is invalid: must be > 0"),
    (["manifest.shard_max_tasks=-5"], "manifest.shard_max_tasks=-5 is invalid: must be > 0"),
    (["cache.retries=-1"], "cache.retries=-1 is invalid: must be >= 0"),
    (["cache.timeout_s=0"], "cache.timeout_s=0.0 is invalid: must be > 0"),
    (["cache.threads=0"], "cache.threads=0 is invalid: must be > 0"),
    (["cache.backoff_s=-0.5"], "cache.backoff_s=-0.5 is invalid: must be >= 0"),
    (["cluster.n_jobs=0"], "cluster.n_jobs=0 is invalid: must not be 0"),
    (["psf.beta=inf"], "psf.beta=inf is invalid: not a finite number"),
    (["compact.target_file_mb=0"], "compact.target_file_mb=0.0 is invalid: must be > 0"),
    (["survey.base_url=ftp://example.org/coadd"], "the ftp:// scheme is not supported"),
    (["paths.cache_root=gs://bucket/cache"], "paths.cache_root='gs://bucket/cache' is invalid: the gs://"),
    (["storage.s3_endpoint_url=not a url"], "storage.s3_endpoint_url='not a url' is invalid"),
    (["storage.s3_endpoint_url=http://"], "not an http(s)://host[:port] URL"),
    (["cluster=spark_local", "cluster.spark_master=sprak://host:7077"],
     "cluster.spark_master='sprak://host:7077' is invalid: not a Spark master URL"),
])
def test_a_nonsense_value_is_one_line_naming_the_key(dhs_main, args, expect):
    code, out, err = dhs_main(args)
    line = the_line(code, out, err)
    assert expect in line and "override" in line


@pytest.mark.parametrize("args", [
    ["cluster=spark_local", "cluster.spark_master=spark://10.0.0.1:7077"],
    ["cluster=spark_local", "cluster.spark_master='local[4]'"],
    ["storage.s3_endpoint_url=http://127.0.0.1:9000"],
    ["survey.base_url=https://portal.nersc.gov/cfs/cosmo/data/legacysurvey/dr10/south/coadd"],
    ["cache.retries=0", "cache.backoff_s=0"],
])
def test_sensible_values_pass(dhs_main, args):
    code, out, err = dhs_main(args)
    assert code == 0 and "dhs:" not in err, err
