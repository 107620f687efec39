"""Open a DR10 brick file with the reader that fits it (fitsio for local paths, else astropy)."""

from __future__ import annotations

from typing import Any, BinaryIO

from dhs.survey.astropy_reader import open_astropy
from dhs.survey.fits_checks import checked


def open_brick_file(src: str | BinaryIO, *, brick: str | None = None, kind: str | None = None,
                    label: str | None = None, engine: str = "astropy") -> Any:
    """Open a brick file lazily and check its header.

    ``src``: a path or URI (local, ``s3://``, ``http(s)://``) or a seekable binary file object.
    ``brick``: expected BRICKNAM (checked when given). ``kind``: coadd kind ('image', 'invvar',
    'maskbits', 'psfsize', ...): BUNIT is checked for the kinds in ``EXPECTED_BUNIT``, and a
    maskbits file must have WISEM1 and WISEM2 extensions. Raises ``BrickFileError`` naming the file.
    ``engine``: 'astropy' (a ``BrickFile``), or 'auto' / 'fitsio': a local path opens as a
    ``dhs.survey.fitsio_reader.FitsioBrickFile`` (same methods) when fitsio is available and
    ``DHS_FITSIO`` is not 0; anything else, or a file fitsio cannot open, takes the astropy path.
    """
    if engine not in ("astropy", "auto", "fitsio"):
        raise ValueError(f"engine={engine!r}: use 'astropy', 'auto' or 'fitsio'")
    label = label or (str(src) if isinstance(src, (str, bytes)) or hasattr(src, "__fspath__")
                      else str(getattr(src, "name", "<file object>")))
    if engine != "astropy":
        from dhs.survey import fitsio_reader

        path = fitsio_reader.usable_path(src)
        if path is not None and fitsio_reader.available():
            fast = fitsio_reader.open_fitsio(path, brick=brick, kind=kind, label=label)
            if fast is not None:
                return fast
    bf = open_astropy(src, label)
    return checked(bf, brick, kind)
