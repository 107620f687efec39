"""Experiment ids and dataset paths (dhs.layout): pure strings, one definition each."""

from __future__ import annotations

import pytest

from dhs.layout import Experiment, Paths, blacklist_path, experiment_id


def test_experiment_id_formats_and_parses():
    e = Experiment("grid", 96, "grz", "grid_small")
    assert e.experiment_id == str(e) == "grid_stamp96_bandsgrz_gridgrid_small"
    assert Experiment.parse(e.experiment_id) == e
    assert experiment_id("debug", 64, "r", "grid_sota") == "debug_stamp64_bandsr_gridgrid_sota"
    assert Experiment.parse("debug_stamp64_bandsr_gridgrid_sota") == Experiment("debug", 64, "r", "grid_sota")


@pytest.mark.parametrize("text", ["", "grid_stampx_bandsgrz_gridg", "grid_stamp64_gridg",
                                  "grid_stamp64_bandsgrz_grid", "a_b_stamp64_bandsr_gridg"])
def test_parse_rejects_what_is_not_an_id(text):
    assert Experiment.parse(text) is None


def test_paths_keep_the_scheme_of_the_data_root():
    local = Paths("/d", "v3", "/d/coadd_cache", "cosmos_moffat")
    s3 = Paths("s3a://bucket/root/", "v3", "s3://bucket/cache", "sersic_gaussian")
    exp = "grid_stamp64_bandsgrz_gridgrid_small"
    assert local.manifest_dir(exp) == f"/d/phase4a/v3/manifests/{exp}"
    assert local.stamps_dir(exp) == f"/d/phase4c/v3/cosmos_moffat/stamps/{exp}"
    assert s3.metrics_dir(exp) == f"s3://bucket/root/phase4c/v3/sersic_gaussian/metrics/{exp}"
    assert s3.completeness_dir(exp) == f"s3://bucket/root/phase4d/v3/sersic_gaussian/arcfinder/{exp}"
    assert s3.scores_dir(exp) == f"s3://bucket/root/phase4c/v3/sersic_gaussian/scores/arcfinder/{exp}"
    assert s3.blacklist_path() == blacklist_path("s3://bucket/cache") == "s3://bucket/cache/_blacklist.csv"
    assert local.validate_dir("4c", exp) == f"/d/validate/v3/4c/{exp}"
