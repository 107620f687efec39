"""Building banks from real HST galaxies: the 100 embedded COSMOS galaxies and AEGIS."""

from __future__ import annotations

import json
import os

import h5py
import numpy as np
import pytest

from dhs.cosmos import build as cosmos_bank
from dhs.config.schema import ConfigError
from dhs.cosmos.build import build_bank, parts_dir
from dhs.cosmos.catalog import CatalogError
from dhs.cosmos.bank import load_bank

from .conftest import AEGIS, CATALOG, copy_embedded, edit_catalog, edit_images, settings, spearman


def test_embedded_bank_hlr_tracks_catalog_flux_radius(embedded_bank):
    path, summary = embedded_bank
    bank = load_bank(path)
    assert summary["read"] == 100 and len(bank) == summary["kept"] >= 40
    assert summary["skipped"].get("low_snr", 0) + summary["skipped"].get("truncated", 0) >= 40
    assert summary["kept"] + summary["skipped_total"] + summary["hlr_out_of_range"] == 100
    # flux_radius (SExtractor, pixels) comes from the companion table, matched on IDENT
    rho = spearman(bank.hlr_arcsec, bank.columns["flux_radius"])
    assert rho >= 0.8, rho
    assert np.all((bank.hlr_arcsec >= 0.1) & (bank.hlr_arcsec <= 1.0))
    # the radii are in arcsec: within a factor 2 of flux_radius * 0.03 arcsec for most galaxies
    ratio = bank.hlr_arcsec / (bank.columns["flux_radius"] * 0.03)
    assert 0.5 < np.median(ratio) < 2.0


def test_embedded_bank_templates_columns_and_attributes(embedded_bank):
    path, summary = embedded_bank
    bank = load_bank(path)
    assert bank.images.shape == (len(bank), 96, 96) and bank.images.dtype == np.float32
    sums = bank.images.sum(axis=(1, 2), dtype=np.float64)
    np.testing.assert_allclose(sums, 1.0, atol=1e-5)
    # light centred: centroid of the positive flux within 1.5 px of (47.5, 47.5)
    yy, xx = np.indices((96, 96))
    pos = np.clip(bank.images.astype(np.float64), 0, None)
    cy = (pos * yy).sum(axis=(1, 2)) / pos.sum(axis=(1, 2))
    cx = (pos * xx).sum(axis=(1, 2)) / pos.sum(axis=(1, 2))
    assert np.median(np.abs(cy - 47.5)) < 1.5 and np.median(np.abs(cx - 47.5)) < 1.5
    assert bank.pixscale == 0.03 and bank.stamp_size == 96
    for col in ("ident", "mag", "hlr_arcsec", "flux_radius", "zphot", "hsc_g", "hsc_i", "hsc_y"):
        assert len(bank.columns[col]) == len(bank)
    assert np.all(np.diff(bank.columns["catalog_row"]) > 0)  # catalog order
    assert len(np.unique(bank.ident)) == len(bank)
    assert int(bank.attrs["n_sources"]) == len(bank)
    config = json.loads(bank.attrs["config"])
    assert config["stamp_size"] == 96 and config["input"].startswith("embedded:")
    sha = json.loads(bank.attrs["input_sha256"])
    assert sha[CATALOG].startswith("b73b0c3c546774cf")
    assert sha["real_galaxy_images_extension.fits"].startswith("ae01f2d7fa66e5c9")
    with h5py.File(path, "r") as h5:
        ds = h5["images"]
        assert ds.chunks == (1, 96, 96) and ds.compression == "gzip" and ds.maxshape[0] is None
    assert not os.path.exists(parts_dir(path))


