"""Structured configs (dataclasses) for every config group, registered in Hydra's ConfigStore.

Hydra rejects unknown keys and wrong types against these schemas while composing; `check`
then rejects bad values (FWHM <= 0, fractions outside [0, 1], ...) with a message that names
the key, the allowed values and the file the value came from. Both happen before any work.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

STAGES = ("plan", "all", "cosmos_bank", "mock_survey", "4a", "4b", "4c", "4d", "4p5", "validate")
SOURCES = ("sersic", "cosmos")
PSFS = ("moffat", "gaussian")
GRIDS = ("grid_small", "grid_medium", "grid_full", "grid_sota")
TIERS = ("debug", "grid", "train")
CLUSTERS = ("local", "spark_local", "emr")
SURVEYS = ("mock", "dr10_south")
BANDS = ("g", "r", "i", "z")


class ConfigError(ValueError):
    """A configuration value is invalid; the message names key, allowed values and file."""


# ----------------------------------------------------------------------------- groups
@dataclass
class StageConfig:
    """Which stage runs (`dhs stage=4c`). ``steps`` (stage=all only): the override lists of the
    pipeline's steps, each composed on top of the run's own overrides."""

    name: str = "plan"
    steps: List[List[str]] = field(default_factory=list)


@dataclass
class SourceConfig:
    """Lensed-source model. Sersic uses the manifest's src_reff/src_e/src_phi; cosmos draws a
    template from the COSMOS bank by blake2b(task_id + cosmos_salt) mod bank size."""

    name: str = "sersic"
    sersic_n: float = 1.0
    z_source: float = 1.5
    cosmos_salt: str = ""
    bank_path: str = "${paths.cosmos_bank}"
    achromatic: bool = True


@dataclass
class PsfConfig:
    """Per-band PSF model; FWHM comes from psfsize maps, the manifest or `default_fwhm_arcsec`."""

    name: str = "moffat"
    beta: float = 3.5
    default_fwhm_arcsec: float = 1.3
    kernel_fwhm_multiple: float = 5.0
    max_kernel_pix: int = 63


@dataclass
class GridConfig:
    """Injection parameter grid: the full product of its axes, in this order."""

    name: str = "grid_small"
    theta_e: List[float] = field(default_factory=lambda: [0.3, 0.6, 1.0])
    src_dmag: List[float] = field(default_factory=lambda: [1.0, 2.0])
    src_reff: List[float] = field(default_factory=lambda: [0.08, 0.15])
    src_e: List[float] = field(default_factory=lambda: [0.0, 0.3])
    shear: List[float] = field(default_factory=lambda: [0.0, 0.03])


@dataclass
class TierConfig:
    """Sampling size and controls of a manifest tier (debug, grid, train)."""

    name: str = "debug"
    n_per_config: int = 5
    n_total_per_split: Optional[int] = None
    control_frac: float = 0.0
    controls: str = "paired"
    replicates: int = 2
    stamp_sizes: List[int] = field(default_factory=lambda: [64, 96])
    bandsets: List[str] = field(default_factory=lambda: ["r", "grz"])


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
class ClusterConfig:
    """Where shards run: joblib (local), PySpark (spark_local / master URL) or EMR."""

    name: str = "local"
    n_jobs: int = -1
    spark_master: str = "local[*]"
    spark_conf: Any = field(default_factory=dict)
    dry_run: bool = False
    emr: EmrConfig = field(default_factory=EmrConfig)


@dataclass
class SurveyConfig:
    """Imaging survey: the embedded mock or DR10 south from the public portal."""

    name: str = "mock"
    source: str = "bricks"
    base_url: str = "${paths.data_root}/mock_survey/coadd"
    cutout_url: str = "https://www.legacysurvey.org/viewer/fits-cutout"
    cutout_layer: str = "ls-dr10-south"
    tables_root: str = "${paths.data_root}/mock_survey/tables"
    pixscale_arcsec: float = 0.262
    brick_size_pix: int = 3600


# ----------------------------------------------------------------------------- stage settings
@dataclass
class PathsConfig:
    data_root: str = "outputs/data"
    runs_root: str = "outputs/runs"
    cache_root: str = "${paths.data_root}/coadd_cache"
    cosmos_bank: str = "${paths.data_root}/cosmos_bank/cosmos_bank.h5"


@dataclass
class SeedsConfig:
    split_seed: int = 13
    seed_base: int = 42


@dataclass
class StorageConfig:
    """Object-store settings; endpoint_url points s3:// at a local server (tests, MinIO)."""

    s3_endpoint_url: Optional[str] = None
    s3_region: Optional[str] = None
    aws_access_key_id: Optional[str] = None
    aws_secret_access_key: Optional[str] = None


@dataclass
class CosmosBankConfig:
    """stage=cosmos_bank: GalSim RealGalaxyCatalog -> HDF5 bank of unit-sum templates."""

    input: Optional[str] = None
    catalog_name: Optional[str] = None
    stamp_size: int = 96
    pixscale_arcsec: float = 0.03
    hlr_min_arcsec: float = 0.1
    hlr_max_arcsec: float = 1.0
    max_galaxies: Optional[int] = None
    chunk: int = 256
    smooth_sigma_pix: float = 1.5
    detect_nsigma: float = 2.0


