"""Dataset paths and experiments of a run, from its config: the stages' side of dhs.layout.

``layout.manifest_dir(cfg, exp)`` is ``paths(cfg).manifest_dir(exp)``; code below the stages
takes a :class:`dhs.layout.Paths` (or the one path it needs) instead of the config.
"""

from __future__ import annotations

from typing import Any

from dhs.errors import ConfigError, MissingInputError
from dhs.layout import Experiment, Paths, experiment_id  # noqa: F401  (used through this module)


def paths(cfg: Any) -> Paths:
    """``paths.data_root``, ``variant``, ``paths.cache_root``, ``inject.run_name`` and ``score.run_name``."""
    return Paths(data_root=str(cfg.paths.data_root), variant=str(cfg.variant),
                 cache_root=str(cfg.paths.cache_root), run_name=str(cfg.inject.run_name),
                 score_run=str(cfg.score.run_name))


def experiments(cfg: Any) -> list[Experiment]:
    """Stamp sizes x bandsets of ``cfg.tier`` on ``cfg.grid``, in that order (or the one named by
    ``cfg.experiment_id``; a ConfigError when the tier has no such experiment)."""
    out = [Experiment(str(cfg.tier.name), int(s), str(b), str(cfg.grid.name))
           for s in cfg.tier.stamp_sizes for b in cfg.tier.bandsets]
    if cfg.get("experiment_id"):
        named = [e for e in out if e.experiment_id == str(cfg.experiment_id)]
        if not named:
            raise ConfigError(f"experiment_id={cfg.experiment_id!r} is not an experiment of tier "
                              f"{cfg.tier.name} with grid {cfg.grid.name}; those are "
                              f"{[e.experiment_id for e in out]}")
        return named
    return out


def experiment_ids(cfg: Any) -> list[str]:
    """Experiments of the configured tier: stamp sizes x bandsets (or the one named by experiment_id)."""
    if cfg.get("experiment_id"):
        return [str(cfg.experiment_id)]
    return [str(e) for e in experiments(cfg)]


def experiments_with_metrics(cfg: Any, reader: str) -> tuple[list[str], dict[str, str]]:
    """The configured experiments that have 4c metrics, and why the others are skipped.

    Raises MissingInputError (naming ``reader``, the stage asking) when none has any.
    """
    from dhs.io import datasets as dio

    exps = experiment_ids(cfg)
    present = [e for e in exps if dio.data_files(metrics_dir(cfg, e))]
    skipped = {e: f"no 4c metrics at {metrics_dir(cfg, e)}" for e in exps if e not in present}
    if not present:
        raise MissingInputError(f"{reader} found no 4c metrics: " + "; ".join(skipped.values())
                                + ". Run `dhs stage=4c` first (same paths.data_root, variant, tier).")
    return present, skipped


def phase_root(cfg: Any, phase: str) -> str:
    return paths(cfg).phase_root(phase)


def manifest_dir(cfg: Any, exp_id: str) -> str:
    return paths(cfg).manifest_dir(exp_id)


def manifest_csv_dir(cfg: Any, exp_id: str) -> str:
    return paths(cfg).manifest_csv_dir(exp_id)


def bricks_manifest_dir(cfg: Any) -> str:
    return paths(cfg).bricks_manifest_dir()


def stage4a_record(cfg: Any) -> str:
    return paths(cfg).stage4a_record()


def cache_root(cfg: Any) -> str:
    return paths(cfg).cache_root


def blacklist_path(cfg: Any) -> str:
    return paths(cfg).blacklist_path()


def injection_root(cfg: Any) -> str:
    return paths(cfg).injection_root()


def stamps_dir(cfg: Any, exp_id: str) -> str:
    return paths(cfg).stamps_dir(exp_id)


def metrics_dir(cfg: Any, exp_id: str) -> str:
    return paths(cfg).metrics_dir(exp_id)


def scores_dir(cfg: Any, exp_id: str) -> str:
    return paths(cfg).scores_dir(exp_id)


def completeness_dir(cfg: Any, exp_id: str) -> str:
    return paths(cfg).completeness_dir(exp_id)


def validate_dir(cfg: Any, target: str, exp_id: str) -> str:
    return paths(cfg).validate_dir(target, exp_id)


def mock_survey_root(cfg: Any) -> str:
    return paths(cfg).mock_survey_root()


def mock_survey_coadd(cfg: Any) -> str:
    return paths(cfg).mock_survey_coadd()


def mock_survey_tables(cfg: Any) -> str:
    return paths(cfg).mock_survey_tables()


def mock_survey_sweeps(cfg: Any) -> str:
    return paths(cfg).mock_survey_sweeps()
