"""The pipeline with data_root on s3:// (a moto server on loopback): 4a -> 4b -> 4c -> score -> 4d,
with the survey served from the bucket too, and the same numbers as a local run."""

from __future__ import annotations

import numpy as np
import pytest

from dhs.stages import layout
from dhs.context import make_context
from dhs.io import datasets as dio
from dhs.io import storage
from dhs.stages import load
from dhs.stages.settings import storage_settings
from tests.helpers import compose_config
from tests.s3_server import storage_overrides

SMALL = ["mock_survey.n_bricks=3", "mock_survey.brick_size_pix=260", "mock_survey.galaxies_per_brick=8",
         "mock_survey.n_regions=3", "tier=debug", "tier.stamp_sizes=[64]", "tier.bandsets=[grz]",
         "tier.n_per_config=1", "tier.replicates=1", "manifest.selection_set_ids=[topk_density]",
         "cluster.n_jobs=1", "source=cosmos", "completeness.threshold=1.0"]


def _run(overrides):
    cfg = compose_config(overrides)
    storage.configure_from(storage_settings(cfg))
    return load(cfg.stage.name).run(cfg, make_context())


@pytest.mark.slow
def test_4a_4b_4c_4d_on_s3_match_a_local_run(moto, tmp_path):
    bucket = moto.make_bucket("dhs-pipeline")
    local = [f"paths.data_root={tmp_path}/data", *SMALL]
    for stage in ("cosmos_bank", "mock_survey", "4a", "4b", "4c", "score", "4d"):
        _run([f"stage={stage}", *local])
    # the same inputs uploaded to the bucket; every stage from 4a on reads and writes s3://
    remote = [f"paths.data_root=s3://{bucket}/data", *SMALL, *storage_overrides(moto)]
    storage.configure_from(storage_settings(compose_config(remote)))
    for sub in ("mock_survey", "cosmos_bank"):
        for f in storage.walk_files(str(tmp_path / "data" / sub)):
            rel = f[len(str(tmp_path / "data")) + 1:]
            storage.write_bytes_atomic(f"s3a://{bucket}/data/{rel}", storage.read_bytes(f))
    try:
        for stage in ("4a", "4b", "4c", "score", "4d"):
            _run([f"stage={stage}", *remote])
        cfg_r, cfg_l = compose_config(remote), compose_config(local)
        (exp,) = layout.experiment_ids(cfg_r)
        assert layout.metrics_dir(cfg_r, exp).startswith("s3://")
        cached = [f for f in storage.walk_files(layout.cache_root(cfg_r)) if f.endswith(".fits.fz")]
        assert len(cached) == 3 * 10
        m_r = dio.read_dataset(layout.metrics_dir(cfg_r, exp)).sort_by("task_id").to_pandas()
        m_l = dio.read_dataset(layout.metrics_dir(cfg_l, exp)).sort_by("task_id").to_pandas()
        assert len(m_r) == len(m_l) > 20 and (m_r.cutout_ok == 1).all()
        np.testing.assert_array_equal(m_r.arc_snr.to_numpy(), m_l.arc_snr.to_numpy())
        s_r = dio.read_dataset(layout.stamps_dir(cfg_r, exp), columns=["task_id", "image"]).sort_by("task_id")
        s_l = dio.read_dataset(layout.stamps_dir(cfg_l, exp), columns=["task_id", "image"]).sort_by("task_id")
        assert s_r.equals(s_l)
        sc_r = dio.read_dataset(layout.scores_dir(cfg_r, exp)).sort_by("task_id")
        sc_l = dio.read_dataset(layout.scores_dir(cfg_l, exp)).sort_by("task_id")
        assert sc_r.equals(sc_l) and sc_r.num_rows == len(m_r)
        surfaces = [f for f in storage.walk_files(layout.completeness_dir(cfg_r, exp)) if f.endswith(".parquet")]
        assert surfaces and storage.exists(storage.join(layout.completeness_dir(cfg_r, exp), "_SUCCESS"))
    finally:
        storage.configure()
