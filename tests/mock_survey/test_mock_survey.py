"""stage=mock_survey: DR10 format, noise, photometry, PSF, masks, tables, determinism, skipping."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from scipy.optimize import least_squares

import dhs.config.schema  # noqa: F401  (registers the structured configs)
from dhs import schema
from dhs.context import make_context
from dhs.stages.settings import mock_params
from dhs.survey import astropy_reader, brickfile, bricks, files, fits_checks, windows
from dhs.survey import maskbits as mb
from dhs.mock_survey.plan import (MOCK_BANDS, PRIMARY_BORDER_PIX, plan_survey,
                             psf_sum_sq)
from dhs.survey.wcs import brick_wcs, nearest_pixel

SMALL = ["mock_survey.n_bricks=3", "mock_survey.n_regions=3", "mock_survey.brick_size_pix=240",
         "mock_survey.galaxies_per_brick=6", "mock_survey.stars_per_brick=2",
         "mock_survey.depth_r_levels=[24.6,25.2]"]


def _compose(root: Path, extra: list[str] = ()):  # type: ignore[assignment]
    from hydra import compose, initialize_config_module

    with initialize_config_module(config_module="dhs.conf", version_base=None):
        return compose(config_name="config", overrides=["stage=mock_survey", f"paths.data_root={root}",
                                                        "cluster.n_jobs=1", *SMALL, *extra])


@pytest.fixture(scope="module")
def survey(tmp_path_factory):
    root = tmp_path_factory.mktemp("mock")
    cfg = _compose(root)
    from dhs.stages import mock_survey

    summary = mock_survey.run(cfg, make_context(root / "run"))
    plans = plan_survey(mock_params(cfg))
    return {"root": root, "cfg": cfg, "summary": summary, "plans": plans,
            "coadd": str(root / "mock_survey" / "coadd"), "tables": root / "mock_survey" / "tables"}


def _open(s: dict, brick: str, kind: str, band: str | None = None) -> astropy_reader.BrickFile:
    return brickfile.open_brick_file(files.coadd_url(s["coadd"], brick, kind, band), brick=brick, kind=kind)


def _tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and not p.name.startswith("_")}


def test_summary_counts(survey) -> None:
    s = survey["summary"]
    assert s["bricks"] == 3 and s["files"] == 3 * 10 + 3 + s["sweep_files"] and s["sweep_files"] >= 1
    assert s["galaxies"] == 18 and s["stars"] == 3 * 3
    assert s["bytes_written"] > 0


def test_bricks_pass_the_reader_checks(survey) -> None:
    for plan in survey["plans"]:
        name = plan["brickname"]
        assert bricks.radec_to_brickname(plan["ra"], plan["dec"]) == name and plan["dec"] <= 32
        ref = brick_wcs(plan["ra"], plan["dec"], 240)
        for kind, band, _ in files.brick_files(name, ("image", "invvar", "psfsize", "maskbits"), MOCK_BANDS):
            with _open(survey, name, kind, band) as bf:
                assert bf.index == 1 and bf.shape == (240, 240)
                assert tuple(bf.wcs.wcs.crpix) == (120.5, 120.5)
                assert np.allclose(bf.wcs.wcs.cd, ref.wcs.cd, rtol=0, atol=1e-15)
                assert np.allclose(bf.wcs.wcs.crval, [plan["ra"], plan["dec"]], rtol=0, atol=1e-12)
                full = bf.read()
                assert np.array_equal(bf.section(37, 151, 90, 203), full[37:151, 90:203])
                if kind == "image":
                    assert bf.header["MAGZERO"] == 22.5 and full.dtype == np.float32
                if kind == "maskbits":
                    assert full.dtype == np.int32
                    assert bf.extnames()[1:] == ["MASKBITS", "WISEM1", "WISEM2"]
                    w1, w2 = bf.read("WISEM1"), bf.read("WISEM2")
                    assert np.array_equal(w1 > 0, (full & mb.WISEM1) != 0)
                    assert np.array_equal(w2 > 0, (full & mb.WISEM2) != 0)
    with pytest.raises(fits_checks.BrickFileError, match="BRICKNAM"):
        p0, p1 = survey["plans"][0]["brickname"], survey["plans"][1]["brickname"]
        brickfile.open_brick_file(files.coadd_url(survey["coadd"], p0, "image", "r"), brick=p1)


def _blank(plan: dict) -> np.ndarray:
    """Pixels far from every object and mask (True = blank sky)."""
    n = plan["size"]
    yy, xx = np.mgrid[0:n, 0:n]
    ok = np.ones((n, n), bool)
    for g in plan["galaxies"]:
        ok &= (xx - g["x"]) ** 2 + (yy - g["y"]) ** 2 > (6 * g["re_arcsec"] / 0.262 + 15) ** 2
    ps = plan["psf_star"]
    ok &= (xx - ps["x"]) ** 2 + (yy - ps["y"]) ** 2 > 20 ** 2
    for s in plan["stars"]:
        ok &= (xx - s["x"]) ** 2 + (yy - s["y"]) ** 2 > (1.2 * s["medium_r"]) ** 2
    return ok


@pytest.mark.parametrize("band", MOCK_BANDS)
def test_sky_noise_matches_invvar(survey, band: str) -> None:
    chi = []
    for plan in survey["plans"]:
        with _open(survey, plan["brickname"], "image", band) as im, \
                _open(survey, plan["brickname"], "invvar", band) as iv:
            img, ivar = im.read().astype(np.float64), iv.read().astype(np.float64)
        sel = _blank(plan) & (ivar > 0)
        assert sel.sum() > 5000
        chi.append(img[sel] * np.sqrt(ivar[sel]))
        assert np.all(img[ivar == 0] == 0) and (ivar == 0).sum() >= 8 * 6
    chi = np.concatenate(chi)
    assert abs(np.std(chi) - 1.0) < 0.05
    assert abs(np.mean(chi)) < 0.05


def test_point_source_depth_matches_table(survey) -> None:
    table = pq.read_table(survey["tables"] / "bricks_with_region.parquet").to_pylist()
    for row, plan in zip(table, survey["plans"]):
        assert row["brickname"] == plan["brickname"]
        c = 120
        for band in MOCK_BANDS:
            with _open(survey, plan["brickname"], "invvar", band) as iv, \
                    _open(survey, plan["brickname"], "psfsize", band) as ps:
                ivar, fwhm = float(iv.section(c, c + 1, c, c + 1)[0, 0]), float(ps.section(c, c + 1, c, c + 1)[0, 0])
            assert fwhm == pytest.approx(row[f"psfsize_{band}"], rel=0.01)
            assert ivar * psf_sum_sq(fwhm, 0.262) == pytest.approx(row[f"psfdepth_{band}"], rel=0.02)
        m5 = 22.5 - 2.5 * np.log10(5 / np.sqrt(row["psfdepth_r"]))
        assert min(abs(m5 - 24.6), abs(m5 - 25.2)) < 1e-6


def test_galaxy_aperture_flux_matches_catalog(survey) -> None:
    parent = pq.read_table(survey["tables"] / "parent_catalog.parquet").to_pylist()
    checked = 0
    for plan in survey["plans"]:
        rows = {r["objid"]: r for r in parent if r["brickname"] == plan["brickname"]}
        for band in ("r", "z"):
            with _open(survey, plan["brickname"], "image", band) as im, \
                    _open(survey, plan["brickname"], "invvar", band) as iv, \
                    _open(survey, plan["brickname"], "psfsize", band) as ps:
                img, ivar, fwhm = im.read().astype(np.float64), iv.read(), ps.read()
                wcs = im.wcs
            yy, xx = np.mgrid[0:240, 0:240]
            for g in plan["galaxies"]:
                row = rows[g["objid"]]
                x, y = (float(v) for v in wcs.world_to_pixel_values(row["ra"], row["dec"]))
                # the profile is truncated at 5 r_e; 2.5 FWHM holds > 99 % of the Moffat PSF
                rad = 5 * row["shape_r"] / 0.262 + 2.5 * fwhm[int(y), int(x)] / 0.262
                others = [o for o in plan["galaxies"] if o is not g]
                if any(np.hypot(o["x"] - x, o["y"] - y) < rad + 4 * o["re_arcsec"] / 0.262 for o in others):
                    continue
                ap = (xx - x) ** 2 + (yy - y) ** 2 <= rad ** 2
                if (ivar[ap] == 0).any() or np.hypot(plan["psf_star"]["x"] - x, plan["psf_star"]["y"] - y) < rad + 15:
                    continue
                noise = np.sqrt(np.sum(1.0 / ivar[ap]))
                flux = row[f"flux_{band}"]
                if noise > 0.015 * flux:
                    continue
                assert img[ap].sum() == pytest.approx(flux, rel=0.05)
                checked += 1
    assert checked >= 2


def _moffat_fit_fwhm(stamp: np.ndarray) -> float:
    """FWHM (pixels) of a circular Moffat (beta 3.5) fitted to a star stamp (pixel centres)."""
    n = stamp.shape[0]
    yy, xx = np.mgrid[0:n, 0:n] - n // 2

    def resid(p):
        amp, x0, y0, fwhm = p
        alpha = fwhm / (2 * np.sqrt(2 ** (1 / 3.5) - 1))
        return (amp * (1 + ((xx - x0) ** 2 + (yy - y0) ** 2) / alpha ** 2) ** -3.5 - stamp).ravel()

    return float(least_squares(resid, [stamp.max(), 0, 0, 4.0]).x[3])


def test_psfsize_matches_star_fwhm(survey) -> None:
    for plan in survey["plans"]:
        ps = plan["psf_star"]
        for band in MOCK_BANDS:
            with _open(survey, plan["brickname"], "image", band) as im, \
                    _open(survey, plan["brickname"], "psfsize", band) as pf, \
                    _open(survey, plan["brickname"], "maskbits") as mk:
                ix, iy = (int(v) for v in nearest_pixel(im.wcs, ps["ra"], ps["dec"]))
                star = windows.cutout(im, ps["ra"], ps["dec"], 25)
                assert star.ok and (star.data.max() == star.data[12, 12])
                assert not (mk.section(iy - 3, iy + 4, ix - 3, ix + 4) & mb.SATUR[band]).any()
                measured = _moffat_fit_fwhm(star.data.astype(np.float64)) * 0.262
                fwhm = pf.read()
            assert measured == pytest.approx(float(fwhm[iy, ix]), rel=0.03)
            for g in plan["galaxies"]:
                assert float(fwhm[int(g["y"] + 0.5), int(g["x"] + 0.5)]) == pytest.approx(measured, rel=0.05)


def test_masks(survey) -> None:
    n, bd = 240, PRIMARY_BORDER_PIX
    seen = 0
    for plan in survey["plans"]:
        with _open(survey, plan["brickname"], "maskbits") as mk:
            m = mk.read()
        npr = (m & mb.NPRIMARY) != 0
        assert npr[:bd].all() and npr[-bd:].all() and npr[:, :bd].all() and npr[:, -bd:].all()
        assert not npr[bd:n - bd, bd:n - bd].any()
        assert ((m & mb.MEDIUM) != 0).any() and ((m & mb.BRIGHT) != 0).any()
        s0 = plan["stars"][0]
        core = m[int(s0["y"]), int(s0["x"])]
        assert core & mb.BRIGHT and core & mb.SATUR_R and core & mb.SATUR_Z
        seen += int(((m & mb.WISEM1) != 0).sum() > 0)
        for g in plan["galaxies"]:  # galaxies are never in a BRIGHT mask or saturated
            v = m[int(g["y"] + 0.5), int(g["x"] + 0.5)]
            assert not v & (mb.BRIGHT | mb.SATUR_G | mb.SATUR_R | mb.SATUR_Z | mb.NPRIMARY)
            assert 50 <= g["x"] <= n - 51 and 50 <= g["y"] <= n - 51
    assert seen == 3


def test_tables_of_the_default_survey() -> None:
    from dhs.mock_survey import tables as mock_tables
    from dhs.mock_survey.plan import region_splits

    cfg = _compose(Path("/nonexistent"), [f"mock_survey.{k}={v}" for k, v in
                                          (("n_bricks", 12), ("n_regions", 6), ("brick_size_pix", 400),
                                           ("galaxies_per_brick", 40), ("depth_r_levels", "[23.6,24.2]"))])
    p = mock_params(cfg)
    plans = plan_survey(p)
    splits = region_splits(p)
    parent = mock_tables.parent_catalog(plans, splits)
    bricks_t = mock_tables.bricks_with_region(plans, splits)
    sel = mock_tables.region_selections(plans, splits, parent)
    assert parent.schema.equals(schema.arrow_schema(schema.MOCK_PARENT), check_metadata=False)
    assert set(parent.column("region_split").to_pylist()) == {"train", "val", "test"}
    v3 = np.array(parent.column("is_v3_color_relaxed").to_pylist())
    assert 0.7 < v3.mean() < 1.0
    assert all(parent.column("is_v5_very_relaxed").to_pylist())
    r = np.array(parent.column("rmag").to_pylist())
    rz = np.array(parent.column("rz").to_pylist())
    assert 19.5 <= r.min() and r.max() <= 22.3 and 1.0 <= rz.min() and rz.max() <= 2.0
    assert abs(np.median(r) - 21.1) < 0.35  # DR10 LRGs (docs/mock_survey.md)
    fw = {b: np.array(bricks_t.column(f"psfsize_{b}").to_pylist()) for b in MOCK_BANDS}
    assert len(np.unique(np.round(fw["r"], 1))) >= 3 and fw["r"].min() >= 1.0 and fw["r"].max() <= 1.6
    assert np.all(fw["g"] > fw["r"]) and np.all(fw["r"] > fw["z"])
    assert len(np.unique(np.round(bricks_t.column("psfdepth_r").to_numpy(), -1))) >= 2
    assert len(set(sel.column("selection_set_id").to_pylist())) >= 2
    for sid in set(sel.column("selection_set_id").to_pylist()):
        sub = sel.filter(sel.column("selection_set_id").to_numpy(zero_copy_only=False) == sid)
        assert set(sub.column("region_split").to_pylist()) == {"train", "val", "test"}
    names = set(parent.column("brickname").to_pylist())
    assert names == set(bricks_t.column("brickname").to_pylist())


@pytest.mark.slow
def test_skip_force_and_determinism(survey, tmp_path: Path) -> None:
    from dhs.stages import mock_survey

    again = mock_survey.run(survey["cfg"], make_context(tmp_path / "run1"))
    assert again["skipped_existing"]
    # same config built elsewhere with two workers: byte-identical files and tables
    cfg2 = _compose(tmp_path / "b", ["cluster.n_jobs=2"])
    built = mock_survey.run(cfg2, make_context(tmp_path / "run2"))
    assert not built.get("skipped_existing")
    a = _tree_digest(survey["root"] / "mock_survey")
    b = _tree_digest(tmp_path / "b" / "mock_survey")
    assert a == b and len(a) == survey["summary"]["files"]  # bricks, tables and sweeps
    # force rebuilds in place, a different seed changes the bytes and removes stale bricks
    forced = mock_survey.run(_compose(tmp_path / "b", ["force=true"]), make_context(tmp_path / "run3"))
    assert not forced.get("skipped_existing") and _tree_digest(tmp_path / "b" / "mock_survey") == a
    other = mock_survey.run(_compose(tmp_path / "b", ["mock_survey.seed=7"]), make_context(tmp_path / "run4"))
    c = _tree_digest(tmp_path / "b" / "mock_survey")
    assert not other.get("skipped_existing") and len(c) >= 33 and c != a
