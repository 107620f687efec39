"""With a Spark master whose executors run in their own folders, relative local paths are made
absolute in the driver before any setting leaves it (through the CLI's path, stage=plan)."""

from __future__ import annotations

import os

from tests.helpers import run_stage


def _all_uris(summary: dict) -> list[str]:
    return [u for name, ds in summary.items() if isinstance(ds, dict)
            for kind in ("reads", "writes") for u in ds.get(kind, [])]


def test_a_standalone_master_gets_absolute_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = run_stage(["stage=plan", "cluster=spark_local", "cluster.spark_master=spark://127.0.0.1:7077",
                     "source=cosmos", "paths.data_root=rel/data", "source.bank_path=banks/b.h5"],
                    run_dir=tmp_path / "run")
    uris = _all_uris(out["datasets"])
    assert uris and all(os.path.isabs(u) or "://" in u for u in uris), uris
    assert str(tmp_path / "rel" / "data" / "phase4c") in " ".join(uris)
    assert str(tmp_path / "banks" / "b.h5") in uris  # an explicit relative key, not interpolated


def test_a_local_master_keeps_relative_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = run_stage(["stage=plan", "cluster=spark_local", "cluster.spark_master='local[2]'",
                     "paths.data_root=rel/data"], run_dir=tmp_path / "run")
    assert any(u.startswith("rel/data/") for u in _all_uris(out["datasets"]))
