"""Every numeric config key has a range rule (dhs.config.ranges), a value outside it is rejected
by name, and every default passes.

The config is composed once per option that brings keys of its own (finder=onnx, ...); each
case sets one key, checks and restores it, so the whole file runs in a few seconds.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import typing
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from dhs.config import schema
from dhs.config.checks import check_values
from dhs.config.groups import GROUPS, schemas_of
from dhs.config.ranges import NUMERIC_RULES, RULES, violation
from dhs.errors import ConfigError
from tests.helpers import compose_config

CONF = Path(schema.__file__).resolve().parents[2] / "conf"
INF = float("inf")
#: values outside each kind of rule (the first is also run through the whole config check)
BAD = {"> 0": (0, -1, -0.5), ">= 0": (-1, -1e-9), "> 1": (1, 0.5, 0), "[0, 1]": (-0.1, 1.5),
       "(0, 1)": (0, 1, 1.5), "(0, 1]": (0, 1.5, -1), "[0, 1)": (-0.1, 1, 2), "!= 0": (0,),
       "finite": (INF, -INF, float("nan"))}
#: values inside (boundaries included where the rule includes them)
GOOD = {"> 0": (1, 1e-6), ">= 0": (0, 3), "> 1": (1.01, 7), "[0, 1]": (0, 1, 0.5), "(0, 1)": (0.5, 1e-6),
        "(0, 1]": (1, 1e-6), "[0, 1)": (0, 0.99), "!= 0": (-1, 1, 4), "finite": (-30.5, 0, 1e6)}
#: options composed on top of the defaults to reach the keys only they have
EXTRA_OPTIONS = (["finder=onnx"], ["finder=snr_proxy"], ["cluster=emr"])


def _numeric(annotation: typing.Any) -> tuple[type, bool] | None:
    """(int or float, is a list) of a numeric annotation (Optional and List unwrapped), else None."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if origin is typing.Union and len(args) == 1:
        return _numeric(args[0])
    if origin in (list, typing.List) and args and args[0] in (int, float):
        return args[0], True
    return (annotation, False) if annotation in (int, float) else None


def schema_keys() -> dict[str, tuple[type, bool]]:
    """Every numeric key of the root schema and of every option schema: full key -> (type, list)."""
    out: dict[str, tuple[type, bool]] = {}

    def walk(cls: type, prefix: str) -> None:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            typ, full = hints[f.name], prefix + f.name
            if not prefix and f.name in GROUPS:
                for option in schemas_of(f.name):
                    walk(option, full + ".")
            elif dataclasses.is_dataclass(typ):
                walk(typ, full + ".")
            elif (num := _numeric(typ)) is not None:
                out[full] = num

    walk(schema.DhsConfig, "")
    return out


KEYS = schema_keys()


@functools.cache
def _configs() -> tuple:
    return tuple(compose_config(ov) for ov in ([], *EXTRA_OPTIONS))


def _config_with(key: str):
    for cfg in _configs():
        if OmegaConf.select(cfg, key, default=KeyError) is not KeyError:
            return cfg
    raise AssertionError(f"{key}: no composed option has it; add its option to EXTRA_OPTIONS")


def test_every_numeric_key_has_a_rule_and_every_rule_a_key():
    assert len(KEYS) > 100  # the walk reached the option schemas (finder, cluster.emr, ...)
    assert {"finder.detect_nsigma", "finder.scale", "cluster.emr.poll_seconds", "grid.priors.lens_q_range",
            "tier.stamp_sizes", "source.sersic_n", "psf.beta"} <= set(KEYS)
    missing = sorted(set(KEYS) - set(NUMERIC_RULES))
    assert not missing, f"numeric keys without a rule in dhs.config.ranges.NUMERIC_RULES: {missing}"
    stale = sorted(set(NUMERIC_RULES) - set(KEYS))
    assert not stale, f"rules naming no numeric schema key: {stale}"
    assert set(NUMERIC_RULES.values()) <= set(RULES)


def _bad_cases() -> list[tuple[str, float]]:
    cases = []
    for key, kind in sorted(NUMERIC_RULES.items()):
        typ = KEYS[key][0]
        bad = [v for v in BAD[kind] if typ is float or (math.isfinite(v) and v == int(v))]
        if bad:  # an integer key with rule 'finite' (finder.class_index) has no bad value of its type
            cases.append((key, int(bad[0]) if typ is int else float(bad[0])))
    return cases