@pytest.mark.parametrize("band", ["F606w", "F814w"])
def test_aegis_catalogs_build(tmp_path, band):
    out = tmp_path / f"aegis_{band}.h5"
    summary = build_bank(settings(input=str(AEGIS), catalog_name=f"AEGIS_{band}_catalog.fits"),
                         str(out))
    bank = load_bank(str(out))
    assert summary["read"] == 5 and len(bank) == summary["kept"] >= 4
    np.testing.assert_allclose(bank.images.sum(axis=(1, 2), dtype=np.float64), 1.0, atol=1e-5)
    sha = json.loads(bank.attrs["input_sha256"])
    assert {f"AEGIS_{band}_images_01.fits", f"AEGIS_{band}_images_02.fits"} <= set(sha)


def test_aegis_bands_agree_on_sizes(tmp_path):
    banks = {}
    for band in ("F606w", "F814w"):
        out = tmp_path / f"{band}.h5"
        build_bank(settings(input=str(AEGIS), catalog_name=f"AEGIS_{band}_catalog.fits"), str(out))
        banks[band] = load_bank(str(out))
    a, b = banks["F606w"], banks["F814w"]
    common, ia, ib = np.intersect1d(a.ident, b.ident, return_indices=True)
    assert len(common) >= 4
    # the same galaxies through two filters: same size ranking, radii within 30 %
    assert spearman(a.hlr_arcsec[ia], b.hlr_arcsec[ib]) >= 0.9
    np.testing.assert_allclose(a.hlr_arcsec[ia], b.hlr_arcsec[ib], rtol=0.3)


def test_ambiguous_folder_asks_for_catalog_name(tmp_path):
    with pytest.raises(CatalogError, match="catalog_name"):
        build_bank(settings(input=str(AEGIS)), str(tmp_path / "x.h5"))


def test_pixel_scale_mismatch_names_both_values_and_file(tmp_path):
    with pytest.raises(CatalogError) as err:
        build_bank(settings(pixscale_arcsec=0.05), str(tmp_path / "x.h5"))
    msg = str(err.value)
    assert "0.03" in msg and "0.05" in msg and CATALOG in msg

    folder = copy_embedded(tmp_path / "scale")

    def rescale(data):
        data["PIXEL_SCALE"][10:] = 0.06

    edit_catalog(folder, rescale)
    with pytest.raises(CatalogError) as err:
        build_bank(settings(input=str(folder)), str(tmp_path / "y.h5"))
    msg = str(err.value)
    assert "0.06" in msg and "0.03" in msg and str(folder / CATALOG) in msg
    assert not (tmp_path / "y.h5").exists()


def test_broken_galaxies_are_skipped_and_counted(tmp_path, embedded_bank):
    folder = copy_embedded(tmp_path / "broken")
    from astropy.io import fits

    def break_catalog(data):
        data["GAL_HDU"][3] = 5000                     # no such HDU
        data["GAL_FILENAME"][5] = "no_such_file.fits"  # missing image file

    def break_images(hdus):
        hdus[7].data[10, 10] = np.nan                 # a NaN pixel
        hdus[9].data = -np.abs(hdus[9].data)          # only negative flux
        hdus[11] = fits.ImageHDU()                    # an HDU without pixels

    edit_catalog(folder, break_catalog)
    edit_images(folder, break_images)
    out = tmp_path / "bank.h5"
    summary = build_bank(settings(input=str(folder)), str(out))
    skipped = summary["skipped"]
    assert skipped["missing_hdu"] == 1 and skipped["missing_file"] == 1
    assert skipped["nan_pixels"] == 1 and skipped["empty_stamp"] == 1
    assert skipped.get("nonpositive_flux", 0) + skipped.get("undetected", 0) == 1
    bank = load_bank(str(out))
    assert not {3, 5, 7, 9, 11} & set(bank.columns["catalog_row"].tolist())
    clean = load_bank(embedded_bank[0])
    lost = {3, 5, 7, 9, 11} & set(clean.columns["catalog_row"].tolist())
    assert summary["read"] == 100 and summary["kept"] == len(clean) - len(lost)
    good = ~np.isin(clean.columns["catalog_row"], [3, 5, 7, 9, 11])
    np.testing.assert_array_equal(bank.images, clean.images[good])
    counts = json.loads(bank.attrs["counts"])
    assert counts["skipped"]["missing_hdu"] == 1


