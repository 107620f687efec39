"""Decoded-tile cache of a tile-compressed FITS image: each tile decoded at most once per open file.

DR10 coadds are tile-compressed in 100 x 100-pixel tiles (legacypipe ``get_compression_args``).
A section read decompresses every tile the window touches, so the stamps of neighbouring targets,
repeated targets and every experiment that cuts the same target decode the same tiles again.
A ``TileCache`` sits on one image HDU of an open file: ``section(y0, y1, x0, x1)`` decodes the
tiles it lacks with tile-aligned reads (one read per run of adjacent missing tiles in a tile
row, so the decoder decompresses exactly those tiles and nothing else), keeps the decoded tiles
(least recently used first out, bounded in bytes) and assembles the window from them. The
decoder is the reader's own (CFITSIO through fitsio, or astropy), tile by tile, so the pixels are
bit for bit those of a whole-file read (quantized floats keep their per-tile dither).

A whole-image read (``read()``) of an open file is kept too when it fits the same bound, so
the stamps of every experiment of a brick (``dhs.inject.onepass``) share one decode; ``read()``
hands out copies.

Bound: ``DHS_TILE_CACHE_MB`` in the environment (MB of decoded pixels per image HDU of an open
file; default ``DEFAULT_MB``; ``0`` turns the cache off and every section goes straight to the
reader). It is read when a reader opens a file, so set it before worker processes start.
``counters()`` gives this process's decoded tiles, reuses and evictions, whole reads and reuses.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from typing import Callable

import numpy as np

#: MB of decoded pixels kept per image HDU of an open file: a whole 3600 x 3600 float32 DR10
#: image is 52 MB; 83 stamps of 64 x 64 pixels touch about 220 of its 1296 tiles (9 MB).
DEFAULT_MB = 32.0
ENV = "DHS_TILE_CACHE_MB"

#: Reads pixels [y0:y1, x0:x1] of the image (0-based, end exclusive).
ReadFn = Callable[[int, int, int, int], np.ndarray]

_LOCK = threading.Lock()
_COUNTS = {"tiles_decoded": 0, "tiles_reused": 0, "tiles_evicted": 0, "decode_calls": 0,
           "sections": 0, "whole_reads": 0, "whole_reused": 0}


def budget_bytes() -> int:
    """Bytes of decoded tiles a cache may hold (0: caching off), from ``DHS_TILE_CACHE_MB``."""
    raw = os.environ.get(ENV, "").strip()
    if not raw:
        return int(DEFAULT_MB * 2**20)
    try:
        mb = float(raw)
    except ValueError:
        from dhs.survey.fits_checks import BrickFileError

        raise BrickFileError(f"{ENV}={raw!r}: must be a number of MB (0 turns the tile cache "
                             "off)") from None
    return max(int(mb * 2**20), 0)


def counters() -> dict[str, int]:
    """Process-wide counts: tiles decoded, tile reuses, evictions, decoder calls, sections."""
    with _LOCK:
        return dict(_COUNTS)


def reset_counters() -> None:
    with _LOCK:
        for k in _COUNTS:
            _COUNTS[k] = 0


def _add(**kw: int) -> None:
    with _LOCK:
        for k, v in kw.items():
            _COUNTS[k] += v


def kept_read(kept: dict, key: object, budget: int, read: Callable[[], np.ndarray]) -> np.ndarray:
    """A copy of the whole image ``key`` of an open file: decoded by ``read`` the first time,
    kept in ``kept`` (the file's own dict) when it fits ``budget`` bytes."""
    arr = kept.get(key)
    if arr is not None:
        _add(whole_reused=1)
        return arr.copy()
    arr = read()
    _add(whole_reads=1)
    if 0 < arr.nbytes <= budget:
        kept[key] = arr
        return arr.copy()
    return arr


class TileCache:
    """Decoded tiles of one (H, W) image with (tile_h, tile_w) tiles, read through ``read``.

    ``max_bytes``: bound on the decoded pixels kept (least recently used tiles leave first; a
    section that needs more tiles than fit still comes back whole). Not thread-safe: one per
    open file, and open files are per thread (``dhs.fetch.remote``).
    """

    def __init__(self, read: ReadFn, shape: tuple[int, int], tile: tuple[int, int],
                 dtype: np.dtype, max_bytes: int):
        self._read = read
        self.shape = (int(shape[0]), int(shape[1]))
        self.tile = (max(int(tile[0]), 1), max(int(tile[1]), 1))
        self.dtype = np.dtype(dtype)
        self.max_bytes = int(max_bytes)
        self._tiles: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()
        self.nbytes = 0
        self.decoded = 0
        self.reused = 0

    def tiles_of(self, y0: int, y1: int, x0: int, x1: int) -> list[tuple[int, int]]:
        """(tile row, tile column) of every tile the window [y0:y1, x0:x1] touches."""
        th, tw = self.tile
        return [(a, b) for a in range(y0 // th, (y1 - 1) // th + 1)
                for b in range(x0 // tw, (x1 - 1) // tw + 1)]

    def _decode_run(self, a: int, b0: int, b1: int, got: dict) -> None:
        """Decode tiles (a, b0..b1) of one tile row with one tile-aligned read."""
        th, tw = self.tile
        h, w = self.shape
        y0, y1, x0, x1 = a * th, min((a + 1) * th, h), b0 * tw, min((b1 + 1) * tw, w)
        block = np.asarray(self._read(y0, y1, x0, x1))
        if block.shape != (y1 - y0, x1 - x0):
            raise ValueError(f"tile read [{y0}:{y1}, {x0}:{x1}] returned shape {block.shape}")
        for b in range(b0, b1 + 1):
            part = block[:, (b - b0) * tw:(b - b0 + 1) * tw]
            got[(a, b)] = part if b0 == b1 else np.ascontiguousarray(part)
        self.decoded += b1 - b0 + 1
        _add(tiles_decoded=b1 - b0 + 1, decode_calls=1)

    def section(self, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        """Pixels [y0:y1, x0:x1] (inside the image), a new array assembled from decoded tiles."""
        h, w = self.shape
        if not (0 <= y0 < y1 <= h and 0 <= x0 < x1 <= w):
            raise ValueError(f"window y[{y0}:{y1}] x[{x0}:{x1}] is outside the {h}x{w} image")
        need = self.tiles_of(y0, y1, x0, x1)
        got: dict[tuple[int, int], np.ndarray] = {}
        missing: dict[int, list[int]] = {}
        for key in need:
            arr = self._tiles.get(key)
            if arr is None:
                missing.setdefault(key[0], []).append(key[1])
            else:
                self._tiles.move_to_end(key)
                got[key] = arr
        reused = len(got)
        for a, cols in missing.items():
            start = prev = cols[0]
            for b in cols[1:] + [None]:  # type: ignore[list-item]
                if b is not None and b == prev + 1:
                    prev = b
                    continue
                self._decode_run(a, start, prev, got)
                if b is not None:
                    start = prev = b
        self.reused += reused
        _add(tiles_reused=reused, sections=1)
        out = self._assemble(got, need, y0, y1, x0, x1)
        self._keep(got, missing)
        return out

    def _assemble(self, got: dict, need: list, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        th, tw = self.tile
        if len(need) == 1:
            a, b = need[0]
            return np.array(got[need[0]][y0 - a * th:y1 - a * th, x0 - b * tw:x1 - b * tw])
        first = got[need[0]]
        out = np.empty((y1 - y0, x1 - x0), dtype=first.dtype)
        for a, b in need:
            ty0, tx0 = a * th, b * tw
            cy0, cy1 = max(y0, ty0), min(y1, ty0 + th)
            cx0, cx1 = max(x0, tx0), min(x1, tx0 + tw)
            out[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0] = got[(a, b)][cy0 - ty0:cy1 - ty0,
                                                                  cx0 - tx0:cx1 - tx0]
        return out

    def _keep(self, got: dict, missing: dict[int, list[int]]) -> None:
        """Store the tiles just decoded, then drop the least recently used ones over budget."""
        for a, cols in missing.items():
            for b in cols:
                arr = got[(a, b)]
                self._tiles[(a, b)] = arr
                self.nbytes += arr.nbytes
        evicted = 0
        while self.nbytes > self.max_bytes and self._tiles:
            _, old = self._tiles.popitem(last=False)
            self.nbytes -= old.nbytes
            evicted += 1
        if evicted:
            _add(tiles_evicted=evicted)

    def __len__(self) -> int:
        return len(self._tiles)

    def clear(self) -> None:
        self._tiles.clear()
        self.nbytes = 0
