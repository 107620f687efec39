"""The root structured config (groups, common keys, one node per stage), registered in Hydra's
ConfigStore with the option schemas of dhs.config.groups.

Hydra rejects unknown keys and wrong types against these schemas while composing; `check`
then rejects keys added with ``+`` that no schema declares and bad values (FWHM <= 0, fractions
outside [0, 1], ...) with a message that names the key, the allowed values and the file the value
came from. Both happen before any work.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf

from dhs.config.groups import (GROUPS, SCHEMAS, ClusterBase, CosmosSource, EmrCluster, EmrConfig,  # noqa: F401
                               FinderBase, GaussianPsf, GridConfig, LocalCluster, MoffatPsf, PipelineStage, PsfBase,
                               SersicSource, SourceBase, SparkCluster, StageConfig, SurveyConfig,
                               TierConfig)
from dhs.errors import ConfigError  # noqa: F401  (raised by the checks; importable from here too)

#: The DR10 optical bands.
BANDS = ("g", "r", "i", "z")


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
    detect_nsigma: float = 1.5
    min_template_snr: float = 15.0
    deconvolve_psf: bool = True
    psf_target_fwhm_arcsec: float = 0.07


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
class ParentConfig:
    """stage=parent: the LRG parent sample and the brick and region tables from DR10 catalogs.

    catalogs: sweep or tractor FITS files, folders of them (local or s3://) or http(s) URLs; a
    bare file name is taken relative to survey.sweep_root; null: every file under
    survey.sweep_root. out_root: where the tables go (survey=dr10_south reads them from there).
    footprint: south or north colour cuts. region_nside: HEALPix nside of the regions;
    split_fractions: train, val, test. chunk_rows: catalog rows read at a time. depth_units /
    psfsize_units: auto (recognised from the values), ivar / mag, arcsec / pixel.
    rank_flag: flag counted per brick and region (ranking mode n_lrg); topk_frac: fraction of each
    split's regions in a topk selection set. bricks_summary: optional DR10 per-brick summary table
    (survey-bricks-dr10-south.fits.gz) whose PSF sizes, depths and E(B-V) replace the means.
    """

    catalogs: Optional[List[str]] = None
    out_root: str = "${paths.data_root}/parent/${survey.name}"
    footprint: str = "south"
    region_nside: int = 32
    split_fractions: List[float] = field(default_factory=lambda: [0.7, 0.15, 0.15])
    chunk_rows: int = 100_000
    depth_units: str = "auto"
    psfsize_units: str = "auto"
    rank_flag: str = "is_lrg_desi"
    ranking_modes: List[str] = field(default_factory=lambda: ["density", "psf_weighted", "n_lrg"])
    topk_frac: float = 0.6667
    bricks_summary: Optional[str] = None


@dataclass
class ManifestConfig:
    """stage=4a: task manifests.

    require_lrg_flag: parent column a galaxy must have set (null: keep every row; with
    ``targets`` it filters only when the target list has the column). With ``targets``:
    reference_rmag is the lens r magnitude used for targets without rmag (the grid's src_dmag then
    offsets the source from it), default_depth_r_mag the 5-sigma r depth (AB) of targets whose
    brick has no depth in the list or the brick table. bucket_rows: parent rows per brick bucket
    (the catalog is read in batches and built bucket by bucket; memory, not the output, depends on it).
    """

    parent: str = "${survey.tables_root}/parent_catalog.parquet"
    bricks_with_region: str = "${survey.tables_root}/bricks_with_region.parquet"
    region_selections: str = "${survey.tables_root}/region_selections.parquet"
    require_lrg_flag: Optional[str] = "is_v3_color_relaxed"
    reference_rmag: float = 19.5
    default_depth_r_mag: float = 23.9
    selection_set_ids: Optional[List[str]] = None
    max_total_tasks: int = 30_000_000
    write_csv: bool = False
    shard_max_tasks: int = 500_000
    bucket_rows: int = 250_000


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

    supersample: 0 = the renderer's default (adaptive, factor per row from source size and
    stretch, dhs.physics.sampling), else a uniform factor;
    core_mask_radius: pixels; shard_max_tasks: tasks per shard (whole bricks);
    run_name: folder of this injection under phase4c/<variant>/ (a sweep over sources or PSFs
    writes side by side); metrics_only: write the metrics table only, no stamps;
    photon_noise: add the arc's Poisson noise (effective gain per band from the stamp's
    invvar and the nominal sky, dhs.physics.noise) and update invvar to match;
    experiments: experiment ids or fnmatch patterns (e.g. ['debug_*', 'grid_stamp64_*']) over the
    variant's 4a manifests, all injected in one pass per brick (each brick decoded once for all,
    each written to its own datasets as if run alone); empty: the tier's stamp sizes x bandsets.
    """

    supersample: int = 0
    core_mask_radius: float = 0.0
    shard_max_tasks: int = 500
    run_name: str = "${source.name}_${psf.name}"
    metrics_only: bool = False
    photon_noise: bool = True
    experiments: List[str] = field(default_factory=list)


@dataclass
class OutputConfig:
    """What stage 4c stores. save_arc: also the injected arc alone; compression: Parquet codec.
    quantize: 0 = lossless float32 (default); Q > 0 stores image and arc as integers at sigma / Q
    of each stamp's noise with subtractive dither (FITS tile-compression convention, lossy below
    the noise: error <= sigma / 2Q, noise variance + 1/(12 Q^2); dhs.io.quantize)."""

    save_arc: bool = False
    compression: str = "zstd"
    quantize: float = 0.0


@dataclass
class ScoreConfig:
    """stage=score: the configured finder on the 4c stamps.

    batch_size: stamps handed to the finder at once (one 4c shard is scored batch by batch);
    run_name: folder of the scores under phase4c/<variant>/<inject.run_name>/scores/ (two
    settings of one finder written side by side need two names).
    """

    batch_size: int = 256
    run_name: str = "${finder.name}"


@dataclass
class CompletenessConfig:
    """stage=4d: recovery by the configured finder's scores, validity cuts and binning.

    fpr: the false-positive rate the score threshold is set for, on the valid controls of
    ``threshold_splits`` (every split when empty); threshold: a score threshold given directly
    (then fpr is only measured); finder=snr_proxy uses ``finder.arc_snr_min``. fpr_grid: the
    false-positive rates of the TPR-at-FPR curves; prevalence: the fraction of lenses among the
    targets a search looks at, for the purity; scores: a scores dataset or Parquet file (task_id,
    score) instead of the one stage=score wrote for the configured finder; z: interval width in
    sigma (Wilson intervals).
    """

    fpr: float = 0.01
    threshold: Optional[float] = None
    threshold_splits: List[str] = field(default_factory=list)
    fpr_grid: List[float] = field(default_factory=lambda: [0.001, 0.003, 0.01, 0.03, 0.1, 0.3])
    prevalence: float = 0.001
    bad_pixel_frac_max: float = 0.2
    wise_brightmask_frac_max: float = 0.2
    z: float = 1.96
    resolution_edges: List[float] = field(default_factory=lambda: [0.0, 0.4, 0.6, 0.8, 1.0])
    scores: Optional[str] = None


@dataclass
class CompactConfig:
    """stage=4p5: Parquet compaction."""

    dataset: Optional[str] = None
    target_file_mb: float = 256.0


@dataclass
class ValidateConfig:
    """stage=validate: which stage's outputs to check (4a: manifests, 4c: stamps and metrics).

    4c also re-renders ``rerender_rows`` random injected rows with lenstronomy from the saved
    columns (dhs.quality.rerender) and fails when a band's relative L2 exceeds
    ``rerender_l2_tol`` or its flux error ``rerender_flux_tol`` (0 rows: skip)."""

    target: str = "4c"
    rerender_rows: int = 8
    rerender_l2_tol: float = 0.05
    rerender_flux_tol: float = 0.02


@dataclass
class DhsConfig:
    """The root config: groups plus common keys and per-stage settings."""

    stage: StageConfig = MISSING
    source: SourceBase = MISSING
    psf: PsfBase = MISSING
    grid: GridConfig = MISSING
    tier: TierConfig = MISSING
    cluster: ClusterBase = MISSING
    survey: SurveyConfig = MISSING
    finder: FinderBase = MISSING
    paths: PathsConfig = field(default_factory=PathsConfig)
    seeds: SeedsConfig = field(default_factory=SeedsConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    variant: str = "v3_color_relaxed"
    bands: List[str] = field(default_factory=lambda: ["g", "r", "z"])
    skip_if_exists: bool = True
    force: bool = False
    #: stage 4c: redo the committed shards holding retryable rows (transient or input-damaged
    #: errors, see dhs.inject.failures), leave the others
    retry_failed: bool = False
    experiment_id: Optional[str] = None
    targets: Optional[str] = None
    cosmos_bank: CosmosBankConfig = field(default_factory=CosmosBankConfig)
    mock_survey: MockSurveyConfig = field(default_factory=MockSurveyConfig)
    parent: ParentConfig = field(default_factory=ParentConfig)
    manifest: ManifestConfig = field(default_factory=ManifestConfig)
    cache: CacheConfig = field(default_factory=CacheConfig)
    inject: InjectConfig = field(default_factory=InjectConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    score: ScoreConfig = field(default_factory=ScoreConfig)
    completeness: CompletenessConfig = field(default_factory=CompletenessConfig)
    compact: CompactConfig = field(default_factory=CompactConfig)
    validate: ValidateConfig = field(default_factory=ValidateConfig)


def check(cfg: Any) -> None:
    """Reject undeclared keys and bad values before any work (see dhs.config.checks). Raises
    ConfigError naming the key, the allowed values and the file the value came from."""
    from dhs.config.checks import check_keys, check_values

    check_keys(cfg)
    check_values(cfg)


def register() -> None:
    """Register the root schema and every option schema, at the root of the ConfigStore (never
    inside a group, so no group lists them as options)."""
    cs = ConfigStore.instance()
    cs.store(name="dhs_schema", node=DhsConfig)
    for _, name, schema in SCHEMAS:
        cs.store(name=name, node=schema)
    if not OmegaConf.has_resolver("dhs_stage_help"):
        OmegaConf.register_new_resolver("dhs_stage_help", _stage_help)
    share_config_store()
    register_launcher()


def share_config_store() -> None:
    """Let copies of Hydra's config repository share the ConfigStore singleton.

    Hydra deep-copies its config repository, and with it every structured config in the
    ConfigStore (ours and Hydra's own), each time it composes a config or lists a group's
    options: twice per run and 84 times for ``dhs --help``, about a second of CPU. The store is
    never changed through those copies (``ConfigStore.load`` returns a copy of the node it
    loads), so one shared store gives the same configs.
    """
    ConfigStore.__deepcopy__ = _same_store  # type: ignore[attr-defined]


def _same_store(self: ConfigStore, memo: dict) -> ConfigStore:
    return self


def _stage_help() -> str:
    """The stage lines of ``dhs --help`` (dhs.stages.STAGES)."""
    from dhs.stages import help_lines

    return help_lines().lstrip()  # the template indents the first line


def register_launcher() -> None:
    """Make ``hydra/launcher=dhs_emr`` known to Hydra in editable installs too (see
    hydra_plugins.dhs_launcher.register)."""
    try:
        from hydra_plugins.dhs_launcher import register as register_dhs_launcher
    except ImportError:  # the launcher package is not installed: sweeps run with the others
        return
    register_dhs_launcher()


register()