@dataclass
class MockSurveyConfig:
    """stage=mock_survey: a small deterministic survey in exact DR10 format."""

    seed: int = 2026
    n_bricks: int = 12
    brick_size_pix: int = 400
    galaxies_per_brick: int = 40
    stars_per_brick: int = 2
    n_regions: int = 6
    psf_fwhm_r_range: List[float] = field(default_factory=lambda: [1.0, 1.6])
    depth_r_levels: List[float] = field(default_factory=lambda: [23.6, 24.2])


@dataclass
class ManifestConfig:
    """stage=4a: task manifests."""

    parent: str = "${survey.tables_root}/parent_catalog.parquet"
    bricks_with_region: str = "${survey.tables_root}/bricks_with_region.parquet"
    region_selections: str = "${survey.tables_root}/region_selections.parquet"
    require_lrg_flag: str = "is_v3_color_relaxed"
    selection_set_ids: Optional[List[str]] = None
    max_total_tasks: int = 30_000_000
    write_csv: bool = False
    shard_max_tasks: int = 500_000


@dataclass
class CacheConfig:
    """stage=4b: coadd cache (mode=brick) or direct section reads (mode=none).

    threads: fetch threads (I/O bound); retries / backoff_s (seconds, doubled per retry, jittered);
    timeout_s: per-request timeout in seconds; lru_files: open files kept per worker thread;
    range_block_bytes: block size of remote ranged reads; verify_data: decompress every fetched
    file; probe: with mode=none, ask the source for one file per brick to blacklist missing bricks.
    """

    mode: str = "brick"
    kinds: List[str] = field(
        default_factory=lambda: ["image", "invvar", "maskbits", "psfsize"]
    )
    threads: int = 8
    retries: int = 5
    backoff_s: float = 0.5
    timeout_s: float = 60.0
    lru_files: int = 16
    range_block_bytes: int = 32768
    verify_data: bool = False
    probe: bool = True


@dataclass
class InjectConfig:
    """stage=4c: injection.

    supersample: 0 = the renderer's default (adaptive, factor 5), else a uniform factor;
    core_mask_radius: pixels; shard_max_tasks: tasks per shard (whole bricks);
    run_name: folder of this injection under phase4c/<variant>/ (a sweep over sources or PSFs
    writes side by side).
    """

    supersample: int = 0
    core_mask_radius: float = 0.0
    shard_max_tasks: int = 500
    run_name: str = "${source.name}_${psf.name}"


@dataclass
class OutputConfig:
    save_arc: bool = False
    compression: str = "zstd"


@dataclass
class CompletenessConfig:
    """stage=4d: recovery definition, validity cuts and binning."""

    arc_snr_min: float = 5.0
    resolution_min: float = 0.8
    score_threshold: float = 0.5
    bad_pixel_frac_max: float = 0.2
    wise_brightmask_frac_max: float = 0.2
    z: float = 1.96
    resolution_edges: List[float] = field(default_factory=lambda: [0.0, 0.4, 0.6, 0.8, 1.0])


@dataclass
class CompactConfig:
    """stage=4p5: Parquet compaction."""

    dataset: Optional[str] = None
    target_file_mb: float = 256.0


@dataclass
class DhsConfig:
    """The root config: groups plus common keys and per-stage settings."""

    stage: StageConfig = MISSING
    source: SourceConfig = MISSING
    psf: PsfConfig = MISSING
    grid: GridConfig = MISSING
    tier: TierConfig = MISSING
    cluster: ClusterConfig = MISSING
    survey: SurveyConfig = MISSING
    paths: PathsConfig = field(default_factory=PathsConfig)
    seeds: SeedsConfig = field(default_factory=SeedsConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    variant: str = "v3_color_relaxed"
    bands: List[str] = field(default_factory=lambda: ["g", "r", "z"])
    skip_if_exists: bool = True
    force: bool = False
    experiment_id: Optional[str] = None
    target: str = "4c"
    scores: Optional[str] = None
    metrics_only: bool = False
    cosmos_bank: CosmosBankConfig = field(default_factory=CosmosBankConfig)
    mock_survey: MockSurveyConfig = field(default_factory=MockSurveyConfig)
    manifest: ManifestConfig = field(default_factory=ManifestConfig)
    cache: CacheConfig = field(default_factory=CacheConfig)
    inject: InjectConfig = field(default_factory=InjectConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    completeness: CompletenessConfig = field(default_factory=CompletenessConfig)
    compact: CompactConfig = field(default_factory=CompactConfig)


GROUP_SCHEMAS = {
    "stage": StageConfig,
    "source": SourceConfig,
    "psf": PsfConfig,
    "grid": GridConfig,
    "tier": TierConfig,
    "cluster": ClusterConfig,
    "survey": SurveyConfig,
}


def check(cfg: Any) -> None:
    """Reject bad values before any work (see dhs.config.checks). Raises ConfigError naming
    the key, the allowed values and the file the value came from."""
    from dhs.config.checks import check_values

    check_values(cfg)


def register() -> None:
    """Register the root schema and one schema per group (used by the YAML defaults lists)."""
    cs = ConfigStore.instance()
    cs.store(name="dhs_schema", node=DhsConfig)
    for group, schema in GROUP_SCHEMAS.items():
        cs.store(group=group, name=f"{group}_schema", node=schema)
    register_launcher()


def register_launcher() -> None:
    """Make ``hydra/launcher=dhs_emr`` known to Hydra in editable installs too (see
    hydra_plugins.dhs_launcher.register)."""
    try:
        from hydra_plugins.dhs_launcher import register as register_dhs_launcher
    except ImportError:  # the launcher package is not installed: sweeps run with the others
        return
    register_dhs_launcher()


register()
