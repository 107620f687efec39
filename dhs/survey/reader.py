"""Reader for DR10 brick files (``legacysurvey-<brick>-<kind>[-<band>].fits.fz``).

Works on real legacypipe outputs and on the mock survey alike:

- tile-compressed files keep the image in extension 1 (an astropy ``CompImageHDU``; HDU0 is an
  empty primary); plain FITS files with the image in HDU0 are accepted too;
- maskbits files hold MASKBITS (int32) in extension 1 and WISEM1 / WISEM2 in extensions 2 and 3;
- headers are checked: BRICKNAM must match the expected brick and BUNIT the kind
  (``nanomaggy`` for image/model, ``1/nanomaggy^2`` for invvar); a mismatch raises
  ``BrickFileError`` naming the file;
- ``section`` decompresses only the tiles a window touches (astropy ``.section``);
- files open through ``dhs.io.storage.open_input`` (local paths, ``s3://``), ``http(s)://`` through
  fsspec, or from any seekable binary file object; ``engine="auto"`` opens local paths with fitsio
  (``dhs.survey.fitsio_reader``: same pixels, same checks, about 10x faster to open) when it is
  installed and ``DHS_FITSIO`` is not ``0``.

Cutout pixel convention (``cutout``): the target's pixel is the 0-based pixel from
``WCS.world_to_pixel`` rounded to nearest (``floor(x + 0.5)``); it lands at array index
``[size // 2, size // 2]`` of the stamp, i.e. the stamp covers rows ``iy - size//2 .. iy - size//2
+ size - 1`` and the same for columns. A stamp that does not fit entirely inside the image is
returned padded with ``fill`` and flagged ``edge=True`` (``ok=False``); stage 4c records such rows
with error_code ``'edge'``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, BinaryIO

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from dhs.io import storage
from dhs.survey.wcs import nearest_pixel

#: Expected BUNIT per coadd kind (DR10 headers; kinds not listed are not checked).
EXPECTED_BUNIT = {
    "image": "nanomaggy", "model": "nanomaggy", "blobmodel": "nanomaggy",
    "invvar": "1/nanomaggy^2",
}


class BrickFileError(ValueError):
    """A brick file is unreadable or is not the file it should be; the message names it."""


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
            np.dtype(_BITPIX_DTYPE.get(int(h.get("BITPIX", -32)), np.float32))

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
        try:
            return np.asarray(self._ext(ext).data)
        except BrickFileError:
            raise
        except Exception as exc:
            raise BrickFileError(f"{self.label}: cannot read image data ({exc})") from exc

    def section(self, y0: int, y1: int, x0: int, x1: int, ext: str | int | None = None) -> np.ndarray:
        """Pixels [y0:y1, x0:x1], decompressing only the tiles the window touches.

        The window must lie inside the image (0 <= y0 < y1 <= H, 0 <= x0 < x1 <= W).
        """
        hdu = self._ext(ext)
        h, w = int(hdu.header["NAXIS2"]), int(hdu.header["NAXIS1"])
        if not (0 <= y0 < y1 <= h and 0 <= x0 < x1 <= w):
            raise ValueError(f"{self.label}: window y[{y0}:{y1}] x[{x0}:{x1}] is outside the "
                             f"{h}x{w} image")
        try:
            return np.asarray(hdu.section[y0:y1, x0:x1])
        except Exception as exc:
            raise BrickFileError(f"{self.label}: cannot read section ({exc})") from exc

    def close(self) -> None:
        self.hdul.close()
        if self._fobj is not None:
            self._fobj.close()

    def __enter__(self) -> BrickFile:  # noqa: PYI034
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
    hdul, fobj = _open_hdul(src, label)
    try:
        bf = BrickFile(label, hdul, _data_hdu_index(hdul, label), fobj)
        _check_header(bf, brick, kind)
    except Exception:
        hdul.close()
        if fobj is not None:
            fobj.close()
        raise
    return bf


def _check_header(bf: Any, brick: str | None, kind: str | None) -> None:
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


# ----------------------------------------------------------------------------- cutouts
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


_BITPIX_DTYPE = {8: np.uint8, 16: np.int16, 32: np.int32, 64: np.int64, -32: np.float32,
                 -64: np.float64}


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


def cutout(brick_file: BrickFile, ra: float, dec: float, size: int, *, fill: float = 0,
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
