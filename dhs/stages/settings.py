"""Frozen settings objects built from the composed config, once per stage run.

Only ``dhs.stages`` and ``dhs.cli`` read the Hydra config; everything below them (executors,
storage, fetching, injection, ...) takes the objects built here. Builders read each key in one
place, so a key that moves or is renamed in the config is changed here only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dhs.executors import ExecutorSettings
from dhs.executors.emr.api import EmrSettings
from dhs.fetch.download import FetchSettings
from dhs.fetch.remote import SurveyAccess
from dhs.fetch.retry import RetryPolicy
from dhs.inject.settings import InjectSettings, OutputSettings, PsfSettings, SourceSettings
from dhs.io.storage import StorageSettings
from dhs.stages import layout

if TYPE_CHECKING:  # the stage that needs one imports its package
    from dhs.cosmos.settings import BankSettings
    from dhs.fetch.coadd_cache import CacheSettings
    from dhs.fetch.cutout_service import CutoutSettings
    from dhs.manifest.candidates import ManifestInputs
    from dhs.manifest.checks import ManifestChecks
    from dhs.manifest.grids import Grid
    from dhs.manifest.targets import TargetSettings
    from dhs.mock_survey.plan import MockParams
    from dhs.parent.catalog import ParentSettings


def storage_settings(cfg: Any) -> StorageSettings:
    """``cfg.storage``: S3 endpoint, region and credentials."""
    st = cfg.get("storage") or {}
    return StorageSettings(st.get("s3_endpoint_url"), st.get("s3_region"),
                           st.get("aws_access_key_id"), st.get("aws_secret_access_key"))


def executor_settings(cfg: Any) -> ExecutorSettings:
    """``cfg.cluster``: backend, joblib workers, Spark master, extra Spark settings, the
    workers' Python; storage settings with the credentials remote executors need."""
    from dhs.io.storage import for_executors

    c = cfg.cluster
    conf = c.get("spark_conf") or {}
    master = str(c.get("spark_master") or "local[*]")
    remote = str(c.name) != "local" and not master.startswith("local")
    return ExecutorSettings(backend=str(c.name), n_jobs=int(c.get("n_jobs", -1)),
                            spark_master=master,
                            spark_conf=tuple((str(k), str(v)) for k, v in conf.items()),
                            storage=for_executors(storage_settings(cfg), remote),
                            python=c.get("python"))


def fetch_settings(cfg: Any) -> FetchSettings:
    """``cfg.cache``: retries and backoff (s), request timeout (s), threads, data check."""
    c = cfg.cache
    policy = RetryPolicy(retries=int(c.retries), backoff_s=float(c.backoff_s))
    return FetchSettings(policy, timeout_s=float(c.timeout_s), pool=int(c.threads),
                         verify_data=bool(c.get("verify_data", False)))


def survey_access(cfg: Any) -> SurveyAccess:
    """How stage 4c reads survey files: cache mode, cache root, survey base URL, read settings."""
    return SurveyAccess(cache_mode=str(cfg.cache.mode), cache_root=layout.cache_root(cfg),
                        base_url=str(cfg.survey.base_url), fetch=fetch_settings(cfg),
                        range_block_bytes=int(cfg.cache.get("range_block_bytes", 32768)),
                        lru_files=int(cfg.cache.lru_files))


def skip_existing(cfg: Any) -> bool:
    """Committed work is kept: ``skip_if_exists`` and not ``force``."""
    return bool(cfg.skip_if_exists) and not bool(cfg.force)


def cache_settings(cfg: Any) -> CacheSettings:
    """Stage 4b with bricks: survey ``base_url``, cache root, ``cache.kinds``, bands, fetching."""
    from dhs.fetch.coadd_cache import CacheSettings

    return CacheSettings(str(cfg.survey.base_url), layout.cache_root(cfg), tuple(str(k) for k in cfg.cache.kinds),
                         tuple(str(b) for b in cfg.bands), int(cfg.cache.threads), fetch_settings(cfg),
                         redo=not skip_existing(cfg))


