"""The parent selection on the mock survey's sweeps reproduces the mock's own LRG flags."""

from __future__ import annotations

import io

import numpy as np
import pyarrow.dataset as ds
import pytest
from astropy.io import fits

from dhs.mock_survey import sweeps
from dhs.mock_survey import tables as mock_tables
from dhs.mock_survey.plan import MockParams, plan_survey, region_splits
from dhs.parent import lrg
from dhs.parent.catalog import ParentSettings, process_catalog, shard_name
from dhs.parent.tables import write_tables

PARAMS = MockParams(seed=2026, n_bricks=3, brick_size_pix=300, galaxies_per_brick=12, stars_per_brick=2,
                    n_regions=3, psf_fwhm_r_range=(1.0, 1.6), depth_r_levels=(23.6, 24.2), split_seed=13)


def _run(tmp, files: dict[str, bytes], **kw) -> tuple[ParentSettings, list[dict], dict]:
    (tmp / "sweep").mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (tmp / "sweep" / name).write_bytes(data)
    s = ParentSettings(out_root=str(tmp / "parent"), chunk_rows=17, **kw)
    results = [process_catalog({"uri": str(tmp / "sweep" / n), "name": shard_name(i, n)}, s)
               for i, n in enumerate(sorted(files))]
    return s, results, write_tables(s, [r["shard"] for r in results])


@pytest.fixture(scope="module")
def mock(tmp_path_factory):
    plans = plan_survey(PARAMS)
    files = sweeps.sweep_files([sweeps.brick_rows(p, sweeps.brick_maps(p)) for p in plans])
    tmp = tmp_path_factory.mktemp("parent_mock")
    s, results, tabs = _run(tmp, files)
    parent = ds.dataset(s.parent_dir).to_table().to_pandas()
    truth = mock_tables.parent_catalog(plans, region_splits(PARAMS)).to_pandas()
    return {"plans": plans, "files": files, "results": results, "tables": tabs, "parent": parent,
            "truth": truth, "tmp": tmp}


def test_parent_rows_are_the_mock_galaxies_with_their_flags(mock):
    parent, truth = mock["parent"], mock["truth"]
    m = truth.merge(parent, on=["brickname", "objid"], how="outer", suffixes=("_mock", ""), indicator=True)
    assert (m["_merge"] == "both").all(), m.loc[m["_merge"] != "both", ["brickname", "objid", "_merge"]]
    for flag in lrg.VARIANT_CUTS:
        assert (m[f"{flag}_mock"] == m[flag]).all(), flag
    assert m["is_v3_color_relaxed"].sum() > 0 and (~m["is_v3_color_relaxed"]).sum() > 0
    np.testing.assert_allclose(m["zmag_mw"], m["zmag_mw_mock"], atol=1e-5)
    np.testing.assert_allclose(m["rz"], m["rz_mock"], atol=1e-5)
    np.testing.assert_allclose(m["ra"], m["ra_mock"], atol=1e-9)


def test_desi_flag_follows_the_published_cuts(mock):
    """is_lrg_desi against the cuts written out here from the mock's true MW-corrected magnitudes."""
    parent, truth = mock["parent"], mock["truth"]
    fib = {}
    for data in mock["files"].values():
        with fits.open(io.BytesIO(data)) as h:
            t = h[1].data
            for b, o, f, tr in zip(t["BRICKNAME"], t["OBJID"], t["FIBERFLUX_Z"], t["MW_TRANSMISSION_Z"]):
                fib[(b, int(o))] = 22.5 - 2.5 * np.log10(float(f) / float(tr))
    m = truth.merge(parent[["brickname", "objid", "is_lrg_desi"]], on=["brickname", "objid"])
    g, r, z, w1 = (m[f"{b}mag_mw"].to_numpy() for b in ("g", "r", "z", "w1"))
    zfib = np.array([fib[(b, o)] for b, o in zip(m["brickname"], m["objid"])])
    expect = ((zfib < 21.6) & (z - w1 > 0.8 * (r - z) - 0.6) & ((g - w1 > 2.9) | (r - w1 > 1.8))
              & (((r - w1 > 1.8 * (w1 - 17.14)) & (r - w1 > w1 - 16.33)) | (r - w1 > 3.3)))
    np.testing.assert_array_equal(m["is_lrg_desi"].to_numpy(), expect)
    assert 0 < expect.sum() < len(expect)


