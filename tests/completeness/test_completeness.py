"""Completeness: binning, proxy and score recovery, region aggregation, and stage 4d end to end."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from astropy.stats import binom_conf_interval

from dhs.completeness import surfaces as comp
from dhs.stages import layout
from dhs.io.datasets import read_dataset
from dhs.schema import surface_columns
from dhs.stages import completeness as stage
from tests import synth4c as synth
from tests.synth4c import write_experiment

EDGES = [0.0, 0.4, 0.6, 0.8, 1.0]


def _rows(**cols) -> pd.DataFrame:
    n = len(next(iter(cols.values())))
    base = {"task_id": [f"t{i}" for i in range(n)], "region_id": [1] * n, "region_split": ["train"] * n,
            "is_control": [0] * n, "cutout_ok": [1] * n, "metrics_ok": [1] * n, "arc_snr": [10.0] * n,
            "bad_pixel_frac": [0.0] * n, "wise_brightmask_frac": [0.0] * n, "theta_e_arcsec": [1.0] * n,
            "src_dmag": [1.0] * n, "src_reff_arcsec": [0.1] * n, "psfsize_r": [1.0] * n,
            "psfdepth_r": [100.0] * n}
    base.update(cols)
    return pd.DataFrame(base)


def test_bins_psf_depth_resolution():
    # depth 24.1 mag -> psfdepth = 25 / (10^((22.5 - 24.1)/2.5))^2
    d = 25.0 / (10 ** ((22.5 - 24.1) / 2.5)) ** 2
    rows = comp.add_bins(_rows(psfsize_r=[1.25, 1.2, 1.6, -1.0], psfdepth_r=[d, d, 0.0, d],
                               theta_e_arcsec=[0.6, 0.96, 1.6, 1.0]), EDGES)
    np.testing.assert_allclose(rows["psf_bin_arcsec"][:3], [1.2, 1.2, 1.6])
    assert np.isnan(rows["psf_bin_arcsec"][3])
    assert rows["depth_mag"][0] == pytest.approx(24.1)
    assert rows["depth_bin_mag"][0] == 24.0 and np.isnan(rows["depth_bin_mag"][2])
    assert rows["resolution_bin"][:3].tolist() == ["[0.4, 0.6)", "[0.8, 1)", "[1, inf)"]
    assert pd.isna(rows["resolution_bin"][3]) and np.isnan(rows["resolution_lo"][3])
    assert rows["resolution_hi"][2] == np.inf


PROXY = comp.Recovery("snr_proxy", 5.0, "snr_proxy")


def test_snr_proxy_recovery_has_no_resolution_cut():
    rows = comp.prepare(_rows(arc_snr=[5.0, 4.99, 6.0, 50.0, 50.0, np.nan],
                              theta_e_arcsec=[0.8, 1.0, 0.3, 1.0, 1.0, 1.0],
                              cutout_ok=[1, 1, 1, 0, 1, 1], metrics_ok=[1, 1, 1, 0, 1, 0],
                              bad_pixel_frac=[0.0, 0.0, 0.0, 0.0, 0.5, 0.0]),
                        resolution_edges=EDGES, bad_pixel_frac_max=0.2, wise_brightmask_frac_max=0.2)
    rows = comp.mark_recovered(rows, PROXY)
    # boundary counts (arc_snr = 5); low SNR; unresolved but bright (found: no theta_E/PSF rule);
    # failed cutout; dirty; NaN metrics
    assert rows["recovered"].tolist() == [True, False, True, False, True, False]
    assert rows["valid"].tolist() == [True, True, True, False, True, False]
    assert rows["clean"].tolist() == [True, True, True, False, False, False]
    assert "snr_proxy" in PROXY.describe() and "no resolution cut" in PROXY.describe()


def test_region_aggregation_by_hand():
    rows = _rows(region_id=[1, 1, 1, 1, 2, 2, 3, 7],
                 region_split=["train"] * 6 + ["val", "train"],
                 cutout_ok=[1, 1, 1, 0, 1, 1, 0, 1], metrics_ok=[1, 1, 1, 0, 1, 1, 0, 1],
                 arc_snr=[10.0, 10.0, 1.0, np.nan, 10.0, 10.0, np.nan, 10.0],
                 is_control=[0, 0, 0, 0, 0, 0, 0, 1])
    rows = comp.mark_recovered(comp.prepare(rows, resolution_edges=EDGES, bad_pixel_frac_max=0.2,
                                            wise_brightmask_frac_max=0.2), PROXY)
    per = comp.region_surface(rows, ("theta_e_arcsec",))
    # region 1: 4 attempted, 3 valid, 2 recovered; region 2: 2/2/2; region 3 (val): 1/0/0; control ignored
    r = per.set_index("region_id")
    assert r.loc[1, ["n_attempted", "n_valid", "n_recovered"]].tolist() == [4, 3, 2]
    assert r.loc[2, ["n_attempted", "n_valid", "n_recovered"]].tolist() == [2, 2, 2]
    assert r.loc[3, "n_attempted"] == 1 and np.isnan(r.loc[3, "completeness"]) and 7 not in r.index
    agg = comp.aggregate_regions(per, ("theta_e_arcsec",))
    assert list(agg.columns) == [c.name for c in surface_columns(("theta_e_arcsec",), per_region=False,
                                                                  labelled=False)]
    agg = agg.set_index("region_split")
    train = agg.loc["train"]
    assert train[["n_attempted", "n_valid", "n_recovered", "n_regions"]].tolist() == [6, 5, 4, 2]
    assert train["completeness"] == pytest.approx(4 / 5)
    assert train["completeness_attempted"] == pytest.approx(4 / 6)
    assert train["completeness_region_mean"] == pytest.approx((2 / 3 + 1) / 2)
    assert train["completeness_region_std"] == pytest.approx(abs(1 - 2 / 3) / np.sqrt(2))
    lo, hi = binom_conf_interval(4, 5, comp.confidence_level(1.96), interval="wilson")
    assert (train["completeness_lo"], train["completeness_hi"]) == pytest.approx((lo, hi))
    everything = agg.loc["all"]
    assert everything[["n_attempted", "n_valid", "n_recovered", "n_regions"]].tolist() == [7, 5, 4, 2]
    assert everything["completeness_attempted"] == pytest.approx(4 / 7)
    assert np.isnan(agg.loc["val", "completeness"]) and agg.loc["val", "n_regions"] == 0


def test_score_recovery_and_false_positive_rate():
    n_inj, n_ctl = 6, 10
    rows = _rows(is_control=[0] * n_inj + [1] * n_ctl, theta_e_arcsec=[1.0] * n_inj + [0.0] * n_ctl,
                 arc_snr=[0.0] * (n_inj + n_ctl))
    scores = pd.DataFrame({"task_id": rows["task_id"],
                           "score": [0.9, 0.5, 0.49, 0.1, 0.95, 0.6] + [0.7, 0.8, 0.5] + [0.1] * 7})
    rec = comp.Recovery("python", 0.5, "given", scores_path="finder.parquet")
    out = comp.mark_recovered(comp.prepare(rows, resolution_edges=EDGES, bad_pixel_frac_max=0.2,
                                           wise_brightmask_frac_max=0.2, scores=scores), rec)
    assert out["recovered"][:n_inj].tolist() == [True, True, False, False, True, True]
    fpr = comp.false_positive_rate(out)["all"]
    assert (fpr["n_controls_valid"], fpr["n_false_positive"]) == (10, 3)
    assert fpr["false_positive_rate"] == pytest.approx(0.3)
    lo, hi = binom_conf_interval(3, 10, comp.confidence_level(1.96), interval="wilson")
    assert (fpr["false_positive_rate_lo"], fpr["false_positive_rate_hi"]) == pytest.approx((lo, hi))
    assert comp.overall(out)["n_recovered"] == 4


def test_bad_scores_name_file_and_column():
    rows = comp.flag_rows(_rows(arc_snr=[1.0, 2.0]))
    with pytest.raises(ValueError, match=r"finder\.parquet.*\['score'\]"):
        comp.attach_scores(rows, pd.DataFrame({"task_id": ["t0", "t1"], "prob": [1, 2]}), "finder.parquet")
    with pytest.raises(ValueError, match=r"finder\.parquet: 1 valid task.*no score row.*'t1'"):
        comp.attach_scores(rows, pd.DataFrame({"task_id": ["t0"], "score": [0.3]}), "finder.parquet")
    with pytest.raises(ValueError, match="duplicate task_id"):
        comp.attach_scores(rows, pd.DataFrame({"task_id": ["t0", "t0", "t1"], "score": [0, 1, 2]}), "f.pq")


def _expected_proxy(frame: pd.DataFrame) -> tuple[int, int, int]:
    inj = frame[frame["is_control"] == 0]
    valid = (inj["cutout_ok"] == 1) & (inj["metrics_ok"] == 1) & np.isfinite(inj["arc_snr"])
    rec = valid & (inj["arc_snr"] >= 5)
    return len(inj), int(valid.sum()), int(rec.sum())


def test_stage_4d_writes_surfaces_plots_and_summary(data_root, frame, ctx):
    experiment = write_experiment(data_root, frame, extra=["finder=snr_proxy"])
    summary = stage.run(experiment.cfg, ctx)
    res = summary["experiments"][0]
    assert (res["n_attempted"], res["n_valid"], res["n_recovered"]) == _expected_proxy(experiment.frame)
    assert 0 < res["n_recovered"] < res["n_valid"]
    assert res["completeness_lo"] < res["completeness"] < res["completeness_hi"]
    out = layout.completeness_dir(experiment.cfg, synth.EXP)
    for name, keys in comp.BINNINGS.items():
        agg = read_dataset(f"{out}/surfaces/by_{name}")
        per = read_dataset(f"{out}/regions/by_{name}")
        assert set(agg.column_names) == {c.name for c in surface_columns(keys, per_region=False)}
        assert set(per.column_names) == {c.name for c in surface_columns(keys, per_region=True)}
        a = agg.to_pandas()
        assert set(a["region_split"]) == {"all", "train", "val", "test"}
        assert a.loc[a["region_split"] == "all", "n_attempted"].sum() == res["n_attempted"]
        assert per.to_pandas()["n_recovered"].sum() == res["n_recovered"]
    theta = read_dataset(f"{out}/surfaces/by_theta_e").to_pandas()
    assert set(theta["finder"]) == {"snr_proxy"} and set(theta["threshold"]) == {5.0}
    assert res["finder"] == "snr_proxy" and res["threshold_method"] == "snr_proxy"
    theta = theta[theta["region_split"] == "all"].sort_values("theta_e_arcsec")
    assert theta["theta_e_arcsec"].tolist() == list(synth.THETAS)
    assert theta["completeness"].iloc[-1] > theta["completeness"].iloc[0]  # bigger arcs are found
    assert len(summary["plots"]) == 3
    for p in summary["plots"]:
        with open(p, "rb") as f:
            head = f.read(8)
        assert head == b"\x89PNG\r\n\x1a\n" and len(open(p, "rb").read()) > 20_000
    record = json.loads(open(f"{out}/_dhs_record.json").read())
    assert record["counts"]["n_recovered"] == res["n_recovered"]
    assert pq.read_schema(f"{out}/surfaces/by_psf/region_split=all/part-surface.parquet") \
        .field("psf_bin_arcsec").metadata[b"unit"] == b"arcsec"
    # an unchanged re-run is skipped; a new threshold recomputes
    again = stage.run(experiment.cfg, ctx)["experiments"][0]
    assert again["status"].startswith("skipped") and again["n_recovered"] == res["n_recovered"]
    experiment.cfg.finder.arc_snr_min = 1e9
    assert stage.run(experiment.cfg, ctx)["experiments"][0]["n_recovered"] == 0


def test_stage_4d_with_scores(data_root, frame, ctx):
    import pyarrow as pa

    scores_path = data_root / "scores.parquet"
    # the score is the arc SNR squashed to [0, 1); controls score low except every fourth
    snr = frame["arc_snr"].fillna(0).to_numpy()
    score = np.where(frame["is_control"] == 1, np.where(np.arange(len(frame)) % 4 == 0, 0.9, 0.05),
                     snr / (snr + 5.0))
    pq.write_table(pa.table({"task_id": frame["task_id"], "score": score}), scores_path)
    exp = write_experiment(data_root, frame, extra=[f"completeness.scores={scores_path}",
                                                    "completeness.threshold=0.5", "finder=python"])
    res = stage.run(exp.cfg, ctx)["experiments"][0]
    inj = frame[frame["is_control"] == 0]
    valid = (inj["cutout_ok"] == 1) & (inj["metrics_ok"] == 1)
    assert res["n_recovered"] == int((valid & (inj["arc_snr"] >= 5.0)).sum())
    ctl = frame[(frame["is_control"] == 1) & (frame["cutout_ok"] == 1)]
    fp = res["false_positive"]["all"]
    expected_fp = int((np.asarray(score)[ctl.index] >= 0.5).sum())
    assert fp["n_controls_valid"] == len(ctl) and fp["n_false_positive"] == expected_fp > 0
    pq.write_table(pa.table({"task_id": frame["task_id"][:5], "score": score[:5]}), scores_path)
    exp.cfg.force = True
    with pytest.raises(ValueError, match="scores.parquet: .* valid task"):
        stage.run(exp.cfg, ctx)


def test_stage_4d_without_metrics_says_what_to_run(data_root, ctx):
    from tests.synth4c import experiment_cfg

    cfg = experiment_cfg(data_root, data_root / "bank.h5", "4d")
    with pytest.raises(FileNotFoundError, match="stage=4c"):
        stage.run(cfg, ctx)


def test_prior_drawn_source_columns_are_binned_grid_values_kept():
    rng = np.random.default_rng(3)
    n = 200
    drawn = rng.uniform(0.0, 3.0, n)
    reff = rng.uniform(0.05, 0.8, n)
    prior = comp.add_bins(_rows(psfsize_r=[1.2] * n, psfdepth_r=[1e3] * n, theta_e_arcsec=[1.0] * n,
                                src_dmag=drawn, src_reff_arcsec=reff), [0.0, 1.0])
    assert set(np.unique(prior["src_dmag"])) <= {0.0, 0.5, 1.0, 1.5, 2.0, 2.5}
    assert np.all((prior["src_dmag"] <= drawn) & (drawn < prior["src_dmag"] + 0.5))
    assert np.unique(prior["src_reff_arcsec"]).size <= 8
    grid = [0.5, 1.0, 2.0] * (n // 3) + [0.5] * (n % 3)
    kept = comp.add_bins(_rows(psfsize_r=[1.2] * n, psfdepth_r=[1e3] * n, theta_e_arcsec=[1.0] * n,
                               src_dmag=grid, src_reff_arcsec=[0.25] * n), [0.0, 1.0])
    assert kept["src_dmag"].tolist() == grid
    assert set(kept["src_reff_arcsec"]) == {0.25}
