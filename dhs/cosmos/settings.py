"""The settings of stage cosmos_bank and where its input lives, without numpy (``stage=plan``
lists the input folder at CLI start-up)."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Optional

from dhs.io import storage

#: Label of the embedded input in records.
EMBEDDED = "embedded:dhs.data/cosmos"
#: Default target Gaussian FWHM (arcsec) of the PSF replacement (dhs.cosmos.hstpsf).
TARGET_FWHM_ARCSEC = 0.07


@dataclass(frozen=True)
class BankSettings:
    """stage=cosmos_bank. ``input``: folder of a GalSim RealGalaxyCatalog (None: the embedded 100
    galaxies), ``catalog_name`` its catalog file (None: the one there); ``stamp_size`` (pixels)
    and ``pixscale_arcsec`` of the templates; galaxies with half-light radius outside
    [``hlr_min_arcsec``, ``hlr_max_arcsec``] are skipped; at most ``max_galaxies`` templates;
    ``chunk`` galaxies per committed part; ``smooth_sigma_pix``, ``detect_nsigma`` and
    ``min_template_snr`` drive the cleaning (dhs.cosmos.galaxy); ``deconvolve_psf``: replace
    each stamp's HST PSF (catalog PSF_FILENAME / PSF_HDU) by a Gaussian of
    ``psf_target_fwhm_arcsec`` FWHM (dhs.cosmos.hstpsf)."""

    input: Optional[str]
    catalog_name: Optional[str]
    stamp_size: int
    pixscale_arcsec: float
    hlr_min_arcsec: float
    hlr_max_arcsec: float
    max_galaxies: Optional[int]
    chunk: int
    smooth_sigma_pix: float
    detect_nsigma: float
    min_template_snr: float
    deconvolve_psf: bool = True
    psf_target_fwhm_arcsec: float = TARGET_FWHM_ARCSEC


def input_root(settings: BankSettings) -> tuple[str, str]:
    """(folder URI, label for records): the configured input or the embedded 100 galaxies."""
    if settings.input in (None, ""):
        return embedded_root(), EMBEDDED
    uri = storage.normalize(str(settings.input))
    return uri, uri


def embedded_root() -> str:
    """Folder of the 100 real COSMOS F814W galaxies shipped in the package (dhs/data/cosmos)."""
    return str(resources.files("dhs.data").joinpath("cosmos"))
