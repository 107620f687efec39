"""Stamp windows: the pixel convention of every cutout.

The target's pixel is the 0-based pixel from ``WCS.world_to_pixel`` rounded to nearest
(``floor(x + 0.5)``); it lands at array index ``[size // 2, size // 2]`` of the stamp, i.e. the
stamp covers rows ``iy - size//2 .. iy - size//2 + size - 1`` and the same for columns. A stamp
that does not fit entirely inside the image is returned padded with ``fill`` and flagged
``edge=True`` (``ok=False``); stage 4c records such rows with error_code ``'edge'``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from astropy.wcs import WCS

from dhs.survey.wcs import nearest_pixel


@dataclass
class Cutout:
    """A size x size stamp; the target pixel (ix, iy) of the image is at data[size//2, size//2].

    ``x0, y0``: image pixel of data[0, 0]. ``edge``: the stamp reaches past the image border
    (padded with fill). ``inside``: the target pixel itself lies in the image.
    """

    data: np.ndarray
    ix: int
    iy: int
    x0: int
    y0: int
    edge: bool
    inside: bool

    @property
    def ok(self) -> bool:
        return self.inside and not self.edge


def window_bounds(ix: int, iy: int, size: int) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1) of the size x size window that puts pixel (ix, iy) at [size//2, size//2]."""
    half = int(size) // 2
    return int(iy) - half, int(iy) - half + int(size), int(ix) - half, int(ix) - half + int(size)


def _cut(reader, shape: tuple[int, int], ix: int, iy: int, size: int, fill: float,
         dtype: Any) -> Cutout:
    h, w = shape
    y0, y1, x0, x1 = window_bounds(ix, iy, size)
    inside = 0 <= ix < w and 0 <= iy < h
    edge = y0 < 0 or x0 < 0 or y1 > h or x1 > w
    cy0, cy1, cx0, cx1 = max(y0, 0), min(y1, h), max(x0, 0), min(x1, w)
    if cy0 < cy1 and cx0 < cx1:
        part = np.asarray(reader(cy0, cy1, cx0, cx1))
        if not edge:
            return Cutout(part, int(ix), int(iy), x0, y0, False, bool(inside))
        out = np.full((size, size), fill, dtype=part.dtype)
        out[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0] = part
    else:
        out = np.full((size, size), fill, dtype=dtype)
    return Cutout(out, int(ix), int(iy), x0, y0, bool(edge), bool(inside))


def cut_array(array: np.ndarray, ix: int, iy: int, size: int, fill: float = 0) -> Cutout:
    """Cut a stamp from an in-memory image with the same convention as ``cutout``."""
    arr = np.asarray(array)
    return _cut(lambda a, b, c, d: arr[a:b, c:d], arr.shape, ix, iy, size, fill, arr.dtype)


def cutout(brick_file: Any, ra: float, dec: float, size: int, *, fill: float = 0,
           ext: str | int | None = None, wcs: WCS | None = None) -> Cutout:
    """A size x size stamp centred on the pixel containing (ra, dec) (deg), read by section.

    The WCS is the file's own unless ``wcs`` is given (e.g. the image's WCS for a WISE mask
    extension without WCS cards).
    """
    if int(size) <= 0:
        raise ValueError(f"stamp size must be a positive integer, got {size!r}")
    shape, dtype = brick_file.shape_dtype(ext)
    ix, iy = nearest_pixel(wcs or brick_file.wcs, ra, dec)
    return _cut(lambda a, b, c, d: brick_file.section(a, b, c, d, ext=ext), shape,
                int(ix), int(iy), int(size), fill, dtype)
