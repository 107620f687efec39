"""Injection grids: the config_id product of ``cfg.grid`` (ARCHITECTURE section 4).

An axis whose quantity is drawn from a prior (``grid.source_mag=prior``: src_dmag,
``grid.source_size=prior``: src_reff) is empty in the config; it enters the product as one NaN
value and the config_id spells it ``prior`` (``..._dmprior_rfprior_...``).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from dhs.manifest.priors import Priors

AXES = ("theta_e", "src_dmag", "src_reff", "src_e", "shear")
CONTROL = "CONTROL"


@dataclass(frozen=True)
class Grid:
    """The full product of a grid's axes, in axis order (shear varies fastest)."""

    name: str
    config_ids: tuple[str, ...]
    theta_e: np.ndarray  # arcsec
    src_dmag: np.ndarray  # mag
    src_reff: np.ndarray  # arcsec
    src_e: np.ndarray
    shear: np.ndarray
    source_mag: str = "dmag"
    source_size: str = "grid"
    lens_shape: str = "uniform"
    priors: Priors = field(default_factory=Priors)

    def __len__(self) -> int:
        return len(self.config_ids)


def _fmt(v: float) -> str:
    return "prior" if np.isnan(v) else repr(float(v))


def config_id(grid: str, index: int, te: float, dm: float, rf: float, e: float, sh: float) -> str:
    """``{grid}_{index:04d}_te{theta}_dm{dmag}_rf{reff}_e{e}_sh{shear}`` (floats as Python repr,
    ``prior`` for an axis drawn per task)."""
    return f"{grid}_{index:04d}_te{_fmt(te)}_dm{_fmt(dm)}_rf{_fmt(rf)}_e{_fmt(e)}_sh{_fmt(sh)}"


def build_grid(name: str, values: Mapping[str, Sequence[float]], source_mag: str = "dmag",
               source_size: str = "grid", lens_shape: str = "uniform", priors: Priors | None = None) -> Grid:
    """The grid ``name``: the full product of the five axes (``values[axis]`` for axis in AXES;
    an empty axis, drawn from a prior, enters as one NaN), with the modes of its per-task draws."""
    axes = [[float(v) for v in values[a]] or [float("nan")] for a in AXES]
    rows = list(itertools.product(*axes))
    ids = tuple(config_id(name, i, *row) for i, row in enumerate(rows))
    cols = np.array(rows, dtype=np.float64).reshape(len(rows), len(AXES))
    return Grid(name, ids, *(cols[:, j].copy() for j in range(len(AXES))), source_mag=str(source_mag),
                source_size=str(source_size), lens_shape=str(lens_shape), priors=priors or Priors())


def grid_from_record(rec: Mapping[str, Any]) -> Grid:
    """The grid of a plain mapping as stage 4a records it (name, axes, modes, priors)."""
    pri = Priors.from_config(rec["priors"]) if rec.get("priors") is not None else Priors()
    return build_grid(str(rec["name"]), {a: rec[a] for a in AXES}, str(rec.get("source_mag", "dmag")),
                      str(rec.get("source_size", "grid")), str(rec.get("lens_shape", "uniform")), pri)