@pytest.mark.parametrize("key,bad", _bad_cases())
def test_a_bad_value_is_rejected_by_name(key, bad):
    cfg = _config_with(key)
    is_list = KEYS[key][1]
    old = list(OmegaConf.select(cfg, key)) if is_list else OmegaConf.select(cfg, key)
    new = ([*old[:-1], bad] if len(old) else [bad]) if is_list else bad
    OmegaConf.update(cfg, key, new, merge=False)
    try:
        with pytest.raises(ConfigError) as err:
            check_values(cfg)
    finally:
        OmegaConf.update(cfg, key, old, merge=False)
    msg = str(err.value)
    assert msg.startswith(f"{key}="), msg
    assert "Allowed:" in msg and "Set in" in msg
    check_values(cfg)  # restored: the config is good again


def test_every_boundary_of_every_rule():
    for key, kind in NUMERIC_RULES.items():
        for v in BAD[kind]:
            assert violation(key, v) is not None, (key, v)
            assert violation(key, [GOOD[kind][0], v]) is not None, (key, v)
        for v in GOOD[kind]:
            assert violation(key, v) is None, (key, v)
        assert violation(key, list(GOOD[kind])) is None and violation(key, None) is None


def _check_with(key: str, value: typing.Any) -> None:
    """check_values on the default config with ``key`` set to ``value`` (restored after)."""
    cfg = _configs()[0]
    old = OmegaConf.select(cfg, key)
    old = list(old) if OmegaConf.is_list(old) else old
    OmegaConf.update(cfg, key, value, merge=False)
    try:
        check_values(cfg)
    finally:
        OmegaConf.update(cfg, key, old, merge=False)


def test_a_list_is_checked_element_by_element():
    with pytest.raises(ConfigError) as err:
        _check_with("grid.theta_e", [0.5, -0.2])
    assert str(err.value).startswith("grid.theta_e=[0.5, -0.2] is invalid: -0.2 must be > 0. Allowed:")
    assert violation("completeness.fpr_grid", [0.01, 1.0]) == ("1.0 must lie in (0, 1)", "0 < x < 1")
    assert violation("grid.src_dmag", [1.0, INF]) == ("inf is not a finite number", "a finite number")


def test_the_hand_written_checks_speak_first():
    with pytest.raises(ConfigError, match=r"psf.beta=1.0 is invalid: a Moffat profile needs beta > 1"):
        _check_with("psf.beta", 1.0)
    with pytest.raises(ConfigError, match=r"tier.stamp_sizes=\[64, 0\] is invalid: stamp size 0 is not a positive"):
        _check_with("tier.stamp_sizes", [64, 0])
    check_values(_configs()[0])


def _defaults(cls: type, prefix: str) -> list[tuple[str, typing.Any]]:
    out = []
    for f in dataclasses.fields(cls):
        full = prefix + f.name
        if full in KEYS:
            value = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            out.append((full, value))
        elif dataclasses.is_dataclass(t := typing.get_type_hints(cls)[f.name]) and (prefix or f.name not in GROUPS):
            out.extend(_defaults(t, full + "."))
    return out


def _yaml_numbers(node: typing.Any, prefix: str) -> list[tuple[str, typing.Any]]:
    out = []
    for key, value in node.items():
        full = prefix + str(key)
        if isinstance(value, dict):
            out.extend(_yaml_numbers(value, full + "."))
        elif full in KEYS and not (isinstance(value, str) and "${" in value):  # interpolations: composed below
            out.append((full, value))
    return out


def test_the_defaults_of_every_schema_and_option_pass():
    """Schema defaults, every conf/<group>/<option>.yaml value, the pipeline's step overrides,
    and the composed configs."""
    values = _defaults(schema.DhsConfig, "")
    for group in GROUPS:
        values += [(kv[0], kv[1]) for cls in schemas_of(group) for kv in _defaults(cls, f"{group}.")]
    for path in sorted(CONF.glob("*/*.yaml")):
        raw = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
        raw.pop("defaults", None)
        is_global = "@package _global_" in path.read_text().split("\n", 2)[0]
        values += _yaml_numbers(raw, "" if is_global else f"{path.parent.name}.")
        for step in raw.get("steps", []) if path.parent.name == "stage" else []:
            for ov in step:
                key, _, text = ov.partition("=")
                if key in KEYS:
                    values.append((key, OmegaConf.create({"v": text})["v"] if "[" in text else float(text)))
    checked = {k for k, _ in values}
    assert {"psf.beta", "finder.scale", "cluster.emr.poll_seconds", "tier.n_total_per_split",
            "tier.n_per_config"} <= checked
    bad = [(k, v, violation(k, v)) for k, v in values if violation(k, v) is not None]
    assert not bad
    for cfg in _configs():
        check_values(cfg)