def cutout_settings(cfg: Any) -> CutoutSettings:
    """Stage 4b with survey.source=cutout_service: viewer URL and layer, pixel scale, fetching."""
    from dhs.fetch.cutout_service import CutoutSettings

    sv = cfg.survey
    return CutoutSettings(str(sv.cutout_url), str(sv.cutout_layer), float(sv.pixscale_arcsec),
                          layout.cache_root(cfg), int(cfg.cache.threads), fetch_settings(cfg),
                          redo=not skip_existing(cfg), sky_invvar=bool(sv.cutout_sky_invvar))


def mock_params(cfg: Any) -> MockParams:
    """stage=mock_survey: ``cfg.mock_survey``, the split seed and the survey pixel scale (checked)."""
    from dhs.mock_survey.plan import MockParams, check_params

    m = cfg.mock_survey
    p = MockParams(
        seed=int(m.seed), n_bricks=int(m.n_bricks), brick_size_pix=int(m.brick_size_pix),
        galaxies_per_brick=int(m.galaxies_per_brick), stars_per_brick=int(m.stars_per_brick),
        n_regions=int(m.n_regions),
        psf_fwhm_r_range=tuple(float(x) for x in m.psf_fwhm_r_range),  # type: ignore[arg-type]
        depth_r_levels=tuple(float(x) for x in m.depth_r_levels),
        split_seed=int(cfg.seeds.split_seed),
        pixscale=float(cfg.survey.pixscale_arcsec),
    )
    check_params(p)
    return p


def bank_settings(cfg: Any) -> BankSettings:
    """stage=cosmos_bank: ``cfg.cosmos_bank`` (values as configured; checked by the builder)."""
    from omegaconf import OmegaConf

    from dhs.cosmos.settings import BankSettings

    return BankSettings(**OmegaConf.to_container(cfg.cosmos_bank, resolve=True))


def grid(cfg: Any) -> Grid:
    """The injection grid of ``cfg.grid`` (name plus the five axes)."""
    from dhs.manifest.grids import AXES, build_grid
    from dhs.manifest.priors import Priors

    g = cfg.grid
    return build_grid(str(g.name), {a: tuple(float(v) for v in g[a]) for a in AXES}, str(g.source_mag),
                      str(g.source_size), str(g.lens_shape), Priors.from_config(g.priors))


def manifest_inputs(cfg: Any) -> ManifestInputs:
    """Stage 4a's input tables and filters (``cfg.manifest``)."""
    from dhs.manifest.candidates import ManifestInputs

    m = cfg.manifest
    ids = m.get("selection_set_ids")
    return ManifestInputs(parent=str(m.parent), bricks_with_region=str(m.bricks_with_region),
                          region_selections=str(m.region_selections),
                          require_lrg_flag=str(m.require_lrg_flag) if m.require_lrg_flag else None,
                          selection_set_ids=None if ids is None else tuple(str(i) for i in ids),
                          pixscale_arcsec=float(cfg.survey.pixscale_arcsec))


def target_settings(cfg: Any) -> TargetSettings:
    """``targets=PATH`` and the defaults of dhs.manifest.targets (regions and splits from
    ``cfg.parent`` and the split seed, PSF and depth defaults, the brick table to fill from)."""
    from dhs.manifest.targets import TargetSettings

    flag = cfg.manifest.require_lrg_flag
    return TargetSettings(
        uri=str(cfg.targets), region_nside=int(cfg.parent.region_nside),
        split_fractions=tuple(float(x) for x in cfg.parent.split_fractions),  # type: ignore[arg-type]
        split_seed=int(cfg.seeds.split_seed), require_flag=str(flag) if flag else None,
        reference_rmag=float(cfg.manifest.reference_rmag),
        default_fwhm_arcsec=float(cfg.psf.default_fwhm_arcsec),
        default_depth_r_mag=float(cfg.manifest.default_depth_r_mag),
        bricks_table=str(cfg.manifest.bricks_with_region),
        pixscale_arcsec=float(cfg.survey.pixscale_arcsec))


