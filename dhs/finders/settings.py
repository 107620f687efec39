"""The frozen settings classes of the finders and of stage score, and the error they raise,
without numpy: the config schemas (``dhs.config.groups``) read their fields at CLI start-up and
``stage=plan`` shows them. Each finder module re-exports its class
(``dhs.finders.arcfinder.ArcFinderSettings`` is the same class)."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, is_dataclass
from typing import Any

from dhs.errors import DhsError
from dhs.survey import maskbits as mbits


class FinderError(DhsError):
    """A finder cannot run as configured (bad model, bad callable, wrong output); the message
    names the finder setting and the fix."""


@dataclass(frozen=True)
class ArcFinderSettings:
    """Parameters of the arc finder (units: arcsec unless named pixels)."""

    lens_subtraction: str = "colour"  # 'colour' (scaled red band subtracted) or 'profile'
    blue_band: str = "g"  # colour: the band the arc is bright in
    red_band: str = "z"  # the band of the lens shape (and colour: the band scaled and subtracted)
    core_radius: float = 0.8  # colour: radius of the pixels alpha is fitted on
    moment_sigma: float = 1.0  # starting size of the adaptive moment weight
    profile_bin: float = 1.0  # width of the elliptical annuli of the profile model, pixels
    arc_gr: float = 0.2  # arc colour g - r of the significance weights, mag
    arc_rz: float = 0.1  # arc colour r - z of the significance weights, mag
    smooth_sigma: float = 1.0  # Gaussian smoothing of the significance map, pixels
    detect_nsigma: float = 3.0  # detection threshold on the smoothed significance
    r_in: float = 0.5  # inner radius of the search annulus
    r_out: float = 4.0  # outer radius of the search annulus
    min_pixels: int = 5  # smallest segment, pixels
    max_segment_gr: float = 1.0  # segments redder than this (significantly) are vetoed, mag
    red_veto_nsigma: float = 2.0  # significance of the red veto
    full_elongation: float = 3.0  # tangential elongation that earns a segment its whole SNR
    round_weight: float = 0.5  # fraction of its SNR a round segment earns
    coverage_weight: float = 1.0  # bonus for angular coverage of the annulus
    n_sectors: int = 8  # azimuth sectors of the coverage
    image_snr: float = 3.0  # SNR of a segment counted as an image
    width_floor: float = 0.5  # smallest radial width an elongation divides by, pixels
    model_error: float = 0.03  # fractional error of the lens-light model, added to the noise
    mask_bits: tuple[str, ...] = ("BRIGHT", "SATUR", "ALLMASK", "BAILOUT")
    segmentation: str = "batch"  # 'batch' (scipy, the whole chunk at once) or 'photutils' (per stamp)

    def __post_init__(self) -> None:
        if self.lens_subtraction not in ("profile", "colour"):
            raise FinderError(f"arcfinder lens_subtraction={self.lens_subtraction!r}: use 'profile' "
                              f"or 'colour'")
        if self.segmentation not in ("batch", "photutils"):
            raise FinderError(f"arcfinder segmentation={self.segmentation!r}: use 'batch' or 'photutils'")
        for key in ("core_radius", "moment_sigma", "profile_bin", "smooth_sigma", "r_out", "full_elongation",
                    "width_floor"):
            if not float(getattr(self, key)) > 0:
                raise FinderError(f"arcfinder {key}={getattr(self, key)!r}: must be > 0")
        if not 0 <= self.r_in < self.r_out:
            raise FinderError(f"arcfinder r_in={self.r_in!r}, r_out={self.r_out!r}: need 0 <= r_in < r_out")
        if not 0 <= self.round_weight <= 1:
            raise FinderError(f"arcfinder round_weight={self.round_weight!r}: must lie in [0, 1]")
        if self.full_elongation <= 1:
            raise FinderError(f"arcfinder full_elongation={self.full_elongation!r}: must be > 1")
        if int(self.min_pixels) < 1 or int(self.n_sectors) < 1:
            raise FinderError("arcfinder min_pixels and n_sectors must be >= 1")
        bad = [b for b in self.mask_bits if b not in mbits.NAMES and b not in ("SATUR", "ALLMASK")]
        if bad:
            raise FinderError(f"arcfinder mask_bits {bad}: not DR10 maskbits names; use names of "
                              f"dhs.survey.maskbits.NAMES, or SATUR / ALLMASK for every band")


#: Choices of the ONNX finder's settings.
NORMALISATIONS = ("none", "asinh", "per_band_scale")
OUTPUTS = ("logit", "probability")
PROVIDERS = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class OnnxFinderSettings:
    model: str
    normalisation: str = "none"
    scale: tuple[float, ...] = (1.0,)
    offset: tuple[float, ...] = (0.0,)
    output: str = "probability"
    class_index: int = -1
    batch_size: int = 256
    provider: str = "auto"
    threads: int = 1

    def __post_init__(self) -> None:
        for key, allowed in (("normalisation", NORMALISATIONS), ("output", OUTPUTS), ("provider", PROVIDERS)):
            if getattr(self, key) not in allowed:
                raise FinderError(f"finder.{key}={getattr(self, key)!r}: use one of {list(allowed)}")
        if not self.model:
            raise FinderError("finder=onnx needs finder.model=PATH (the .onnx file of the network)")
        if int(self.batch_size) < 1 or int(self.threads) < 0:
            raise FinderError("finder.batch_size must be >= 1 and finder.threads >= 0")
        if self.normalisation != "none" and any(not (float(s) > 0) for s in self.scale):
            raise FinderError(f"finder.scale={list(self.scale)}: every scale must be > 0")


@dataclass(frozen=True)
class PythonFinderSettings:
    target: str
    kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if ":" not in str(self.target) or not all(str(self.target).rsplit(":", 1)):
            raise FinderError(f"finder.target={self.target!r}: write it as module:function (or "
                              f"path/to/file.py:function)")


@dataclass(frozen=True)
class SnrProxySettings:
    arc_snr_min: float = 5.0

    def __post_init__(self) -> None:
        if not math.isfinite(self.arc_snr_min):
            raise FinderError(f"finder.arc_snr_min={self.arc_snr_min!r}: must be a number")


@dataclass(frozen=True)
class ScoreSettings:
    """What a score worker needs: the finder's name and frozen settings, stamps per finder call,
    the pixel scale (arcsec/pixel), Parquet compression, and whether committed shards are kept."""

    finder: str
    finder_settings: Any
    batch_size: int = 256
    pixscale_arcsec: float = 0.262
    compression: str = "zstd"
    skip_existing: bool = True

    def finder_record(self) -> dict:
        """The finder's settings as plain data (what the settings hash is taken of)."""
        st = self.finder_settings
        plain = asdict(st) if is_dataclass(st) else dict(st or {})
        return {k: list(v) if isinstance(v, tuple) else v for k, v in plain.items()}

    @property
    def settings_hash(self) -> str:
        """sha256 (16 hex digits) of the finder name, its settings and the pixel scale."""
        text = json.dumps({"finder": self.finder, "settings": self.finder_record(),
                           "pixscale_arcsec": self.pixscale_arcsec}, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def record(self) -> dict:
        return {"finder": self.finder, "settings": self.finder_record(), "settings_hash": self.settings_hash,
                "batch_size": self.batch_size, "pixscale_arcsec": self.pixscale_arcsec}
