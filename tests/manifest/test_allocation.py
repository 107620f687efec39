"""Grids, water-filling and per-config stratified allocation."""

from __future__ import annotations

import numpy as np

from dhs.manifest.allocation import quotas, waterfill_level
from dhs.stages.settings import grid as grid_of


def test_grid_product_and_config_ids(compose):
    grid = grid_of(compose(["grid=grid_medium"]))
    assert len(grid) == 5 * 4 * 3 * 3 * 2
    assert grid.config_ids[0] == "grid_medium_0000_te0.25_dm0.5_rf0.05_e0.0_sh0.0"
    assert grid.config_ids[1] == "grid_medium_0001_te0.25_dm0.5_rf0.05_e0.0_sh0.03"
    assert grid.config_ids[-1] == "grid_medium_0359_te1.2_dm2.0_rf0.2_e0.4_sh0.03"
    assert len(set(grid.config_ids)) == len(grid)
    assert grid.theta_e[-1] == 1.2 and grid.shear[1] == 0.03


def test_waterfill_level():
    counts = np.array([1, 10, 3, 0, 7])
    assert waterfill_level(counts, 10) == 3  # 1 + 3 + 3 + 0 + 3 = 10
    assert waterfill_level(counts, 12) == 4  # 1 + 4 + 3 + 4 = 12


def test_quotas_respect_capacity_and_spread_remainders():
    counts = np.array([0, 2, 50, 50, 50, 1, 0, 9])
    q = quotas(counts, np.full(48, 5))
    assert (q.sum(axis=1) == 5).all()
    assert (q <= counts).all() and (q[:, counts == 0] == 0).all()
    assert (q.sum(axis=0)[counts > 0] > 0).all()  # every non-empty stratum used
    # remainders rotate: eligible strata get (nearly) the same number of slots
    used = q.sum(axis=0)[[2, 3, 4, 7]]
    assert used.max() - used.min() <= 1 + (used.max() // 10)
    # asking more than the pool gives the whole pool
    q = quotas(np.array([1, 2]), np.array([10, 2]))
    assert q.tolist() == [[1, 2], [1, 1]]