def test_interrupted_build_resumes_and_matches_a_clean_build(tmp_path, monkeypatch):
    out = tmp_path / "bank.h5"
    s = settings(chunk=16)
    calls = {"n": 0}
    real = cosmos_bank.prepare_template

    def dies_after_40(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 40:
            raise KeyboardInterrupt("killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(cosmos_bank, "prepare_template", dies_after_40)
    with pytest.raises(KeyboardInterrupt):
        build_bank(s, str(out))
    monkeypatch.setattr(cosmos_bank, "prepare_template", real)
    assert not out.exists()
    parts = sorted(p.name for p in (tmp_path / ".bank.h5.parts").iterdir())
    assert parts == ["_build.json", "part-000000.npz", "part-000001.npz"]

    summary = build_bank(s, str(out))
    assert summary["resumed_rows"] == 32 and summary["read"] == 100
    clean = tmp_path / "clean.h5"
    build_bank(s, str(clean))
    assert out.read_bytes() == clean.read_bytes()
    assert not (tmp_path / ".bank.h5.parts").exists()


def test_parts_of_a_different_configuration_are_not_reused(tmp_path, monkeypatch):
    out = tmp_path / "bank.h5"
    real = cosmos_bank.prepare_template
    calls = {"n": 0}

    def dies(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 20:
            raise KeyboardInterrupt("killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(cosmos_bank, "prepare_template", dies)
    with pytest.raises(KeyboardInterrupt):
        build_bank(settings(chunk=16), str(out))
    monkeypatch.setattr(cosmos_bank, "prepare_template", real)
    summary = build_bank(settings(chunk=16, hlr_max_arcsec=0.5), str(out))
    assert summary["resumed_rows"] == 0
    assert json.loads(load_bank(str(out)).attrs["config"])["hlr_max_arcsec"] == 0.5


def test_two_builds_are_identical(tmp_path, embedded_bank):
    out = tmp_path / "again.h5"
    build_bank(settings(), str(out))
    a, b = load_bank(embedded_bank[0]), load_bank(str(out))
    np.testing.assert_array_equal(a.images, b.images)
    assert a.attrs == b.attrs
    for name in a.columns:
        np.testing.assert_array_equal(a.columns[name], b.columns[name])
    with open(embedded_bank[0], "rb") as f:
        assert f.read() == out.read_bytes()


def test_max_galaxies_and_hlr_range(tmp_path, embedded_bank):
    full = load_bank(embedded_bank[0])
    out = tmp_path / "small.h5"
    summary = build_bank(settings(max_galaxies=10, chunk=8), str(out))
    small = load_bank(str(out))
    assert len(small) == summary["kept"] == 10
    np.testing.assert_array_equal(small.images, full.images[:10])

    narrow = tmp_path / "narrow.h5"
    summary = build_bank(settings(hlr_min_arcsec=0.15, hlr_max_arcsec=0.3), str(narrow))
    bank = load_bank(str(narrow))
    assert np.all((bank.hlr_arcsec >= 0.15) & (bank.hlr_arcsec <= 0.3))
    inside = (full.hlr_arcsec >= 0.15) & (full.hlr_arcsec <= 0.3)
    assert len(bank) == inside.sum()
    assert summary["hlr_out_of_range"] == 100 - len(bank) - summary["skipped_total"]


def test_bad_settings_fail_before_any_work(tmp_path):
    with pytest.raises(ConfigError, match="hlr_min_arcsec"):
        build_bank(settings(hlr_min_arcsec=1.0, hlr_max_arcsec=0.5), str(tmp_path / "x.h5"))
    with pytest.raises(ConfigError, match="stamp_size"):
        build_bank(settings(stamp_size=0), str(tmp_path / "x.h5"))
    assert list(tmp_path.iterdir()) == []
