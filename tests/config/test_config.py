"""Every option of every group composes; bad values fail before any work with clear messages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf.errors import ConfigKeyError, ValidationError

from dhs import stages
from dhs.config import schema as dhs_config
from dhs.config.groups import GROUPS

CONF = Path(dhs_config.__file__).resolve().parents[2] / "conf"
OPTIONS = [(g, p.stem) for g in GROUPS for p in sorted((CONF / g).glob("*.yaml"))]


def test_every_group_has_its_documented_options():
    found = {g: sorted(n for gg, n in OPTIONS if gg == g) for g in GROUPS}
    assert found["source"] == ["cosmos", "sersic"]
    assert found["psf"] == ["gaussian", "moffat"]
    assert found["grid"] == ["grid_full", "grid_lenses", "grid_lenses_small", "grid_medium", "grid_small",
                             "grid_sota"]
    assert found["tier"] == ["debug", "grid", "train"]
    assert found["cluster"] == ["emr", "local", "spark_local"]
    assert found["survey"] == ["dr10_south", "mock"]
    assert {"plan", "all", "4a", "4b", "4c", "score", "4d", "4p5", "validate"} <= set(found["stage"])
    assert found["finder"] == ["arcfinder", "onnx", "python", "snr_proxy"]


@pytest.mark.parametrize("group,option", OPTIONS)
def test_option_composes_and_checks(compose, group, option):
    cfg = compose([f"{group}={option}"])
    assert cfg[group].name == (stages.ALIASES.get(option, option) if group == "stage" else option)
    dhs_config.check(cfg)


def test_grid_values_match_the_design(compose):
    cfg = compose(["grid=grid_full"])
    assert list(cfg.grid.theta_e) == [0.2, 0.25, 0.3, 0.4, 0.6, 0.8, 1.2, 1.6]
    assert list(cfg.grid.src_reff) == [0.04, 0.06, 0.08, 0.12, 0.18, 0.25]
    cfg = compose(["grid=grid_sota"])
    assert list(cfg.grid.shear) == [0.0, 0.02, 0.04]


def test_tier_selects_its_grid_and_the_command_line_wins(compose):
    assert compose(["tier=grid"]).grid.name == "grid_lenses"
    assert compose(["tier=train"]).grid.name == "grid_lenses_small"
    assert compose(["tier=grid", "grid=grid_full"]).grid.name == "grid_full"
    cfg = compose(["tier=train"])
    assert cfg.tier.control_frac == 0.5 and cfg.tier.controls == "unpaired"
    assert cfg.tier.n_total_per_split == 200000


def test_defaults(compose):
    cfg = compose()
    assert cfg.paths.data_root == "outputs/data"
    assert cfg.seeds.split_seed == 13 and cfg.seeds.seed_base == 42
    assert cfg.psf.beta == 3.5 and cfg.stage.name == "plan"
    assert list(cfg.bands) == ["g", "r", "z"]


@pytest.mark.parametrize("override,needle", [
    ("psf.default_fwhm_arcsec=0", "psf.default_fwhm_arcsec=0.0 is invalid: must be > 0"),
    ("psf.default_fwhm_arcsec=-1.2", "psf.default_fwhm_arcsec=-1.2 is invalid"),
    ("tier.control_frac=1.5", "tier.control_frac=1.5 is invalid: outside [0, 1]"),
    ("tier.control_frac=-0.1", "tier.control_frac=-0.1 is invalid: outside [0, 1]"),
    ("tier.stamp_sizes=[64,63]", "stamp size 63 is not a positive even integer"),
    ("tier.stamp_sizes=[0]", "stamp size 0 is not a positive even integer"),
    ("bands=[g,r,y]", "bands ['y'] are not DR10 optical bands. Allowed: g, r, i, z"),
    ("tier.bandsets=[grz,gry]", "tier.bandsets[1]='gry' is invalid"),
    ("psf.beta=1.0", "psf.beta=1.0 is invalid: a Moffat profile needs beta > 1. Allowed: beta > 1"),
    ("grid.theta_e=[]", "grid.theta_e=[] is invalid: a grid axis cannot be empty"),
    ("grid.shear=[]", "grid.shear=[] is invalid"),
    ("cache.mode=sometimes", "Allowed: brick, none"),
    ("tier.controls=mixed", "Allowed: paired, unpaired"),
    ("manifest.bucket_rows=0", "manifest.bucket_rows=0 is invalid: must be > 0"),
])
def test_bad_values_are_rejected_with_key_allowed_and_origin(compose, override, needle):
    cfg = compose([override])
    with pytest.raises(dhs_config.ConfigError) as err:
        dhs_config.check(cfg)
    msg = str(err.value)
    assert needle in msg
    assert "Allowed:" in msg and "Set in" in msg


def test_error_names_the_yaml_file_when_the_value_comes_from_a_group(compose, tmp_path):
    cfg = compose(["psf=moffat"])
    cfg.psf.beta = 0.9  # as if conf/psf/moffat.yaml said so
    with pytest.raises(dhs_config.ConfigError, match=r"conf/psf/moffat.yaml"):
        dhs_config.check(cfg)


def test_unknown_keys_and_wrong_types_fail_at_composition(compose):
    with pytest.raises(ConfigCompositionException) as err:
        compose(["psf.betta=3"])
    assert "betta" in str(err.value.__cause__) and "MoffatPsf" in str(err.value.__cause__)
    with pytest.raises(ConfigCompositionException) as err:
        compose(["psf.beta=abc"])
    assert "psf.beta" in str(err.value.__cause__)
    with pytest.raises(ConfigCompositionException) as err:
        compose(["psf=moffatt"])
    assert "gaussian" in str(err.value) and "moffat" in str(err.value)


def test_unknown_key_in_a_yaml_file_names_the_file(tmp_path):
    from hydra import compose, initialize_config_dir

    conf = tmp_path / "conf"
    import shutil

    shutil.copytree(CONF, conf)
    (conf / "psf" / "moffat.yaml").write_text("defaults:\n  - /moffat_psf_schema@_here_\n\nname: moffat\nbeat: 3.5\n")
    with initialize_config_dir(config_dir=str(conf), version_base=None):
        with pytest.raises((ConfigCompositionException, ConfigKeyError, ValidationError)) as err:
            compose(config_name="config", overrides=["psf=moffat"])
    text = str(err.value) + str(err.value.__cause__)
    assert "beat" in text and "psf/moffat" in text


@pytest.mark.parametrize("group,option", [("source", "cosmos"), ("psf", "gaussian"), ("cluster", "emr")])
def test_cfg_job_prints_the_composed_config(tmp_path, group, option):
    out = subprocess.run([sys.executable, "-m", "dhs.cli", "--cfg", "job", f"{group}={option}"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert out.returncode == 0, out.stderr
    assert f"{group}:\n  name: {option}" in out.stdout
