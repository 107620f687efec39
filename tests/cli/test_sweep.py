"""A sweep of any size runs: job folders are named by job number, overrides are in each record."""

from __future__ import annotations

import json

from tests.cli.test_user_errors import dhs

#: Twenty overrides with long values (the override string alone is longer than a file name).
OVERRIDES = [f"cache.{k}={v}" for k, v in (("threads", 3), ("retries", 4), ("backoff_s", 0.25),
                                           ("timeout_s", 45.5), ("lru_files", 9),
                                           ("range_block_bytes", 65536))]
OVERRIDES += [f"mock_survey.{k}={v}" for k, v in (("seed", 77), ("n_bricks", 5), ("brick_size_pix", 320),
                                                  ("galaxies_per_brick", 14), ("stars_per_brick", 1),
                                                  ("n_regions", 4))]
OVERRIDES += ["seeds.split_seed=1234567", "seeds.seed_base=7654321", "inject.supersample=3",
              "inject.core_mask_radius=1.25", "inject.shard_max_tasks=321",
              "inject.run_name=a_rather_long_injection_run_name_for_a_sweep_job_folder",
              "psf.default_fwhm_arcsec=1.3"]


def test_a_sweep_of_twenty_overrides_runs(tmp_path):
    assert len(OVERRIDES) >= 19
    args = ["-m", "stage=plan", "source=sersic,cosmos", *OVERRIDES, f"paths.data_root={tmp_path}/data",
            f"hydra.sweep.dir={tmp_path}/sweep"]
    assert len(",".join(OVERRIDES)) > 255
    out = dhs(args, tmp_path)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    jobs = sorted(p.name for p in (tmp_path / "sweep").iterdir() if p.is_dir())
    assert jobs == ["0", "1"]
    for job, source in zip(jobs, ("sersic", "cosmos")):
        rec = json.loads((tmp_path / "sweep" / job / "dhs_run.json").read_text())
        assert rec["status"] == "ok"
        assert set(rec["overrides"]) == {"stage=plan", f"source={source}", *OVERRIDES,
                                         f"paths.data_root={tmp_path}/data"}
