"""targets=PATH: a list of ra/dec only runs 4a -> 4b -> 4c on the embedded survey, with the
documented defaults; magnitude depths in any input are recognised."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from astropy.io import fits

from dhs.stages import layout
from dhs.errors import DhsError
from dhs.io import datasets as dio
from dhs.manifest.targets import TargetSettings, load_targets
from dhs.parent import regions
from dhs.parent.units import InputUnitError, ivar_to_mag
from dhs.survey.bricks import radec_to_brickname
from tests.helpers import DEBUG_64, SMALL_SURVEY, compose_config, run_stage


@pytest.fixture(scope="module")
def survey(tmp_path_factory):
    root = tmp_path_factory.mktemp("targets")
    base = [f"paths.data_root={root}", *SMALL_SURVEY, "cluster.n_jobs=1"]
    run_stage(["stage=mock_survey", *base])
    parent = pq.read_table(root / "mock_survey" / "tables" / "parent_catalog.parquet").to_pandas()
    return root, base, parent


def test_a_list_of_ra_dec_runs_4a_4b_4c(survey, tmp_path):
    root, base, parent = survey
    pick = parent.iloc[::3]
    csv = tmp_path / "mine.csv"
    lines = ["ra,dec"] + [f"{r!r},{d!r}" for r, d in zip(pick.ra, pick.dec)] + ["nan,1.0", "12.0,95.0"]
    csv.write_text("\n".join(lines) + "\n")
    over = [*base, *DEBUG_64, f"targets={csv}", "variant=mine", "cache.mode=none"]
    s4a = run_stage(["stage=4a", *over])
    funnel = dict(s4a["funnel"])
    assert funnel["target rows"] == len(pick) + 2 and funnel["ra in [0, 360), dec in [-90, 90]"] == len(pick)
    assert any("reference_rmag" in w for w in s4a["warnings"])
    cfg = compose_config(["stage=4c", *over])
    (exp,) = layout.experiment_ids(cfg)
    man = dio.read_dataset(layout.manifest_dir(cfg, exp)).to_pandas()
    assert set(man.selection_set_id) == {"targets"} and (man.rmag == 19.5).all()
    np.testing.assert_allclose(man.src_mag_r, 19.5 + man.src_dmag)
    assert (man.brickname == radec_to_brickname(man.ra.to_numpy(), man.dec.to_numpy())).all()
    # region and split: the HEALPix cell of the brick centre and its hashed split
    from dhs.survey.bricks import radec_to_rowcol, rowcol_to_center

    bra, bdec = rowcol_to_center(*radec_to_rowcol(man.ra.to_numpy(), man.dec.to_numpy()))
    rid = regions.region_ids(bra, bdec, 32)
    assert (man.region_id.to_numpy() == rid).all()
    assert (man.region_split.to_numpy() == regions.split_names(rid, 32, (0.7, 0.15, 0.15), 13)).all()
    # the brick table of the embedded survey gave the conditions
    bricks = pq.read_table(root / "mock_survey" / "tables" / "bricks_with_region.parquet").to_pandas()
    m = man.merge(bricks, on="brickname", suffixes=("", "_b"))
    np.testing.assert_allclose(m.psfsize_r, m.psfsize_r_b)
    np.testing.assert_allclose(m.psfdepth_r, m.psfdepth_r_b)
    run_stage(["stage=4b", *over])
    run_stage(["stage=4c", *over])
    met = dio.read_dataset(layout.metrics_dir(cfg, exp)).to_pandas()
    assert len(met) == len(man) and (met.cutout_ok == 1).sum() >= len(met) // 2
    assert (met.loc[met.cutout_ok == 1, "psf_source_r"] == "map").all()
    assert (met.loc[met.cutout_ok == 1, "invvar_source"] == "coadd").all()


def _fits(path, cols: dict) -> None:
    fits.BinTableHDU.from_columns([fits.Column(name=k, format="D", array=np.asarray(v, float))
                                   for k, v in cols.items()]).writeto(path)


def test_fits_targets_with_upper_case_names_and_magnitude_depths(tmp_path):
    ra, dec = np.array([10.0, 10.1, 10.2, 150.0]), np.array([-5.0, -5.05, -4.9, 2.0])
    depth_mag = np.array([24.5, 24.1, 23.8, 24.9])
    _fits(tmp_path / "t.fits", {"RA": ra, "DEC": dec, "PSFDEPTH_R": depth_mag, "RMAG": [19, 19.5, 20, 18.7],
                                "PSFSIZE_R": [1.1, 1.2, 1.3, 1.4]})
    cand = load_targets(TargetSettings(uri=str(tmp_path / "t.fits")))
    t = cand.parent.to_pandas().sort_values("ra")
    np.testing.assert_allclose(ivar_to_mag(t.psfdepth_r.to_numpy()), depth_mag, atol=1e-9)
    np.testing.assert_allclose(t.psfsize_g, 1.3)  # not in the list, no brick table: the default
    assert any("psfdepth_r" in w and "mag" in w for w in cand.warnings)
    # the split does not depend on which other targets are listed
    one = load_targets(TargetSettings(uri=str(_one(tmp_path, ra[3], dec[3]))))
    assert one.parent.column("region_split")[0].as_py() == t.region_split.iloc[3]


def _one(tmp_path, ra, dec):
    p = tmp_path / "one.parquet"
    pq.write_table(pa.table({"ra": [ra], "dec": [dec]}), p)
    return p


def test_a_target_list_without_ra_names_the_columns(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("ra_deg,dec_deg\n1,2\n")
    with pytest.raises(DhsError, match="lacks column.*'ra'.*ra_deg"):
        load_targets(TargetSettings(uri=str(p)))


def test_stage_4a_converts_a_magnitude_depth_brick_table(survey, tmp_path):
    """A brick table with psfdepth in 5-sigma magnitudes gives the same manifest depths."""
    root, base, _ = survey
    tables = root / "mock_survey" / "tables"
    bricks = pq.read_table(tables / "bricks_with_region.parquet")
    mags = {c: pa.array(ivar_to_mag(bricks.column(c).to_numpy())) for c in bricks.column_names
            if c.startswith("psfdepth_")}
    for c, v in mags.items():
        bricks = bricks.set_column(bricks.column_names.index(c), c, v)
    pq.write_table(bricks, tmp_path / "bricks_mag.parquet")
    runs = {}
    for name, path in (("ivar", tables / "bricks_with_region.parquet"), ("mag", tmp_path / "bricks_mag.parquet")):
        over = [*base, *DEBUG_64, f"manifest.bricks_with_region={path}", f"variant=depth_{name}"]
        run_stage(["stage=4a", *over])
        cfg = compose_config(["stage=4a", *over])
        (exp,) = layout.experiment_ids(cfg)
        runs[name] = dio.read_dataset(layout.manifest_dir(cfg, exp)).to_pandas().sort_values("task_id")
    np.testing.assert_allclose(runs["mag"].psfdepth_r.to_numpy(), runs["ivar"].psfdepth_r.to_numpy(), rtol=1e-9)
    # forced the wrong way round, the check refuses rather than guessing
    with pytest.raises(InputUnitError, match="psfdepth"):
        from dhs.parent.units import check_depth_columns

        check_depth_columns({"psfdepth_r": np.r_[mags["psfdepth_r"].to_numpy(), 5e4, 6e4, 7e4]},
                            "bricks", "auto")


def test_require_lrg_flag_null_keeps_every_parent_row(survey):
    _, base, parent = survey
    runs = {}
    for flag in ("is_v1_pure_massive", "null"):
        over = [*base, *DEBUG_64, f"manifest.require_lrg_flag={flag}", f"variant=flag_{flag}",
                "manifest.selection_set_ids=[topk_density]"]
        runs[flag] = dict(run_stage(["stage=4a", *over])["funnel"])
    assert runs["is_v1_pure_massive"]["is_v1_pure_massive set"] == int(parent.is_v1_pure_massive.sum())
    assert "null set" not in runs["null"] and not any(k.endswith(" set") for k in runs["null"])
    assert runs["null"]["unique (brickname, objid)"] == len(parent) > int(parent.is_v1_pure_massive.sum())