def psf_settings(cfg: Any) -> PsfSettings:
    p = cfg.psf
    model = str(p.name)
    return PsfSettings(model=model, beta=float(p.beta) if model == "moffat" else None,
                       default_fwhm_arcsec=float(p.default_fwhm_arcsec),
                       kernel_fwhm_multiple=float(p.kernel_fwhm_multiple),
                       max_kernel_pix=int(p.max_kernel_pix))


def source_settings(cfg: Any) -> SourceSettings:
    s = cfg.source
    kind = str(s.name)
    if kind == "cosmos":
        return SourceSettings(kind, float(s.z_source), cosmos_salt=str(s.cosmos_salt),
                              bank_path=str(s.bank_path))
    return SourceSettings(kind, float(s.z_source), sersic_n=float(s.sersic_n))


def inject_settings(cfg: Any) -> InjectSettings:
    """Everything a 4c worker needs (PSF, source, pixel scale, rendering, survey access, output)."""
    return InjectSettings(
        psf=psf_settings(cfg), source=source_settings(cfg),
        pixscale_arcsec=float(cfg.survey.pixscale_arcsec),
        supersample=int(cfg.inject.supersample),
        core_mask_radius_pix=float(cfg.inject.core_mask_radius),
        bands=tuple(str(b) for b in cfg.bands),
        survey=survey_access(cfg), survey_source=str(cfg.survey.source),
        cutout_layer=str(cfg.survey.cutout_layer),
        blacklist_path=layout.blacklist_path(cfg),
        output=OutputSettings(save_arc=bool(cfg.output.save_arc),
                              compression=str(cfg.output.compression),
                              quantize=float(cfg.output.quantize),
                              metrics_only=bool(cfg.inject.metrics_only)),
        skip_existing=skip_existing(cfg), cutout_psf=str(cfg.survey.cutout_psf),
        cutout_sky_invvar=bool(cfg.survey.cutout_sky_invvar),
        photon_noise=bool(cfg.inject.photon_noise))


def manifest_checks(cfg: Any) -> ManifestChecks:
    """stage=validate validate.target=4a: the manifests of the tier (or of ``experiment_id``)."""
    from omegaconf import OmegaConf

    from dhs.manifest.checks import ManifestChecks

    return ManifestChecks(record_uri=layout.stage4a_record(cfg),
                          manifests=tuple((e, layout.manifest_dir(cfg, e.experiment_id))
                                          for e in layout.experiments(cfg)),
                          tier=str(cfg.tier.name),
                          tier_settings=OmegaConf.to_container(cfg.tier, resolve=True),
                          split_seed=int(cfg.seeds.split_seed), seed_base=int(cfg.seeds.seed_base),
                          whole_tier=not cfg.get("experiment_id"), grid=grid(cfg))


def finder_settings(cfg: Any) -> tuple[str, Any]:
    """``cfg.finder``: the finder's name and its frozen settings object (lists become tuples);
    a bad value raises the finder's own error (a DhsError naming the key)."""
    from dataclasses import fields

    from omegaconf import OmegaConf

    from dhs.finders import settings_class

    node = cfg.finder
    name = str(node.name)
    cls = settings_class(name)
    kwargs = {}
    for f in fields(cls):
        value = node[f.name]
        if OmegaConf.is_config(value):
            value = OmegaConf.to_container(value, resolve=True)
        kwargs[f.name] = tuple(value) if isinstance(value, list) else value
    return name, cls(**kwargs)


