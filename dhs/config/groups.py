"""One structured-config schema per option of the config groups (stage, source, psf, grid, tier,
cluster, survey, finder).

Each option YAML names its schema first in its defaults list, e.g. ``conf/psf/gaussian.yaml``::

    defaults:
      - /gaussian_psf_schema@_here_

so Hydra rejects, while composing, a key that the chosen option does not have
(``psf=gaussian psf.beta=3``, ``source=sersic source.cosmos_salt=x``) or a value of the wrong type.
The schemas are stored at the root of the ConfigStore (see :data:`SCHEMAS`), outside every group:
they are never options of a group, so ``--help``, shell completion and error messages never list
them. Which options exist is decided by the YAML files in ``conf/`` alone: a new grid, tier or
survey YAML that names its schema needs no Python edit.
"""

from __future__ import annotations

from dataclasses import MISSING as NO_DEFAULT
from dataclasses import dataclass, field, fields, make_dataclass
from typing import Any, List, Optional

from omegaconf import MISSING, DictConfig


# ----------------------------------------------------------------------------- stage
@dataclass
class StageConfig:
    """Which stage runs (``dhs stage=4c``); ``name`` is the stage id (aliases resolve to it)."""

    name: str = MISSING


@dataclass
class PipelineStage(StageConfig):
    """stage=all. ``steps``: the override lists of the pipeline's steps, each composed on top of
    the run's own overrides."""

    steps: List[List[str]] = field(default_factory=list)


# ----------------------------------------------------------------------------- source
@dataclass
class SourceBase:
    """Lensed-source model. ``z_source``: source redshift (recorded with every task).

    There is no per-band switch: a COSMOS template is a single HST band and a Sersic source
    shares its shape across bands, so rendering each band on its own would give the same arcs.
    """

    name: str = MISSING
    z_source: float = 1.5


@dataclass
class SersicSource(SourceBase):
    """source=sersic: elliptical Sersic profile; half-light radius, ellipticity and angle come
    from the manifest (src_reff arcsec, src_e, src_phi rad East of North); ``sersic_n`` index."""

    name: str = "sersic"
    sersic_n: float = 1.0


@dataclass
class CosmosSource(SourceBase):
    """source=cosmos: a real HST galaxy from the COSMOS bank (``bank_path``, HDF5 written by
    stage=cosmos_bank), drawn by blake2b(task_id + ``cosmos_salt``) mod bank size."""

    name: str = "cosmos"
    cosmos_salt: str = ""
    bank_path: str = "${paths.cosmos_bank}"


# ----------------------------------------------------------------------------- psf
@dataclass
class PsfBase:
    """Per-band PSF. FWHM (arcsec) comes from the psfsize maps, the manifest or
    ``default_fwhm_arcsec``; the kernel spans ``kernel_fwhm_multiple`` x FWHM, at most
    ``max_kernel_pix`` pixels (odd)."""

    name: str = MISSING
    default_fwhm_arcsec: float = 1.3
    kernel_fwhm_multiple: float = 5.0
    max_kernel_pix: int = 63


@dataclass
class MoffatPsf(PsfBase):
    """psf=moffat: Moffat profile with power-law index ``beta`` (> 1)."""

    name: str = "moffat"
    beta: float = 3.5


@dataclass
class GaussianPsf(PsfBase):
    """psf=gaussian: circular Gaussian (no shape parameter)."""

    name: str = "gaussian"


# ----------------------------------------------------------------------------- grid, tier
@dataclass
class GridPriors:
    """Per-task distributions of the quantities a grid draws instead of gridding (README,
    "Injection priors", cites the source of every default).

    src_mag_r_range / src_mag_count_slope: unlensed source r magnitude, p(m) ~ 10**(slope m) on
    the range; src_reff_median (arcsec) / src_reff_sigma_dex / src_reff_range: log-normal source
    half-light radius, truncated; lens_q_mean / lens_q_sigma / lens_q_range: truncated normal lens
    axis ratio; lens_q_light_scatter: fractional scatter of q_mass / q_light;
    lens_pa_light_scatter_deg: scatter of the mass position angle about the light's (deg)."""

    src_mag_r_range: List[float] = field(default_factory=lambda: [22.0, 25.5])
    src_mag_count_slope: float = 0.0
    src_reff_median: float = 0.25
    src_reff_sigma_dex: float = 0.2
    src_reff_range: List[float] = field(default_factory=lambda: [0.05, 1.0])
    lens_q_mean: float = 0.78
    lens_q_sigma: float = 0.12
    lens_q_range: List[float] = field(default_factory=lambda: [0.5, 0.99])
    lens_q_light_scatter: float = 0.11
    lens_pa_light_scatter_deg: float = 10.0


