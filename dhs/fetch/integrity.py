"""Integrity checks of a downloaded coadd file before it becomes visible in the cache.

A file passes when: its size equals the size the source announced (Content-Length or object size);
it is a whole number of 2880-byte FITS blocks; every HDU's data lies inside the file (a truncated
body that still looks like FITS fails here); the data HDU is present (extension 1 for .fz); and the
header checks of ``dhs.survey.fits_checks`` pass (BRICKNAM equals the brick, BUNIT fits the kind, maskbits
has WISEM1/WISEM2). ``verify_data`` also decompresses every image HDU.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

from dhs.fetch.retry import PermanentError, TransientError

FITS_BLOCK = 2880


class IntegrityError(TransientError):
    """A downloaded file is incomplete (retried: it may be a bad transfer)."""


class WrongFileError(PermanentError):
    """A complete FITS file that is not the expected one (BRICKNAM/BUNIT/extensions; not retried)."""


def check_size(size: int, expected_size: int | None, label: str, *, announced_by: str = "the source") -> None:
    """Raise ``IntegrityError`` unless ``size`` matches the announced size and is whole FITS blocks."""
    if expected_size is not None and size != expected_size:
        raise IntegrityError(f"{label}: got {size} bytes, {announced_by} announced {expected_size}")
    if size == 0 or size % FITS_BLOCK:
        raise IntegrityError(f"{label}: {size} bytes is not a whole number of 2880-byte FITS "
                             "blocks (truncated transfer)")


def check_structure(src: Any, size: int, expected_size: int | None, label: str, *,
                    announced_by: str = "the source") -> None:
    """Raise ``IntegrityError`` unless ``src`` (a path or a binary file object of ``size`` bytes) is a
    complete FITS file: announced size, whole 2880-byte blocks, every HDU's data inside the file."""
    from astropy.io import fits

    check_size(size, expected_size, label, announced_by=announced_by)
    try:
        with warnings.catch_warnings():  # astropy warns about the truncation we report
            warnings.simplefilter("ignore")
            with fits.open(src, memmap=False, lazy_load_hdus=False) as hdul:
                for i, hdu in enumerate(hdul):
                    info = hdu.fileinfo()
                    end = int(info["datLoc"]) + int(info["datSpan"])
                    if end > size:
                        raise IntegrityError(f"{label}: HDU {i} data ends at byte {end}, past the "
                                             f"end of the {size}-byte file (truncated transfer)")
    except IntegrityError:
        raise
    except Exception as exc:
        raise IntegrityError(f"{label}: not a readable FITS file ({type(exc).__name__}: {exc})") from exc


def check_fits(path: str, *, brick: str, kind: str, expected_size: int | None = None,
               verify_data: bool = False, label: str | None = None) -> None:
    """Raise ``IntegrityError`` (incomplete) or ``WrongFileError`` (wrong headers), naming ``label``."""
    from dhs.survey.brickfile import open_brick_file
    from dhs.survey.fits_checks import BrickFileError

    label = label or path
    check_structure(path, os.path.getsize(path), expected_size, label)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bf = open_brick_file(path, brick=brick, kind=kind, label=label)
            try:
                if verify_data:
                    for hdu in bf.hdul:
                        if hdu.header.get("NAXIS", 0):
                            _ = hdu.data
            finally:
                bf.close()
    except IntegrityError:
        raise
    except BrickFileError as exc:
        raise WrongFileError(str(exc)) from exc
    except Exception as exc:
        raise IntegrityError(f"{label}: not a readable FITS file ({type(exc).__name__}: {exc})") \
            from exc
