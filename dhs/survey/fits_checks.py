"""Header checks shared by the astropy and fitsio brick-file readers.

BRICKNAM must match the expected brick, BUNIT the coadd kind (``nanomaggy`` for image/model,
``1/nanomaggy^2`` for invvar) and a maskbits file must carry WISEM1 and WISEM2 extensions; a
mismatch raises ``BrickFileError`` naming the file.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dhs.errors import DhsError

#: Expected BUNIT per coadd kind (DR10 headers; kinds not listed are not checked).
EXPECTED_BUNIT = {
    "image": "nanomaggy", "model": "nanomaggy", "blobmodel": "nanomaggy",
    "invvar": "1/nanomaggy^2",
}

BITPIX_DTYPE = {8: np.uint8, 16: np.int16, 32: np.int32, 64: np.int64, -32: np.float32,
                 -64: np.float64}


class BrickFileError(DhsError, ValueError):
    """A brick file is unreadable or is not the file it should be; the message names it."""


def check_header(bf: Any, brick: str | None, kind: str | None) -> None:
    if brick is not None:
        found = bf.brickname
        if found is None:
            raise BrickFileError(f"{bf.label}: header has no BRICKNAM; expected brick {brick!r}")
        if found != brick:
            raise BrickFileError(f"{bf.label}: header BRICKNAM={found!r} but the file should hold "
                                 f"brick {brick!r}; the file is misnamed or misplaced")
    if kind in EXPECTED_BUNIT:
        want = EXPECTED_BUNIT[kind]
        got = bf.keyword("BUNIT")
        if got is None or str(got).strip().lower() != want.lower():
            raise BrickFileError(f"{bf.label}: header BUNIT={got!r} but a {kind} file must have "
                                 f"BUNIT={want!r}")
    if kind == "maskbits":
        names = {n.upper() for n in bf.extnames()}
        missing = [n for n in ("WISEM1", "WISEM2") if n not in names]
        if missing:
            raise BrickFileError(f"{bf.label}: maskbits file lacks extension(s) {missing}")


def checked(bf: Any, brick: str | None, kind: str | None) -> Any:
    """``bf`` after ``check_header``; closed before the error when a check fails."""
    try:
        check_header(bf, brick, kind)
    except Exception:
        bf.close()
        raise
    return bf
