"""load_bank: a pure, cached, read-only load that 4c workers share."""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor

import h5py
import numpy as np
import pytest

from dhs.cosmos.bank import BankError, load_bank


def test_load_is_cached_read_only_and_thread_safe(embedded_bank):
    path = embedded_bank[0]
    load_bank.cache_clear()
    with ThreadPoolExecutor(8) as pool:
        banks = list(pool.map(lambda _: load_bank(path), range(16)))
    assert all(b is banks[0] for b in banks)
    bank = banks[0]
    with pytest.raises(ValueError):
        bank.images[0, 0, 0] = 1.0
    idx = len(bank) // 2
    assert bank.images[idx].shape == (96, 96) and 0.1 <= bank.hlr_arcsec[idx] <= 1.0
    with h5py.File(path, "r") as h5:
        np.testing.assert_array_equal(h5["images"][idx], bank.images[idx])


def test_a_rewritten_file_is_reloaded(embedded_bank, tmp_path):
    from dhs.cosmos.build import build_bank

    from .conftest import settings

    path = tmp_path / "bank.h5"
    shutil.copy(embedded_bank[0], path)
    first = load_bank(str(path))
    build_bank(settings(max_galaxies=5), str(path))
    second = load_bank(str(path))
    assert len(second) == 5 and len(first) > 5


def test_missing_or_malformed_banks_say_how_to_fix(tmp_path):
    with pytest.raises(BankError, match="stage=cosmos_bank"):
        load_bank(str(tmp_path / "nope.h5"))
    bad = tmp_path / "bad.h5"
    with h5py.File(bad, "w") as h5:
        h5["images"] = np.zeros((2, 4, 4), np.float32)
    with pytest.raises(BankError, match="not a COSMOS bank"):
        load_bank(str(bad))
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not hdf5")
    with pytest.raises(BankError, match="force=true"):
        load_bank(str(junk))
