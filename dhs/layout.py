"""Where every dataset lives, derived from the config (the earlier system's layout).

``{data_root}/phase4a/{variant}/manifests/{experiment_id}/`` and so on. Every stage and the
plan use these functions, so a path is defined once.
"""

from __future__ import annotations

from typing import Any

from dhs.io.storage import join


def experiment_id(tier: str, stamp_size: int, bandset: str, grid: str) -> str:
    """``{tier}_stamp{size}_bands{bandset}_grid{grid}``, e.g. debug_stamp64_bandsgrz_gridgrid_small."""
    return f"{tier}_stamp{int(stamp_size)}_bands{bandset}_grid{grid}"


def experiment_ids(cfg: Any) -> list[str]:
    """Experiments of the configured tier: stamp sizes x bandsets (or the one named by experiment_id)."""
    if cfg.get("experiment_id"):
        return [str(cfg.experiment_id)]
    return [experiment_id(cfg.tier.name, s, b, cfg.grid.name)
            for s in cfg.tier.stamp_sizes for b in cfg.tier.bandsets]


def phase_root(cfg: Any, phase: str) -> str:
    return join(str(cfg.paths.data_root), phase, str(cfg.variant))


def manifest_dir(cfg: Any, exp_id: str) -> str:
    return join(phase_root(cfg, "phase4a"), "manifests", exp_id)


def manifest_csv_dir(cfg: Any, exp_id: str) -> str:
    """Optional CSV copy of a manifest (manifest.write_csv), beside the Parquet manifests."""
    return join(phase_root(cfg, "phase4a"), "manifests_csv", exp_id)


def bricks_manifest_dir(cfg: Any) -> str:
    return join(phase_root(cfg, "phase4a"), "bricks_manifest")


def stage4a_record(cfg: Any) -> str:
    return join(phase_root(cfg, "phase4a"), "_stage_config.json")


def cache_root(cfg: Any) -> str:
    return str(cfg.paths.cache_root)


def blacklist_path(cfg: Any) -> str:
    return join(cache_root(cfg), "_blacklist.csv")


def injection_root(cfg: Any) -> str:
    """``{data_root}/phase4c/{variant}/{inject.run_name}`` (run_name defaults to source_psf)."""
    return join(phase_root(cfg, "phase4c"), str(cfg.inject.run_name))


def stamps_dir(cfg: Any, exp_id: str) -> str:
    return join(injection_root(cfg), "stamps", exp_id)


def metrics_dir(cfg: Any, exp_id: str) -> str:
    return join(injection_root(cfg), "metrics", exp_id)


def completeness_dir(cfg: Any, exp_id: str) -> str:
    return join(phase_root(cfg, "phase4d"), str(cfg.inject.run_name), exp_id)


def validate_dir(cfg: Any, target: str, exp_id: str) -> str:
    return join(phase_root(cfg, "validate"), str(target), exp_id)


def mock_survey_root(cfg: Any) -> str:
    return join(str(cfg.paths.data_root), "mock_survey")


def mock_survey_coadd(cfg: Any) -> str:
    """``{data_root}/mock_survey/coadd``: the mock bricks (what survey=mock's base_url points at)."""
    return join(mock_survey_root(cfg), "coadd")


def mock_survey_tables(cfg: Any) -> str:
    """``{data_root}/mock_survey/tables``: parent catalog, brick table, region selections."""
    return join(mock_survey_root(cfg), "tables")