def score_settings(cfg: Any) -> Any:
    """Everything a stage=score worker needs: the finder, its batch size, the pixel scale."""
    from dhs.finders.settings import ScoreSettings

    name, st = finder_settings(cfg)
    return ScoreSettings(finder=name, finder_settings=st, batch_size=int(cfg.score.batch_size),
                         pixscale_arcsec=float(cfg.survey.pixscale_arcsec),
                         compression=str(cfg.output.compression), skip_existing=skip_existing(cfg))


def emr_settings(cfg: Any, check: bool = True) -> EmrSettings:
    """``cfg.cluster.emr`` and what a submission needs besides (stage, data_root, dry_run,
    credentials, ``cluster.spark_conf``, the source and COSMOS bank that size executor
    memory). With ``check`` an EMR submission fails here, before any work, when it cannot
    succeed (no region, no s3:// staging or data root, bad deploy mode, no core nodes)."""
    emr = cfg.cluster.emr
    if check:
        _check_emr(emr, str(cfg.paths.data_root))
    plain = {k: emr[k] for k in emr}
    for key in ("spark_submit_args", "bootstrap_commands"):
        plain[key] = tuple(str(a) for a in (emr.get(key) or ()))
    conf = cfg.cluster.get("spark_conf") or {}
    return EmrSettings(**plain, dry_run=bool(cfg.cluster.get("dry_run", False)),
                       stage=str(cfg.stage.name), data_root=str(cfg.paths.data_root),
                       storage=storage_settings(cfg),
                       spark_conf=tuple((str(k), str(v)) for k, v in conf.items()),
                       source=str(cfg.source.name), bank_path=cfg.source.get("bank_path"))


def _check_emr(emr: Any, data_root: str) -> None:
    from dhs.config.schema import ConfigError
    from dhs.io import storage

    if not emr.get("region"):
        raise ConfigError("cluster.emr.region is not set: an EMR submission never guesses a region. "
                          "Set it, e.g. `dhs ... cluster=emr cluster.emr.region=us-west-2`.")
    staging = emr.get("staging_uri")
    if not staging or not storage.is_s3(staging):
        raise ConfigError(f"cluster.emr.staging_uri={staging!r} must be an s3:// URI where the "
                          "wheel, config and bootstrap script go, e.g. "
                          "`cluster.emr.staging_uri=s3://my-bucket/dhs-staging`.")
    if not storage.is_s3(data_root):
        raise ConfigError(f"paths.data_root={data_root!r} is a local path that EMR nodes cannot "
                          "see; set `paths.data_root=s3://my-bucket/dhs-data`.")
    if str(emr.get("deploy_mode")) not in ("cluster", "client"):
        raise ConfigError(f"cluster.emr.deploy_mode={emr.get('deploy_mode')!r}: allowed cluster, client.")
    if not emr.get("cluster_id") and int(emr.get("core_instance_count", 0)) < 1:
        raise ConfigError("cluster.emr.core_instance_count must be >= 1 for a new cluster.")


def parent_settings(cfg: Any) -> ParentSettings:
    """``cfg.parent`` (selection, regions, units), the split seed, the pixel scale and the
    retries of remote catalog reads (``cfg.cache``)."""
    from dhs.parent.catalog import ParentSettings

    p = cfg.parent
    return ParentSettings(
        out_root=str(p.out_root), footprint=str(p.footprint), region_nside=int(p.region_nside),
        split_fractions=tuple(float(x) for x in p.split_fractions),  # type: ignore[arg-type]
        split_seed=int(cfg.seeds.split_seed), chunk_rows=int(p.chunk_rows),
        pixscale_arcsec=float(cfg.survey.pixscale_arcsec), depth_units=str(p.depth_units),
        psfsize_units=str(p.psfsize_units), rank_flag=str(p.rank_flag),
        ranking_modes=tuple(str(m) for m in p.ranking_modes), topk_frac=float(p.topk_frac),
        bricks_summary=str(p.bricks_summary) if p.bricks_summary else None,
        retries=int(cfg.cache.retries), backoff_s=float(cfg.cache.backoff_s),
        timeout_s=float(cfg.cache.timeout_s))
