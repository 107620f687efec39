"""DR10 coadd file names, relative paths and URLs.

Layout (DR10_REFERENCE section 2): ``coadd/<AAA>/<brick>/legacysurvey-<brick>-<kind>-<band>.fits.fz``
with ``<AAA> = brick[:3]``; maskbits has no band: ``legacysurvey-<brick>-maskbits.fits.fz``.
"""

from __future__ import annotations

BANDED_KINDS = ("image", "invvar", "psfsize", "model", "blobmodel", "chi2", "depth", "galdepth", "nexp")
UNBANDED_KINDS = ("maskbits",)
DR10_SOUTH_COADD_URL = "https://portal.nersc.gov/cfs/cosmo/data/legacysurvey/dr10/south/coadd"


def coadd_filename(brick: str, kind: str, band: str | None = None) -> str:
    """File name of one coadd product, e.g. ``legacysurvey-1126p222-image-r.fits.fz``."""
    if kind in UNBANDED_KINDS:
        return f"legacysurvey-{brick}-{kind}.fits.fz"
    if kind not in BANDED_KINDS:
        raise ValueError(f"unknown coadd kind {kind!r}; expected one of {BANDED_KINDS + UNBANDED_KINDS}")
    if not band:
        raise ValueError(f"coadd kind {kind!r} needs a band (g, r, i or z)")
    return f"legacysurvey-{brick}-{kind}-{band}.fits.fz"


def coadd_relpath(brick: str, kind: str, band: str | None = None) -> str:
    """Path below the ``coadd/`` root: ``<AAA>/<brick>/<file>``."""
    return f"{brick[:3]}/{brick}/{coadd_filename(brick, kind, band)}"


def coadd_url(base: str, brick: str, kind: str, band: str | None = None) -> str:
    """Full URL or path of a coadd product under a ``coadd/`` base (http(s)://, s3://, file:// or a path)."""
    return f"{base.rstrip('/')}/{coadd_relpath(brick, kind, band)}"


def brick_files(brick: str, kinds: list[str] | tuple[str, ...],
                bands: list[str] | tuple[str, ...]) -> list[tuple[str, str | None, str]]:
    """(kind, band, filename) for every file of a brick: banded kinds once per band, maskbits once."""
    out: list[tuple[str, str | None, str]] = []
    for kind in kinds:
        if kind in UNBANDED_KINDS:
            out.append((kind, None, coadd_filename(brick, kind)))
        else:
            out.extend((kind, b, coadd_filename(brick, kind, b)) for b in bands)
    return out
