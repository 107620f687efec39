"""Where every dataset lives (the earlier system's layout), as pure string paths.

``{data_root}/phase4a/{variant}/manifests/{experiment_id}/`` and so on: :class:`Paths` holds the
few roots and derives every dataset path from them, so a path is defined once. An
:class:`Experiment` formats and parses its id, ``{tier}_stamp{size}_bands{bandset}_grid{grid}``.
The stages build a ``Paths`` from the config (dhs.stages.layout).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from dhs.uris import join

_EXPERIMENT_RE = re.compile(r"^(?P<tier>[A-Za-z0-9]+)_stamp(?P<size>\d+)_bands(?P<bands>[A-Za-z]+)"
                            r"_grid(?P<grid>\w+)$")


@dataclass(frozen=True)
class Experiment:
    """One experiment of a tier: a stamp size (pixels) x bandset (e.g. ``grz``) on a grid."""

    tier: str
    stamp_size: int
    bandset: str
    grid: str

    @property
    def experiment_id(self) -> str:
        """``{tier}_stamp{size}_bands{bandset}_grid{grid}``, e.g. debug_stamp64_bandsgrz_gridgrid_small."""
        return f"{self.tier}_stamp{int(self.stamp_size)}_bands{self.bandset}_grid{self.grid}"

    def __str__(self) -> str:
        return self.experiment_id

    @classmethod
    def parse(cls, text: str) -> Optional["Experiment"]:
        """The experiment whose id is ``text``, or None when ``text`` is not an experiment id."""
        m = _EXPERIMENT_RE.match(str(text))
        if m is None:
            return None
        return cls(m["tier"], int(m["size"]), m["bands"], m["grid"])


def blacklist_path(cache_root: str) -> str:
    """``<cache_root>/_blacklist.csv``: bricks the survey does not have (dhs.fetch.blacklist)."""
    return join(cache_root, "_blacklist.csv")


def experiment_id(tier: str, stamp_size: int, bandset: str, grid: str) -> str:
    """The id of that experiment (see :attr:`Experiment.experiment_id`)."""
    return Experiment(str(tier), int(stamp_size), str(bandset), str(grid)).experiment_id


@dataclass(frozen=True)
class Paths:
    """The roots every dataset path derives from: ``data_root`` (local folder or s3:// URI),
    the parent-sample ``variant``, the coadd ``cache_root``, the injection ``run_name`` and the
    lens finder's ``score_run`` (its scores and completeness folders; the finder's name)."""

    data_root: str
    variant: str
    cache_root: str
    run_name: str
    score_run: str = "arcfinder"

    def phase_root(self, phase: str) -> str:
        return join(self.data_root, phase, self.variant)

    def manifest_dir(self, exp_id: str) -> str:
        return join(self.phase_root("phase4a"), "manifests", exp_id)

    def manifest_csv_dir(self, exp_id: str) -> str:
        """Optional CSV copy of a manifest (manifest.write_csv), beside the Parquet manifests."""
        return join(self.phase_root("phase4a"), "manifests_csv", exp_id)

    def bricks_manifest_dir(self) -> str:
        return join(self.phase_root("phase4a"), "bricks_manifest")

    def stage4a_record(self) -> str:
        return join(self.phase_root("phase4a"), "_stage_config.json")

    def blacklist_path(self) -> str:
        return blacklist_path(self.cache_root)

    def injection_root(self) -> str:
        """``{data_root}/phase4c/{variant}/{run_name}`` (run_name defaults to source_psf)."""
        return join(self.phase_root("phase4c"), self.run_name)

    def stamps_dir(self, exp_id: str) -> str:
        return join(self.injection_root(), "stamps", exp_id)

    def metrics_dir(self, exp_id: str) -> str:
        return join(self.injection_root(), "metrics", exp_id)

    def scores_dir(self, exp_id: str) -> str:
        """``{injection root}/scores/{score_run}/{experiment_id}``: a finder's scores of the stamps."""
        return join(self.injection_root(), "scores", self.score_run, exp_id)

    def completeness_dir(self, exp_id: str) -> str:
        """``{data_root}/phase4d/{variant}/{run_name}/{score_run}/{experiment_id}``: one folder per
        injection run and finder."""
        return join(self.phase_root("phase4d"), self.run_name, self.score_run, exp_id)

    def validate_dir(self, target: str, exp_id: str) -> str:
        return join(self.phase_root("validate"), str(target), exp_id)

    def mock_survey_root(self) -> str:
        return join(self.data_root, "mock_survey")

    def mock_survey_coadd(self) -> str:
        """``{data_root}/mock_survey/coadd``: the mock bricks (what survey=mock's base_url points at)."""
        return join(self.mock_survey_root(), "coadd")

    def mock_survey_tables(self) -> str:
        """``{data_root}/mock_survey/tables``: parent catalog, brick table, region selections."""
        return join(self.mock_survey_root(), "tables")

    def mock_survey_sweeps(self) -> str:
        """``{data_root}/mock_survey/sweep/10.1``: the mock's DR10 sweep-format catalogs."""
        return join(self.mock_survey_root(), "sweep", "10.1")
