"""Value checks of a composed dhs config: what the schemas cannot say (FWHM > 0, fractions in
[0, 1], even stamp sizes, DR10 bands, non-empty grid axes, every number in the range of its key
(``dhs.config.ranges``), supported URL schemes, S3 endpoint and Spark master URLs, ...). Each
failure names the key, the allowed values and where the value came from (a group's YAML file or a
command-line override)."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from dhs.config.groups import GROUPS, fixed_name
from dhs.errors import ConfigError

#: The DR10 optical bands.
BANDS = ("g", "r", "i", "z")


def _origin(cfg: Any, key: str) -> str:
    """Where a key's value came from: the command line or the group's YAML file."""
    try:
        from hydra.core.hydra_config import HydraConfig

        hc = HydraConfig.get()
        from omegaconf import OmegaConf

        overrides = list(OmegaConf.to_container(hc.overrides.task, resolve=False))  # type: ignore[arg-type]
        choices = dict(hc.runtime.choices)
    except Exception:  # outside a Hydra run (compose API in tests)
        overrides, choices = [], {}
    for ov in overrides:
        name = ov.lstrip("+~").split("=", 1)[0]
        if name == key or key.startswith((name + ".", name + "[")):
            return f"command line override '{ov}'"
    group = key.split(".", 1)[0]
    choice = choices.get(group) or (cfg[group].get("name") if group in GROUPS else None)
    if group in GROUPS and choice:
        return f"conf/{group}/{choice}.yaml"
    return "conf/config.yaml"


def _fail(cfg: Any, key: str, value: Any, reason: str, allowed: str) -> None:
    raise ConfigError(
        f"{key}={value!r} is invalid: {reason}. Allowed: {allowed}. "
        f"Set in {_origin(cfg, key)}; fix it there or override it, e.g. `dhs {key}=...`."
    )


def _choice(cfg: Any, key: str, value: Any, allowed: tuple) -> None:
    if value not in allowed:
        _fail(cfg, key, value, "unknown value", ", ".join(map(str, allowed)))


def _positive(cfg: Any, key: str, value: Any, strict: bool = True) -> None:
    if value is None or not (value > 0 if strict else value >= 0):
        _fail(cfg, key, value, "must be " + ("> 0" if strict else ">= 0"), "positive numbers")


def check_keys(cfg: Any) -> None:
    """Reject keys that the schema of their node does not declare.

    Hydra checks overrides against the schemas while composing, but lets ``+key=value`` add a
    key to any node (it opens the node for the addition): ``+psf.bta=4.0`` would be carried along
    and never read. Nodes that take any key (``cluster.spark_conf``) have no schema of their own.
    """
    from omegaconf import OmegaConf

    from dhs.config.messages import unknown_key

    def walk(node: Any, prefix: str) -> None:
        typ = OmegaConf.get_type(node)
        if not dataclasses.is_dataclass(typ):
            return
        declared = {f.name for f in dataclasses.fields(typ)}
        for key in node.keys():
            full = f"{prefix}{key}"
            if not prefix and key == "hydra":  # Hydra's own node (a sweep's job config)
                continue
            if key not in declared:
                origin = _origin(cfg, full)
                raise ConfigError(unknown_key(full, typ, origin=origin if "override" in origin else None))
            child = node._get_node(key)
            if OmegaConf.is_dict(child) and not child._is_missing() and not child._is_none():
                walk(child, full + ".")

    walk(cfg, "")


def _names(cfg: Any) -> None:
    """Stage ids come from dhs.stages; psf, source, cluster and finder schemas fix their option's name
    (the code dispatches on it); grid, tier and survey names are free."""
    from dhs.stages import STAGE_MODULES

    _choice(cfg, "stage.name", cfg.stage.name, tuple(STAGE_MODULES))
    for group in ("source", "psf", "cluster", "finder"):
        from omegaconf import OmegaConf

        name = fixed_name(OmegaConf.get_type(cfg[group]))
        if name is not None and cfg[group].name != name:
            _fail(cfg, f"{group}.name", cfg[group].name,
                  f"this option's model is {name!r}; pick another option with `{group}=...` instead",
                  name)


def check_values(cfg: Any) -> None:
    """Reject bad values before any work. Raises ConfigError naming key, allowed values, file."""
    _names(cfg)
    _choice(cfg, "survey.source", cfg.survey.source, ("bricks", "cutout_service"))
    _choice(cfg, "survey.cutout_psf", cfg.survey.cutout_psf, ("map", "manifest"))
    _parent(cfg)
    _choice(cfg, "tier.controls", cfg.tier.controls, ("paired", "unpaired"))
    _choice(cfg, "cache.mode", cfg.cache.mode, ("brick", "none"))
    _spark_conf(cfg)
    _locations(cfg)
    _positive(cfg, "psf.default_fwhm_arcsec", cfg.psf.default_fwhm_arcsec)
    _positive(cfg, "psf.kernel_fwhm_multiple", cfg.psf.kernel_fwhm_multiple)
    if "beta" in cfg.psf and not cfg.psf.beta > 1:
        _fail(cfg, "psf.beta", cfg.psf.beta, "a Moffat profile needs beta > 1", "beta > 1")
    if not 0.0 <= cfg.tier.control_frac <= 1.0:
        _fail(cfg, "tier.control_frac", cfg.tier.control_frac, "outside [0, 1]", "0 <= x <= 1")
    for size in cfg.tier.stamp_sizes:
        if not (isinstance(size, int) and size > 0 and size % 2 == 0):
            _fail(cfg, "tier.stamp_sizes", list(cfg.tier.stamp_sizes),
                  f"stamp size {size} is not a positive even integer", "e.g. [64, 96]")
    for key, bands in [("bands", cfg.bands)] + [
        (f"tier.bandsets[{i}]", list(b)) for i, b in enumerate(cfg.tier.bandsets)
    ]:
        bad = [b for b in bands if b not in BANDS]
        if bad or not bands:
            letters = [c for b in bands for c in str(b)]
            hint = (f"; write bands=[{','.join(letters)}]" if key == "bands" and bad
                    and all(c in BANDS for c in letters) else "")
            _fail(cfg, key, "".join(bands) if key != "bands" else list(bands),
                  f"bands {bad or 'empty'} are not DR10 optical bands{hint}", "g, r, i, z")
    _grid(cfg)
    if cfg.tier.replicates < 1:
        _fail(cfg, "tier.replicates", cfg.tier.replicates, "must be >= 1", "1, 2, ...")
    if cfg.tier.n_per_config < 1:
        _fail(cfg, "tier.n_per_config", cfg.tier.n_per_config, "must be >= 1", "1, 2, ...")
    _positive(cfg, "mock_survey.brick_size_pix", cfg.mock_survey.brick_size_pix)
    _positive(cfg, "cosmos_bank.pixscale_arcsec", cfg.cosmos_bank.pixscale_arcsec)
    _positive(cfg, "completeness.z", cfg.completeness.z)
    _positive(cfg, "score.batch_size", cfg.score.batch_size)
    c = cfg.completeness
    for key, values in (("completeness.fpr", [c.fpr]), ("completeness.fpr_grid", list(c.fpr_grid)),
                        ("completeness.prevalence", [c.prevalence])):
        if not values or not all(0.0 < v < 1.0 for v in values):
            _fail(cfg, key, values[0] if len(values) == 1 else values, "a rate must lie in (0, 1)", "0 < x < 1")
    _positive(cfg, "inject.core_mask_radius", cfg.inject.core_mask_radius, strict=False)
    _positive(cfg, "inject.supersample", cfg.inject.supersample, strict=False)
    _positive(cfg, "output.quantize", cfg.output.quantize, strict=False)
    for key in ("bad_pixel_frac_max", "wise_brightmask_frac_max"):
        value = cfg.completeness[key]
        if not 0.0 <= value <= 1.0:
            _fail(cfg, f"completeness.{key}", value, "outside [0, 1]", "0 <= x <= 1")
    _numbers(cfg)  # after the checks above, whose wording is more specific


def _parent(cfg: Any) -> None:
    """parent.*: footprint, units, regions and selection sets (also used by targets=PATH)."""
    p = cfg.parent
    _choice(cfg, "parent.footprint", p.footprint, ("south", "north"))
    _choice(cfg, "parent.depth_units", p.depth_units, ("auto", "ivar", "mag"))
    _choice(cfg, "parent.psfsize_units", p.psfsize_units, ("auto", "arcsec", "pixel"))
    n = p.region_nside
    if not (isinstance(n, int) and 1 <= n <= 8192 and n & (n - 1) == 0):
        _fail(cfg, "parent.region_nside", n, "not a power of 2", "1, 2, 4, ..., 8192")
    f = list(p.split_fractions)
    if len(f) != 3 or min(f) < 0 or abs(sum(f) - 1.0) > 1e-9:
        _fail(cfg, "parent.split_fractions", f, "need train, val, test fractions >= 0 summing to 1",
              "e.g. [0.7, 0.15, 0.15]")
    for m in p.ranking_modes:
        _choice(cfg, "parent.ranking_modes", m, ("density", "psf_weighted", "n_lrg"))
    if not 0.0 < p.topk_frac <= 1.0:
        _fail(cfg, "parent.topk_frac", p.topk_frac, "outside (0, 1]", "0 < x <= 1")
    _positive(cfg, "parent.chunk_rows", p.chunk_rows)
    from dhs.parent.names import FLAGS

    _choice(cfg, "parent.rank_flag", p.rank_flag, FLAGS)


def _numbers(cfg: Any) -> None:
    """Every number finite and inside the range of its key (dhs.config.ranges.NUMERIC_RULES);
    lists element by element."""
    from dhs.config.ranges import numeric_leaves, violation

    for key, value in numeric_leaves(cfg):
        bad = violation(key, value)
        if bad is not None:
            _fail(cfg, key, value, *bad)


_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
#: Where data can live: local paths, file://, S3; the survey is also read over HTTP(S).
_STORAGE_SCHEMES = ("file", "s3", "s3a", "s3n")
_URL_KEYS = {"paths.data_root": _STORAGE_SCHEMES, "paths.cache_root": _STORAGE_SCHEMES,
             "paths.cosmos_bank": _STORAGE_SCHEMES, "survey.tables_root": _STORAGE_SCHEMES,
             "survey.base_url": _STORAGE_SCHEMES + ("http", "https"),
             "survey.cutout_url": ("http", "https")}
_SPARK_MASTER = re.compile(r"^(local(\[(\*|[1-9][0-9]*)(,[0-9]+)?\])?|local-cluster\[[0-9]+,[0-9]+,[0-9]+\]"
                           r"|spark://[A-Za-z0-9.-]+(:[0-9]+)?(,[A-Za-z0-9.-]+(:[0-9]+)?)*|yarn"
                           r"|k8s://\S+|mesos://\S+)$")
_ENDPOINT = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?/?$|^https?://\[[0-9A-Fa-f:]+\](:[0-9]{1,5})?/?$")


def _locations(cfg: Any) -> None:
    """URL schemes of data locations, the S3 endpoint and the Spark master."""
    for key, schemes in _URL_KEYS.items():
        group, _, leaf = key.partition(".")
        try:
            value = cfg[group].get(leaf)
        except Exception:  # an unresolvable interpolation is reported where it is read
            continue
        m = _SCHEME.match(str(value or ""))
        if m and m.group(1).lower() not in schemes:
            _fail(cfg, key, value, f"the {m.group(1)}:// scheme is not supported",
                  ", ".join(f"{x}://" for x in schemes) + ("" if "file" not in schemes else " or a local path"))
    endpoint = (cfg.get("storage") or {}).get("s3_endpoint_url")
    if endpoint and not _ENDPOINT.match(str(endpoint)):
        _fail(cfg, "storage.s3_endpoint_url", endpoint, "not an http(s)://host[:port] URL",
              "e.g. http://127.0.0.1:9000 or https://s3.us-west-2.amazonaws.com")
    master = cfg.cluster.get("spark_master")
    if master is not None and not _SPARK_MASTER.match(str(master)):
        _fail(cfg, "cluster.spark_master", master, "not a Spark master URL",
              "local, local[*], local[N], spark://host:port, yarn, k8s://..., mesos://...")


def _grid(cfg: Any) -> None:
    """Grid axes non-empty unless their quantity is drawn from a prior (then empty)."""
    g = cfg.grid
    _choice(cfg, "grid.source_mag", g.source_mag, ("dmag", "prior"))
    _choice(cfg, "grid.source_size", g.source_size, ("grid", "prior"))
    _choice(cfg, "grid.lens_shape", g.lens_shape, ("uniform", "light", "prior"))
    drawn = {"src_dmag": g.source_mag == "prior", "src_reff": g.source_size == "prior"}
    for axis in ("theta_e", "src_dmag", "src_reff", "src_e", "shear"):
        if drawn.get(axis) and len(g[axis]):
            mode = "source_mag" if axis == "src_dmag" else "source_size"
            _fail(cfg, f"grid.{axis}", list(g[axis]), f"not read when grid.{mode}=prior (the value "
                  "is drawn per task)", f"{axis}: [] or grid.{mode}={'dmag' if axis == 'src_dmag' else 'grid'}")
        if not drawn.get(axis) and len(g[axis]) == 0:
            _fail(cfg, f"grid.{axis}", [], "a grid axis cannot be empty", "a non-empty list")
    p = g.priors
    for key in ("src_mag_r_range", "src_reff_range", "lens_q_range"):
        if len(p[key]) != 2 or not p[key][0] < p[key][1]:
            _fail(cfg, f"grid.priors.{key}", list(p[key]), "needs [lo, hi] with lo < hi", "e.g. [0.5, 0.99]")
    if not (0.0 < p.lens_q_range[0] and p.lens_q_range[1] <= 1.0):
        _fail(cfg, "grid.priors.lens_q_range", list(p.lens_q_range), "axis ratios lie in (0, 1]",
              "e.g. [0.5, 0.99]")
    if not p.src_reff_range[0] > 0:
        _fail(cfg, "grid.priors.src_reff_range", list(p.src_reff_range), "sizes must be > 0", "e.g. [0.05, 1.0]")
    for key in ("src_reff_median", "lens_q_sigma", "src_reff_sigma_dex"):
        _positive(cfg, f"grid.priors.{key}", p[key])
    for key in ("lens_q_light_scatter", "lens_pa_light_scatter_deg"):
        _positive(cfg, f"grid.priors.{key}", p[key], strict=False)


def _spark_conf(cfg: Any) -> None:
    """cluster.spark_conf: flat Spark properties (a dotted path on the command line nests them)."""
    conf = cfg.cluster.get("spark_conf")
    for key, value in (conf or {}).items():
        if not isinstance(value, (str, int, float, bool)):
            _fail(cfg, f"cluster.spark_conf.{key}", value, "Spark properties are flat key: value pairs",
                  "write e.g. cluster.spark_conf={spark.executor.memory:4g}")
