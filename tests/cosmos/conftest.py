"""Fixtures for the COSMOS bank tests: settings, the embedded bank, broken catalog copies."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest

from dhs.config.schema import CosmosBankConfig
from dhs.cosmos.build import BankSettings
from dhs.cosmos.catalog import embedded_root

AEGIS = Path(__file__).resolve().parents[1] / "data" / "galsim_aegis"
CATALOG = "real_galaxy_catalog_26_extension_example.fits"
IMAGES = "real_galaxy_images_extension.fits"


def settings(**overrides) -> BankSettings:
    """The default cosmos_bank settings (the structured config's defaults) with overrides."""
    return BankSettings(**{**dataclasses.asdict(CosmosBankConfig()), **overrides})


@pytest.fixture(scope="session")
def embedded_bank(tmp_path_factory):
    """(bank path, build summary) of the default bank built from the 100 embedded galaxies."""
    from dhs.cosmos.build import build_bank

    path = tmp_path_factory.mktemp("embedded") / "cosmos_bank.h5"
    summary = build_bank(settings(), str(path))
    return str(path), summary


def copy_embedded(dest: Path) -> Path:
    """A writable copy of the embedded RealGalaxyCatalog folder."""
    shutil.copytree(embedded_root(), dest)
    for f in dest.iterdir():
        f.chmod(0o644)
    return dest


def edit_catalog(folder: Path, edit) -> None:
    """Apply ``edit(table_data)`` to the catalog in ``folder`` and write it back with astropy."""
    from astropy.io import fits

    path = folder / CATALOG
    with fits.open(path) as hdul:
        data = hdul[1].data.copy()
        edit(data)
        fits.HDUList([hdul[0].copy(), fits.BinTableHDU(data, header=hdul[1].header)]).writeto(
            path, overwrite=True)


def edit_images(folder: Path, edit) -> None:
    """Apply ``edit(hdu_list)`` to the image file in ``folder`` (an in-memory list of HDUs)."""
    from astropy.io import fits

    path = folder / IMAGES
    with fits.open(path) as hdul:
        hdus = [h.copy() for h in hdul]
    edit(hdus)
    hdus[0] = fits.PrimaryHDU(data=hdus[0].data, header=hdus[0].header)
    fits.HDUList(hdus).writeto(path, overwrite=True)


def spearman(a, b) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(np.asarray(a), np.asarray(b))[0])
