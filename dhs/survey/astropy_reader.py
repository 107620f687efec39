"""astropy reader of DR10 brick files (``legacysurvey-<brick>-<kind>[-<band>].fits.fz``).

Works on real legacypipe outputs and on the mock survey alike: tile-compressed files keep the
image in extension 1 (an astropy ``CompImageHDU``; HDU0 is an empty primary); plain FITS files with
the image in HDU0 are accepted too; maskbits files hold MASKBITS (int32) in extension 1 and
WISEM1 / WISEM2 in extensions 2 and 3. ``section`` decompresses only the tiles a window touches.
Files open through ``dhs.io.storage.open_input`` (local paths, ``s3://``), ``http(s)://`` through
fsspec, or from any seekable binary file object. Use ``dhs.survey.brickfile.open_brick_file``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from dhs.io import storage
from dhs.survey import tiles
from dhs.survey.fits_checks import BITPIX_DTYPE, BrickFileError


def _open_hdul(src: Any, label: str) -> tuple[fits.HDUList, Any]:
    """Open ``src`` lazily; returns the HDUList and the underlying file object to close."""
    try:
        if isinstance(src, (str, bytes)) or hasattr(src, "__fspath__"):
            uri = str(src.decode() if isinstance(src, bytes) else src)
            if storage.is_http(uri):
                try:
                    import fsspec  # noqa: F401
                except ImportError as exc:  # pragma: no cover - depends on the environment
                    raise BrickFileError(f"{label}: reading http(s) URLs needs the 'fsspec' package "
                                         "(pip install fsspec)") from exc
                return fits.open(uri, use_fsspec=True, lazy_load_hdus=True), None
            fobj = storage.open_input(uri)
            return fits.open(fobj, lazy_load_hdus=True, memmap=False), fobj
        return fits.open(src, lazy_load_hdus=True, memmap=False), None
    except BrickFileError:
        raise
    except FileNotFoundError as exc:
        raise BrickFileError(f"{label}: file not found") from exc
    except OSError as exc:
        raise BrickFileError(f"{label}: not a readable FITS file ({exc})") from exc


def _is_image(hdu: Any) -> bool:
    return isinstance(hdu, (fits.CompImageHDU, fits.ImageHDU, fits.PrimaryHDU)) and \
        int(hdu.header.get("NAXIS", 0)) == 2


def _data_hdu_index(hdul: fits.HDUList, label: str) -> int:
    """Extension 1 when it is an image (tile-compressed files), else a 2-D primary HDU."""
    try:
        if _is_image(hdul[1]):
            return 1
    except IndexError:
        pass
    if _is_image(hdul[0]):
        return 0
    raise BrickFileError(f"{label}: no 2-D image data HDU (expected the image in extension 1 "
                         "of a tile-compressed .fits.fz file, or in the primary HDU)")


@dataclass
class BrickFile:
    """An open brick file. Pixel arrays are indexed [y, x] (row, column), 0-based."""

    label: str
    hdul: fits.HDUList
    index: int
    _fobj: Any = None
    _caches: dict = field(default_factory=dict, repr=False)
    _tile_budget: int = field(default_factory=tiles.budget_bytes, repr=False)
    _whole: dict = field(default_factory=dict, repr=False)

    @property
    def hdu(self) -> Any:
        return self.hdul[self.index]

    @property
    def header(self) -> fits.Header:
        """Header of the data HDU (the image header of a compressed HDU)."""
        return self.hdu.header

    @property
    def shape(self) -> tuple[int, int]:
        """(H, W) in pixels."""
        h = self.header
        return int(h["NAXIS2"]), int(h["NAXIS1"])

    @property
    def brickname(self) -> str | None:
        v = self.header.get("BRICKNAM")
        return str(v).strip() if v is not None else None

    engine = "astropy"

    def keyword(self, key: str, default: Any = None) -> Any:
        """Value of a card of the data HDU's (image) header."""
        return self.header.get(key, default)

    def shape_dtype(self, ext: str | int | None = None) -> tuple[tuple[int, int], np.dtype]:
        """(H, W) and pixel dtype of the data HDU or of extension ``ext``."""
        h = self._ext(ext).header
        return (int(h["NAXIS2"]), int(h["NAXIS1"])), \
            np.dtype(BITPIX_DTYPE.get(int(h.get("BITPIX", -32)), np.float32))

    @cached_property
    def wcs(self) -> WCS:
        """astropy WCS of the data HDU (TAN, 0.262 arcsec/pixel for DR10 bricks)."""
        w = WCS(self.header)
        w.pixel_shape = (self.shape[1], self.shape[0])
        return w

    def _ext(self, ext: str | int | None) -> Any:
        if ext is None:
            return self.hdu
        try:
            return self.hdul[ext]
        except (KeyError, IndexError) as exc:
            raise BrickFileError(f"{self.label}: no extension {ext!r}") from exc

    def extnames(self) -> list[str]:
        """EXTNAME of every HDU (empty string where there is none)."""
        return [str(h.header.get("EXTNAME", h.name or "")).strip() for h in self.hdul]

    def read(self, ext: str | int | None = None) -> np.ndarray:
        """The whole image of the data HDU (or of extension ``ext``, e.g. 'WISEM1')."""
        def decode() -> np.ndarray:
            try:
                return np.asarray(self._ext(ext).data)
            except BrickFileError:
                raise
            except Exception as exc:
                raise BrickFileError(f"{self.label}: cannot read image data ({exc})") from exc

        return tiles.kept_read(self._whole, ext, self._tile_budget, decode)

    def tile_cache(self, ext: str | int | None = None) -> tiles.TileCache | None:
        """The decoded-tile cache of a tile-compressed HDU (None: not compressed, or caching off)."""
        hdu = self._ext(ext)
        if not isinstance(hdu, fits.CompImageHDU) or self._tile_budget <= 0:
            return None
        key = id(hdu)
        cache = self._caches.get(key)
        if cache is None:
            shape, dtype = self.shape_dtype(ext)
            tile = tuple(int(t) for t in hdu.tile_shape)
            cache = self._caches[key] = tiles.TileCache(
                lambda a, b, c, d: hdu.section[a:b, c:d], shape, tile[-2:], dtype, self._tile_budget)
        return cache

    def section(self, y0: int, y1: int, x0: int, x1: int, ext: str | int | None = None) -> np.ndarray:
        """Pixels [y0:y1, x0:x1], decompressing only the tiles the window touches, each tile at
        most once while it stays in this file's tile cache (``dhs.survey.tiles``).

        The window must lie inside the image (0 <= y0 < y1 <= H, 0 <= x0 < x1 <= W).
        """
        hdu = self._ext(ext)
        h, w = int(hdu.header["NAXIS2"]), int(hdu.header["NAXIS1"])
        if not (0 <= y0 < y1 <= h and 0 <= x0 < x1 <= w):
            raise ValueError(f"{self.label}: window y[{y0}:{y1}] x[{x0}:{x1}] is outside the "
                             f"{h}x{w} image")
        try:
            cache = self.tile_cache(ext)
            if cache is not None:
                return cache.section(int(y0), int(y1), int(x0), int(x1))
            return np.asarray(hdu.section[y0:y1, x0:x1])
        except Exception as exc:
            raise BrickFileError(f"{self.label}: cannot read section ({exc})") from exc

    def close(self) -> None:
        self._caches.clear()
        self._whole.clear()
        self.hdul.close()
        if self._fobj is not None:
            self._fobj.close()

    def __enter__(self) -> BrickFile:  # noqa: PYI034
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_astropy(src: Any, label: str) -> BrickFile:
    """Open ``src`` lazily with astropy (headers not yet checked)."""
    hdul, fobj = _open_hdul(src, label)
    try:
        return BrickFile(label, hdul, _data_hdu_index(hdul, label), fobj)
    except Exception:
        hdul.close()
        if fobj is not None:
            fobj.close()
        raise
