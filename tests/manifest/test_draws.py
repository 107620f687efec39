"""Hash-based draws: pure functions of (key, salt, seed), in range, with sane distributions."""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import pytest

from dhs import draws


def test_hash_str_is_blake2b_little_endian():
    want = int.from_bytes(hashlib.blake2b(b"0001m002", digest_size=8).digest(), "little")
    assert draws.hash_str("0001m002") == want
    got = draws.hash_strings(pa.array(["0001m002", "x", "0001m002", None]))
    assert got[0] == got[2] == np.uint64(want) and got[1] != got[0]
    assert got[3] == np.uint64(draws.hash_str(""))


def test_mix_matches_the_splitmix64_reference():
    def ref(x: int) -> int:
        m = (1 << 64) - 1
        z = (x + 0x9E3779B97F4A7C15) & m
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & m
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & m
        return z ^ (z >> 31)

    xs = [0, 1, 2**63, 2**64 - 1, 123456789]
    assert [int(v) for v in draws.mix(np.array(xs, dtype=np.uint64))] == [ref(x) for x in xs]


def test_hex_ids_round_trip_and_validation():
    hi = np.array([0, 1, 2**64 - 1, 0xDEADBEEF], dtype=np.uint64)
    lo = np.array([5, 0, 7, 9], dtype=np.uint64)
    ids = draws.hex_ids(hi, lo)
    assert ids.to_pylist()[1] == f"{1:016x}{0:016x}"
    assert all(len(s) == 32 for s in ids.to_pylist())
    assert np.array_equal(draws.draw_key_from_task_ids(ids), hi)
    assert np.array_equal(draws.draw_key_from_task_ids(ids.slice(2)), hi[2:])
    with pytest.raises(ValueError, match="not 32 lowercase hex"):
        draws.draw_key_from_task_ids(["XYZ"])


def _fields(n: int, **change):
    base = {name: np.arange(n, dtype=np.uint64) * np.uint64(7) for name in draws.TASK_FIELDS}
    base.update(change)
    return base


def test_task_keys_depend_on_every_field_and_nothing_else():
    hi, lo = draws.task_keys(_fields(100))
    hi2, lo2 = draws.task_keys(_fields(100))
    assert np.array_equal(hi, hi2) and np.array_equal(lo, lo2)
    assert len(np.unique(hi)) == 100
    for name in draws.TASK_FIELDS:
        h, _ = draws.task_keys(_fields(100, **{name: np.arange(100, dtype=np.uint64) * np.uint64(7) + np.uint64(1)}))
        assert not np.any(h == hi), name
    # order of rows does not matter
    perm = np.random.default_rng(0).permutation(100)
    h, _ = draws.task_keys({k: v[perm] for k, v in _fields(100).items()})
    assert np.array_equal(h, hi[perm])


def test_uniform_and_normal_are_pure_and_well_distributed():
    key = draws.mix(np.arange(200_000, dtype=np.uint64))
    u = draws.uniform(key, "lens_e", 42)
    assert np.array_equal(u, draws.uniform(key, "lens_e", 42))
    assert u.min() >= 0 and u.max() < 1
    assert abs(u.mean() - 0.5) < 0.005 and abs(u.std() - np.sqrt(1 / 12)) < 0.005
    v = draws.uniform(key, "lens_phi", 42)
    assert abs(np.corrcoef(u, v)[0, 1]) < 0.01  # salts are independent
    assert not np.array_equal(u, draws.uniform(key, "lens_e", 43))  # the seed matters
    z = draws.normal(key, "src_gr", 42)
    assert np.isfinite(z).all() and abs(z.mean()) < 0.01 and abs(z.std() - 1) < 0.01


def test_frozen_draws_ranges_and_distributions():
    n = 100_000
    key = draws.mix(np.arange(n, dtype=np.uint64) + np.uint64(99))
    theta = np.full(n, 1.2)
    d = draws.frozen_draws(key, theta, 42)
    r = np.hypot(d["src_x_arcsec"], d["src_y_arcsec"])
    assert r.max() <= 0.8 * 1.2 + 1e-12
    # radius sqrt(u) * rmax: uniform over the disc, so (r / rmax)^2 is uniform
    assert abs(np.mean((r / 0.96) ** 2) - 0.5) < 0.01
    for a in ("src_phi_rad", "shear_phi_rad", "lens_phi_rad"):
        assert d[a].min() >= 0 and d[a].max() < np.pi
    assert d["lens_e"].min() >= 0.05 and d["lens_e"].max() <= 0.5
    for col, mu in (("src_gr", 0.2), ("src_rz", 0.1)):
        assert d[col].min() >= -0.5 and d[col].max() <= 1.5
        assert abs(d[col].mean() - mu) < 0.005 and abs(d[col].std() - 0.2) < 0.005
    assert d["task_seed64"].dtype == np.int64 and len(np.unique(d["task_seed64"])) == n
    d2 = draws.frozen_draws(key[::-1], theta, 42)
    assert np.array_equal(d2["src_gr"][::-1], d["src_gr"])