def test_stars_and_catalog_only_objects_are_rejected(mock):
    n_objects = sum(r["rows_read"] for r in mock["results"])
    assert n_objects > len(mock["truth"]) + 3 * 9  # stars and extras were there to reject
    assert len(mock["parent"]) == len(mock["truth"])
    steps = {}
    for r in mock["results"]:
        for k, v in r["funnel"]:
            steps[k] = steps.get(k, 0) + v
    # each kind of reject removed something: no-data rows (zero inverse variance), Gaia-bright
    # stars, masked rows
    assert steps["FLUX_X > 0 and FLUX_IVAR_X > 0 (r, z, W1)"] < steps["catalog rows"]
    assert steps["GAIA_PHOT_G_MEAN_MAG == 0 or > 18"] < steps["NOBS_G, NOBS_R, NOBS_Z > 0"]
    assert steps["MASKBITS 1, 12, 13 clear"] < steps["FIBERTOTFLUX_Z < 100 nmgy (z_fibtot > 17.5)"]


def test_brick_and_region_tables(mock):
    bricks = mock["tables"]["bricks_with_region.parquet"].to_pandas().set_index("brickname")
    truth = mock_tables.bricks_with_region(mock["plans"], region_splits(PARAMS)).to_pandas().set_index("brickname")
    assert sorted(bricks.index) == sorted(truth.index)
    for b in ("g", "r", "z"):
        np.testing.assert_allclose(bricks.loc[truth.index, f"psfsize_{b}"], truth[f"psfsize_{b}"], rtol=0.04)
        np.testing.assert_allclose(bricks.loc[truth.index, f"psfdepth_{b}"], truth[f"psfdepth_{b}"], rtol=0.12)
    np.testing.assert_allclose(bricks.loc[truth.index, "ebv"], truth["ebv"], rtol=1e-5)
    assert (bricks.loc[truth.index, "n_parent"] == truth["n_lrg"]).all()
    sel = mock["tables"]["region_selections.parquet"].to_pandas()
    regions_all = set(sel.loc[sel.selection_set_id == "all_regions", "region_id"])
    assert regions_all == set(bricks["region_id"])
    assert set(sel.selection_set_id) == {"all_regions", "topk_density", "topk_psf_weighted", "topk_n_lrg"}
    # the parent rows carry their brick's region and split
    p = mock["parent"].merge(bricks[["region_id", "region_split"]], left_on="brickname", right_index=True,
                             suffixes=("", "_brick"))
    assert (p.region_id == p.region_id_brick).all() and (p.region_split == p.region_split_brick).all()


def test_magnitude_depths_in_a_catalog_are_converted(mock, tmp_path):
    """PSFDEPTH_X written as 5-sigma magnitudes: recognised, converted, and the same brick depths."""
    files = {}
    for name, data in mock["files"].items():
        with fits.open(io.BytesIO(data)) as h:
            t = h[1].data.copy()
            for b in ("G", "R", "Z"):
                d = t[f"PSFDEPTH_{b}"].astype(np.float64)
                t[f"PSFDEPTH_{b}"] = np.where(d > 0, 22.5 - 2.5 * np.log10(5 / np.sqrt(np.where(d > 0, d, 1))), 0)
            buf = io.BytesIO()
            fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU(t)]).writeto(buf)
            files[name] = buf.getvalue()
    _, results, tabs = _run(tmp_path, files)
    assert any("PSFDEPTH" in n.upper() or "psfdepth" in n for r in results for n in r["unit_notes"])
    a = tabs["bricks_with_region.parquet"].to_pandas().set_index("brickname")
    b = mock["tables"]["bricks_with_region.parquet"].to_pandas().set_index("brickname")
    np.testing.assert_allclose(a.loc[b.index, "psfdepth_r"], b["psfdepth_r"], rtol=1e-4)