@dataclass
class GridConfig:
    """Injection parameter grid: the full product of its axes, in this order. theta_e: Einstein
    radius (arcsec); src_dmag: source magnitude below the lens; src_reff: source half-light
    radius (arcsec); src_e: source ellipticity; shear: external shear.

    source_mag: 'dmag' (source r = lens r + src_dmag, the earlier system) or 'prior' (drawn from
    ``priors``; src_dmag must then be empty); source_size: 'grid' (src_reff axis) or 'prior'
    (drawn; src_reff empty); lens_shape: 'uniform' (lens e uniform in [0.05, 0.5], position
    angle uniform: the earlier system), 'light' (axis ratio and angle from the parent's
    shape_e1/shape_e2 with the ``priors`` scatter; the q prior where the shape is round or
    missing) or 'prior' (q prior, uniform angle)."""

    name: str = MISSING
    theta_e: List[float] = field(default_factory=lambda: [0.3, 0.6, 1.0])
    src_dmag: List[float] = field(default_factory=lambda: [1.0, 2.0])
    src_reff: List[float] = field(default_factory=lambda: [0.08, 0.15])
    src_e: List[float] = field(default_factory=lambda: [0.0, 0.3])
    shear: List[float] = field(default_factory=lambda: [0.0, 0.03])
    source_mag: str = "dmag"
    source_size: str = "grid"
    lens_shape: str = "uniform"
    priors: GridPriors = field(default_factory=GridPriors)


@dataclass
class TierConfig:
    """Sampling size and controls of a manifest tier; every stamp size (pixels) x bandset
    (a string of bands, e.g. grz) is an experiment."""

    name: str = MISSING
    n_per_config: int = 5
    n_total_per_split: Optional[int] = None
    control_frac: float = 0.0
    controls: str = "paired"
    replicates: int = 2
    stamp_sizes: List[int] = field(default_factory=lambda: [64, 96])
    bandsets: List[str] = field(default_factory=lambda: ["r", "grz"])


# ----------------------------------------------------------------------------- cluster
@dataclass
class EmrConfig:
    """EMR submission settings (cluster=emr). Region is never defaulted silently."""

    region: Optional[str] = None
    release_label: str = "emr-7.6.0"
    master_instance_type: str = "m5.xlarge"
    core_instance_type: str = "m5.2xlarge"
    core_instance_count: int = 2
    subnet_id: Optional[str] = None
    service_role: str = "EMR_DefaultRole"
    job_flow_role: str = "EMR_EC2_DefaultRole"
    log_uri: Optional[str] = None
    staging_uri: Optional[str] = None
    auto_terminate: bool = True
    cluster_id: Optional[str] = None
    endpoint_url: Optional[str] = None
    poll_seconds: float = 30.0
    spark_submit_args: List[str] = field(default_factory=list)
    deploy_mode: str = "cluster"
    python: str = "python3.11"
    wheel: Optional[str] = None
    bootstrap_commands: List[str] = field(default_factory=list)
    action_on_failure: str = "CONTINUE"
    wait: bool = True
    timeout_minutes: Optional[float] = None


@dataclass
class ClusterBase:
    """Where shards run."""

    name: str = MISSING


@dataclass
class LocalCluster(ClusterBase):
    """cluster=local: joblib processes on this machine; ``n_jobs`` <= 0 means one per core."""

    name: str = "local"
    n_jobs: int = -1


def _open_dict() -> Any:
    # A node that takes any key (Spark property names contain dots): with the struct flag off,
    # `cluster.spark_conf={spark.executor.memory:4g}` merges as written, no `+` needed.
    return DictConfig({}, flags={"struct": False})


@dataclass
class SparkCluster(ClusterBase):
    """cluster=spark_local: PySpark at ``spark_master`` (local[*], a spark:// URL or yarn);
    ``spark_conf``: Spark properties, e.g. ``cluster.spark_conf={spark.executor.memory:4g}``;
    ``python``: the workers' interpreter on the nodes (null: $PYSPARK_PYTHON, else this one)."""

    name: str = "spark_local"
    spark_master: str = "local[*]"
    spark_conf: Any = field(default_factory=_open_dict)
    python: Optional[str] = None


@dataclass
class EmrCluster(ClusterBase):
    """cluster=emr: submit the run as EMR steps (``emr.*``); ``dry_run`` prints them only;
    ``spark_conf``: Spark properties for spark-submit, over the memory settings sized from the
    workload (e.g. ``cluster.spark_conf={spark.executor.cores:2}``)."""

    name: str = "emr"
    dry_run: bool = False
    spark_conf: Any = field(default_factory=_open_dict)
    emr: EmrConfig = field(default_factory=EmrConfig)


