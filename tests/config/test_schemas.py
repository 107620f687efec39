"""One schema per group option: keys of another option are rejected by name, keys added with `+`
are rejected, options come from conf/ alone (a new grid YAML needs no Python edit)."""

from __future__ import annotations

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from dhs.config import schema as dhs_config
from dhs.config.groups import GROUPS, schemas_of
from dhs.config.messages import explain
from dhs.errors import ConfigError, DhsError


def rejected(compose, overrides: list[str]) -> str:
    """The one-line message for overrides that must not compose (or must fail the checks)."""
    try:
        cfg = compose(overrides)
    except ConfigCompositionException as exc:
        msg = explain(exc, overrides)
        assert msg is not None, exc
        return msg
    with pytest.raises(ConfigError) as err:
        dhs_config.check(cfg)
    return str(err.value)


@pytest.mark.parametrize("overrides,needle", [
    (["source=sersic", "source.cosmos_salt=x"],
     "source.cosmos_salt does not apply to source=sersic"),
    (["source=sersic", "source.bank_path=/x.h5"], "source.bank_path does not apply to source=sersic"),
    (["source=cosmos", "source.sersic_n=4"], "source.sersic_n does not apply to source=cosmos"),
    (["psf=gaussian", "psf.beta=3"], "psf.beta does not apply to psf=gaussian"),
    (["cluster=spark_local", "cluster.n_jobs=2"], "cluster.n_jobs does not apply to cluster=spark_local"),
    (["cluster=local", "cluster.spark_master=yarn"], "cluster.spark_master does not apply to cluster=local"),
    (["cluster=local", "cluster.emr.region=us-west-2"], "cluster.emr does not apply to cluster=local"),
    (["cluster=emr", "cluster.n_jobs=2"], "cluster.n_jobs does not apply to cluster=emr"),
    (["stage=4a", "stage.steps=[['stage=plan']]"], "stage.steps does not apply to stage"),
])
def test_a_key_of_another_option_is_rejected_naming_the_key_and_its_option(compose, overrides, needle):
    msg = rejected(compose, overrides)
    assert needle in msg, msg
    assert "schema" not in msg and "\n" not in msg


@pytest.mark.parametrize("override,needle", [
    ("+psf.bta=4.0", "psf.bta: no such key for psf=moffat. Did you mean psf.beta?"),
    ("+source.cosmos_salt=x", "source.cosmos_salt does not apply to source=sersic"),
    ("+grid.theta=[1.0]", "grid.theta: no such key for grid. Did you mean grid.theta_e?"),
    ("+inject.supersampl=3", "inject.supersampl: no such key. Did you mean inject.supersample?"),
    ("+foo=1", "foo: no such key."),
])
def test_keys_added_with_plus_are_rejected_before_any_work(compose, override, needle):
    cfg = compose([override])  # Hydra lets `+` add a key to any node ...
    with pytest.raises(ConfigError) as err:  # ... the checks of every run reject it
        dhs_config.check(cfg)
    assert needle in str(err.value)
    assert isinstance(err.value, DhsError)


def test_removed_and_moved_keys_name_their_new_home(compose):
    assert "validate.target?" in rejected(compose, ["target=4a"])
    assert "Did you mean completeness.scores?" in rejected(compose, ["scores=s.parquet"])
    assert "Did you mean inject.metrics_only?" in rejected(compose, ["metrics_only=true"])
    assert "source.achromatic: no such key for source=sersic" in rejected(compose, ["source.achromatic=false"])
    cfg = compose(["validate.target=4a", "completeness.scores=s.parquet", "inject.metrics_only=true"])
    assert (cfg.validate.target, cfg.completeness.scores, cfg.inject.metrics_only) == ("4a", "s.parquet", True)


def test_every_option_is_typed_by_one_of_its_groups_schemas(compose):
    from pathlib import Path

    conf = Path(dhs_config.__file__).resolve().parents[2] / "conf"
    for group in GROUPS:
        for yaml in sorted((conf / group).glob("*.yaml")):
            cfg = compose([f"{group}={yaml.stem}"])
            assert OmegaConf.get_type(cfg[group]) in schemas_of(group), (group, yaml.stem)


def test_spark_properties_are_accepted_as_written(compose):
    cfg = compose(["cluster=spark_local", "cluster.spark_conf={spark.executor.memory:4g,spark.driver.memory:2g}"])
    dhs_config.check(cfg)
    assert OmegaConf.to_container(cfg.cluster.spark_conf) == {"spark.executor.memory": "4g",
                                                              "spark.driver.memory": "2g"}
    msg = rejected(compose, ["cluster=spark_local", "cluster.spark_conf.spark.executor.memory=4g"])
    assert "Spark properties are flat" in msg and "cluster.spark_conf={spark.executor.memory:4g}" in msg


def test_option_names_follow_their_model(compose):
    msg = rejected(compose, ["psf.name=airy"])
    assert "psf.name='airy' is invalid" in msg and "psf=..." in msg


def test_a_new_grid_yaml_composes_with_no_python_edit(compose, tmp_path):
    (tmp_path / "grid").mkdir()
    (tmp_path / "grid" / "grid_tiny.yaml").write_text(
        "defaults:\n  - /grid_schema@_here_\n\nname: grid_tiny\ntheta_e: [0.7]\nsrc_dmag: [1.0]\n"
        "src_reff: [0.1]\nsrc_e: [0.0]\nshear: [0.0]\n")
    search = f"hydra.searchpath=[file://{tmp_path}]"
    cfg = compose([search, "grid=grid_tiny"])
    dhs_config.check(cfg)
    assert cfg.grid.name == "grid_tiny" and list(cfg.grid.theta_e) == [0.7]
    from dhs.stages import layout

    assert all(e.endswith("_gridgrid_tiny") for e in layout.experiment_ids(cfg))
    (tmp_path / "grid" / "grid_typo.yaml").write_text(
        "defaults:\n  - /grid_schema@_here_\n\nname: grid_typo\ntheta_E: [0.7]\n")
    with pytest.raises(ConfigCompositionException) as err:
        compose([search, "grid=grid_typo"])
    msg = explain(err.value, [])
    assert msg.startswith("conf/grid/grid_typo.yaml: grid.theta_E: no such key for grid.")
    assert "Did you mean grid.theta_e?" in msg
