"""Frozen settings of stage 4c, built once per stage run (``dhs.stages.settings.inject_settings``)
and shipped to every worker with the shards: small, picklable, never the config itself.

Units: pixel scale in arcsec/pixel, FWHM in arcsec, kernel cap and core-mask radius in pixels.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Optional

from dhs.fetch.remote import SurveyAccess

if TYPE_CHECKING:
    import pyarrow as pa

    from dhs.io.shards import Fingerprint

#: Keys of ``InjectSettings.record()`` that do not change a shard's bytes (where and how files are
#: read, whether committed work is kept); everything else is in the shard fingerprint.
OPERATIONAL_KEYS = ("survey", "blacklist_path", "skip_existing")
#: Bumped when a 4c output column changes meaning without changing its name or type.
SCHEMA_REVISION = 1


@dataclass(frozen=True)
class PsfSettings:
    """The injected PSF: ``model`` 'moffat' (with ``beta``) or 'gaussian' (``beta`` None); FWHM
    per band from the psfsize maps, else the manifest, else ``default_fwhm_arcsec``; kernels
    ``kernel_fwhm_multiple`` FWHM across, at most ``max_kernel_pix`` pixels and the stamp."""

    model: str
    beta: Optional[float]
    default_fwhm_arcsec: float
    kernel_fwhm_multiple: float
    max_kernel_pix: int

    @property
    def render_beta(self) -> float:
        """The beta handed to the renderer (it ignores beta for a Gaussian)."""
        return float(self.beta) if self.beta is not None else 3.5

    def kernel_size_pix(self, fwhm_arcsec: float, pixscale: float, stamp_size: int) -> int:
        """Odd kernel size (pixels) at ``fwhm_arcsec`` for a stamp of ``stamp_size`` pixels."""
        from dhs.physics.kernel_size import kernel_size_1

        return kernel_size_1(fwhm_arcsec, pixscale, stamp_size, self.kernel_fwhm_multiple, self.max_kernel_pix)


@dataclass(frozen=True)
class SourceSettings:
    """The lensed source: ``kind`` 'sersic' (index ``sersic_n``) or 'cosmos' (a template of the
    bank at ``bank_path``, index blake2b(task_id + ``cosmos_salt``) mod bank size)."""

    kind: str
    z_source: float
    sersic_n: Optional[float] = None
    cosmos_salt: Optional[str] = None
    bank_path: Optional[str] = None
    bank_sha256: Optional[str] = None  # filled by the stage from the bank file, before any work


@dataclass(frozen=True)
class OutputSettings:
    """What a shard writes: the arc column (``save_arc``), Parquet ``compression``, with
    ``metrics_only`` no stamps at all; ``quantize`` 0 (lossless) or Q, levels per noise sigma of
    the stored image and arc (``dhs.io.quantize``)."""

    save_arc: bool = False
    compression: str = "zstd"
    metrics_only: bool = False
    quantize: float = 0.0


@dataclass(frozen=True)
class InjectSettings:
    """Everything a 4c worker needs besides its shard.

    ``supersample``: 0 = the renderer's default (adaptive, a factor per row from source size
    and stretch, recorded per row), else a uniform factor.
    ``survey_source``: 'bricks' (files through ``survey``) or 'cutout_service' (one cached
    cutout per target under ``survey.cache_root``, layer ``cutout_layer``).
    ``blacklist_path``: the 4b brick blacklist; ``skip_existing``: committed shards are kept;
    ``photon_noise``: add the arc's photon noise (``dhs.physics.noise``).
    Cutout mode: ``cutout_psf`` 'map' reads each target's FWHM from its brick's psfsize map at
    ``survey.base_url`` (the manifest's psfsize where the map is unreadable), 'manifest' uses the
    manifest's; ``cutout_sky_invvar`` accepts image-only cutouts with the sky's inverse variance.
    """

    psf: PsfSettings
    source: SourceSettings
    pixscale_arcsec: float
    supersample: int
    core_mask_radius_pix: float
    bands: tuple[str, ...]
    survey: SurveyAccess
    survey_source: str
    cutout_layer: str
    blacklist_path: str
    output: OutputSettings
    skip_existing: bool = True
    cutout_psf: str = "map"
    cutout_sky_invvar: bool = False
    photon_noise: bool = True

    def record(self, stamp_sizes: tuple[int, ...] = ()) -> dict:
        """The settings as plain data, with the kernel size at the default FWHM per stamp size
        (what ``dhs stage=plan`` shows and 4c records next to its metrics)."""
        out = asdict(self)
        out["survey"] = {k: v for k, v in out["survey"].items() if k != "fetch"}
        out["psf"]["kernel_pix_at_default_fwhm"] = {
            str(int(s)): self.psf.kernel_size_pix(self.psf.default_fwhm_arcsec, self.pixscale_arcsec, int(s))
            for s in stamp_sizes}
        return out

    def fingerprint_settings(self) -> dict:
        """The settings that decide a 4c shard's bytes, as plain data (the bank by checksum, not
        by path)."""
        out = {k: v for k, v in asdict(self).items() if k not in OPERATIONAL_KEYS}
        out["source"].pop("bank_path", None)
        return out


def applicable_blacklist(s: InjectSettings) -> frozenset:
    """Bricks of the 4b blacklist that 4c applies: those found missing at ``survey.base_url``
    (none for the cutout service). A small file, read per shard so a rerun sees updates."""
    if s.survey_source == "cutout_service":
        return frozenset()
    from dhs.fetch.blacklist import bricks

    return frozenset(bricks(s.blacklist_path, s.survey.base_url))


def shard_fingerprint(rows: "pa.Table", s: InjectSettings,
                      blacklist: Optional[frozenset] = None) -> "Fingerprint":
    """Fingerprint of a 4c shard: its manifest rows, ``s.fingerprint_settings()``, the version of
    the metrics and stamps schemas and, local to the shard, which of its bricks are on the
    applicable ``blacklist`` (read when None; those bricks' rows are ``blacklisted_brick``)."""
    from dhs import schema
    from dhs.io.shards import Fingerprint, rows_digest, schema_version

    cols = schema.metrics_columns(s.bands) + schema.stamp_columns(s.output.save_arc, s.output.quantize > 0)
    listed = applicable_blacklist(s) if blacklist is None else blacklist
    hit = sorted(set(rows.column("brickname").to_pylist()) & listed) if listed else []
    return Fingerprint(rows_digest(rows), s.fingerprint_settings(), schema_version(cols, SCHEMA_REVISION),
                       local={"blacklisted_bricks": hit} if hit else {})


def blacklisted_bricks(fp: "Fingerprint") -> frozenset:
    """The shard's bricks that its fingerprint says are blacklisted (what the shard applies, so
    its rows and its marker always agree)."""
    return frozenset(fp.local.get("blacklisted_bricks") or ())