# ----------------------------------------------------------------------------- survey
@dataclass
class SurveyConfig:
    """Imaging survey. ``source``: bricks (coadd files under ``base_url``) or cutout_service
    (one viewer cutout per target from ``cutout_url``); ``pixscale_arcsec``: arcsec per pixel;
    ``brick_size_pix``: side of a brick (pixels); ``tables_root``: the parent catalog, brick and
    region tables stage 4a reads; ``sweep_root``: the DR10 sweep catalogs stage parent reads.
    Cutout mode: ``cutout_psf`` map (each target's FWHM from its brick's psfsize map under
    ``base_url``) or manifest; ``cutout_sky_invvar``: accept image-only cutouts, with the inverse
    variance estimated from the sky (off: they are refused)."""

    name: str = MISSING
    source: str = "bricks"
    base_url: str = "${paths.data_root}/mock_survey/coadd"
    cutout_url: str = "https://www.legacysurvey.org/viewer/fits-cutout"
    cutout_layer: str = "ls-dr10-south"
    tables_root: str = "${paths.data_root}/mock_survey/tables"
    sweep_root: str = "${paths.data_root}/mock_survey/sweep/10.1"
    cutout_psf: str = "map"
    cutout_sky_invvar: bool = False
    pixscale_arcsec: float = 0.262
    brick_size_pix: int = 3600


# ----------------------------------------------------------------------------- finder
@dataclass
class FinderBase:
    """The lens finder of stage=score (and the recovery of 4d): ``name`` fixes the finder; every
    other key is a field of the finder's frozen settings class, documented there
    (``dhs.finders.settings``)."""

    name: str = MISSING


#: Annotations of the finder settings classes (postponed, as strings) -> OmegaConf types.
_TYPES = {"str": str, "float": float, "int": int, "bool": bool, "tuple[str, ...]": List[str],
          "tuple[float, ...]": List[float], "dict[str, Any]": Any}


def finder_schema(name: str, settings: type) -> type:
    """The schema of ``finder=<name>``: ``name`` fixed, then the fields of the finder's settings
    class with its defaults (tuples as lists; a dict takes any key, as ``cluster.spark_conf``; a
    field without default starts empty and the settings class says what it needs), so a default
    lives in one place."""
    specs: list[Any] = [("name", str, field(default=name))]
    for f in fields(settings):
        typ = _TYPES[str(f.type)]
        if f.default_factory is not NO_DEFAULT:  # type: ignore[misc]
            value = f.default_factory()  # type: ignore[misc]
        else:
            value = f.default if f.default is not NO_DEFAULT else typ()
        if isinstance(value, dict):
            specs.append((f.name, typ, field(default_factory=_open_dict)))
        elif isinstance(value, (tuple, list)):
            specs.append((f.name, typ, field(default_factory=lambda v=value: list(v))))
        else:
            specs.append((f.name, typ, field(default=value)))
    return make_dataclass(f"{settings.__name__.replace('Settings', '')}Config", specs, bases=(FinderBase,))


def _finder_schemas() -> tuple[tuple[str, str, type], ...]:
    from dhs.finders.settings import ArcFinderSettings, OnnxFinderSettings, PythonFinderSettings, SnrProxySettings

    return tuple(("finder", f"{name}_finder_schema", finder_schema(name, cls)) for name, cls in
                 (("arcfinder", ArcFinderSettings), ("onnx", OnnxFinderSettings),
                  ("python", PythonFinderSettings), ("snr_proxy", SnrProxySettings)))


#: (group, ConfigStore name, schema) of every option schema; the names sit at the root of the
#: ConfigStore, never inside a group. The first schema of a group is the type of its root node.
SCHEMAS: tuple[tuple[str, str, type], ...] = (
    ("stage", "stage_schema", StageConfig),
    ("stage", "pipeline_stage_schema", PipelineStage),
    ("source", "sersic_source_schema", SersicSource),
    ("source", "cosmos_source_schema", CosmosSource),
    ("psf", "moffat_psf_schema", MoffatPsf),
    ("psf", "gaussian_psf_schema", GaussianPsf),
    ("grid", "grid_schema", GridConfig),
    ("tier", "tier_schema", TierConfig),
    ("cluster", "local_cluster_schema", LocalCluster),
    ("cluster", "spark_cluster_schema", SparkCluster),
    ("cluster", "emr_cluster_schema", EmrCluster),
    ("survey", "survey_schema", SurveyConfig),
    *_finder_schemas(),
)

#: The config groups, in the order of the root config's defaults list.
GROUPS: tuple[str, ...] = ("stage", "source", "psf", "grid", "tier", "cluster", "survey", "finder")


def schemas_of(group: str) -> list[type]:
    """The option schemas of ``group``."""
    return [cls for g, _, cls in SCHEMAS if g == group]


def fixed_name(cls: type) -> Optional[str]:
    """The ``name`` a schema fixes (psf=moffat -> 'moffat'), or None where each YAML names itself."""
    from dataclasses import fields, is_dataclass

    if not is_dataclass(cls):
        return None
    default = next(f.default for f in fields(cls) if f.name == "name")
    return None if default == MISSING else str(default)
