"""Test helpers: compose configs like Hydra's own examples and run stages through the CLI's path.

``run_stage`` goes through ``dhs.cli.run_stage`` (config value checks and storage set-up
included), so a test runs a stage exactly as ``dhs stage=...`` would, minus the Hydra run
directory. Nothing here imports a conftest module.
"""

from __future__ import annotations

from typing import Any

#: A small embedded survey: 3 bricks of 300 px, 12 galaxies each.
SMALL_SURVEY = ["mock_survey.n_bricks=3", "mock_survey.brick_size_pix=300", "mock_survey.galaxies_per_brick=12",
                "mock_survey.n_regions=3"]
#: The debug tier cut to one experiment (64 px, grz), one task per config and one replicate.
DEBUG_64 = ["tier=debug", "tier.stamp_sizes=[64]", "tier.bandsets=[grz]", "tier.n_per_config=1",
            "tier.replicates=1"]


def compose_config(overrides: list[str] | None = None) -> Any:
    """Compose the dhs config (no Hydra run context) with the given overrides."""
    from hydra import compose, initialize_config_module

    with initialize_config_module(config_module="dhs.conf", version_base=None):
        return compose(config_name="config", overrides=list(overrides or []))


make_cfg = compose_config


def run_stage(overrides: list[str], run_dir: Any = None) -> dict:
    """Compose ``overrides`` and run the stage through ``dhs.cli.run_stage``; returns its summary."""
    from dhs.cli import run_stage as cli_run_stage
    from dhs.context import make_context

    cfg = compose_config(overrides)
    return cli_run_stage(cfg, make_context(run_dir))


def run_experiment(overrides: list[str]) -> tuple[Any, str]:
    """Run the stage of ``overrides`` and return its composed config and first experiment id."""
    from dhs.stages import layout

    run_stage(overrides)
    cfg = compose_config(overrides)
    return cfg, layout.experiment_ids(cfg)[0]
