"""Wilson intervals: astropy agreement, hand-computed values, empty bins."""

from __future__ import annotations

import math

import numpy as np
import pytest
from astropy.stats import binom_conf_interval

from dhs.completeness.surfaces import confidence_level, rate, wilson_interval


def test_confidence_level_from_z():
    assert confidence_level(1.96) == pytest.approx(0.950004, abs=1e-6)
    assert confidence_level(1.0) == pytest.approx(0.682689, abs=1e-6)


@pytest.mark.parametrize("z", [1.0, 1.96, 3.0])
def test_matches_astropy(z):
    k = np.array([0, 1, 5, 37, 99, 100])
    n = np.array([10, 10, 10, 80, 100, 100])
    lo, hi = wilson_interval(k, n, z)
    ref = binom_conf_interval(k, n, math.erf(z / math.sqrt(2)), interval="wilson")
    np.testing.assert_allclose(lo, ref[0], rtol=1e-12)
    np.testing.assert_allclose(hi, ref[1], rtol=1e-12)
    assert np.all(lo <= k / n) and np.all(k / n <= hi)


def test_hand_computed_wilson():
    # Wilson: (p + z^2/2n +- z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n), p = 5/10, z = 1.96
    z, n, p = 1.96, 10, 0.5
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    lo, hi = wilson_interval([5], [10], z)
    assert (lo[0], hi[0]) == pytest.approx((centre - half, centre + half), abs=1e-12)
    assert (lo[0], hi[0]) == pytest.approx((0.236590, 0.763410), abs=1e-6)
    # k = 0: lower bound 0, upper (z^2/n) / (1 + z^2/n) = 0.27754
    lo, hi = wilson_interval([0], [10], z)
    assert lo[0] == pytest.approx(0.0, abs=1e-12) and hi[0] == pytest.approx(0.38416 / 1.38416, abs=1e-9)


def test_empty_bins_are_nan_and_bad_counts_rejected():
    lo, hi = wilson_interval([0, 3], [0, 4])
    assert np.isnan(lo[0]) and np.isnan(hi[0]) and lo[1] > 0
    assert np.isnan(rate([0], [0])[0]) and rate([3], [4])[0] == 0.75
    with pytest.raises(ValueError, match="0 <= k <= n"):
        wilson_interval([5], [4])
