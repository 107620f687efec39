"""The COSMOS bank is opened and validated once in the driver before any 4c work: an empty or
malformed bank is one line and exit 2, through the real `dhs` console script."""

from __future__ import annotations

import h5py
import numpy as np

from dhs.cosmos.bank import write_bank
from tests.cli.test_user_errors import user_error


def _bank4c(mini_base, tmp_path, bank, name):
    return ["stage=4c", *mini_base, "source=cosmos", f"source.bank_path={bank}", f"inject.run_name={name}",
            f"paths.runs_root={tmp_path}/runs"]


def test_an_empty_bank_is_one_line_not_a_zero_division(mini_base, mini_root, tmp_path):
    bank = tmp_path / "empty.h5"
    assert write_bank(str(bank), [], stamp_size=8, attrs={"src_pixscale_arcsec": 0.03}) == 0
    line = user_error(_bank4c(mini_base, tmp_path, bank, "emptybank"), tmp_path)
    assert f"{bank} holds no galaxies" in line and "`dhs stage=cosmos_bank force=true`" in line
    assert "ZeroDivision" not in line
    assert not list(mini_root.glob("phase4c/*/emptybank"))  # nothing was written


def test_a_bank_with_bad_radii_is_one_line(mini_base, mini_root, tmp_path):
    bank = tmp_path / "bad.h5"
    n = 3
    part = {"images": np.full((n, 8, 8), 1 / 64, np.float32), "ident": np.arange(n),
            "catalog_row": np.arange(n), "mag": np.full(n, 22.0), "hlr_arcsec": np.array([0.2, np.nan, 0.3])}
    write_bank(str(bank), [part], stamp_size=8, attrs={"src_pixscale_arcsec": 0.03})
    with h5py.File(bank, "r") as h5:
        assert len(h5["images"]) == n
    line = user_error(_bank4c(mini_base, tmp_path, bank, "badbank2"), tmp_path)
    assert "1 galaxies have a non-finite or non-positive hlr_arcsec" in line
    assert not list(mini_root.glob("phase4c/*/badbank2"))
