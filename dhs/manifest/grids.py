"""Injection grids: the config_id product of ``cfg.grid`` (ARCHITECTURE section 4)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

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

    def __len__(self) -> int:
        return len(self.config_ids)


def config_id(grid: str, index: int, te: float, dm: float, rf: float, e: float, sh: float) -> str:
    """``{grid}_{index:04d}_te{theta}_dm{dmag}_rf{reff}_e{e}_sh{shear}`` (floats as Python repr)."""
    return f"{grid}_{index:04d}_te{float(te)!r}_dm{float(dm)!r}_rf{float(rf)!r}_e{float(e)!r}_sh{float(sh)!r}"


def build_grid(name: str, values: Mapping[str, Sequence[float]]) -> Grid:
    """The grid ``name``: the full product of the five axes (``values[axis]`` for axis in AXES)."""
    axes = [[float(v) for v in values[a]] for a in AXES]
    rows = list(itertools.product(*axes))
    ids = tuple(config_id(name, i, *row) for i, row in enumerate(rows))
    cols = np.array(rows, dtype=np.float64).reshape(len(rows), len(AXES))
    return Grid(name, ids, *(cols[:, j].copy() for j in range(len(AXES))))
