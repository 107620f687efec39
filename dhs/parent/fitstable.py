"""Row chunks of a FITS binary table (DR10 sweep or tractor catalog), local, ``s3://`` or http(s).

Local uncompressed files are read with fitsio (only the requested columns of the requested rows).
Remote files are read with ranged requests (``dhs.fetch.rangefile``: HTTP Range, S3 ranged GET,
with retries): astropy parses the headers, and each chunk of rows is one ranged read of
``NAXIS1 * rows`` bytes at the data offset, decoded with the table's record layout. Gzipped
files (``.gz``) cannot be read by range; they are read whole into memory (astropy). Every
reader returns the same arrays: lower-case column names, native byte order, strings decoded and
stripped, FITS logicals as bool, TZERO/TSCAL applied to integer columns.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from dhs.errors import DhsError
from dhs.fetch.retry import RetryPolicy
from dhs.io import storage


class CatalogReadError(DhsError):
    """A catalog file is missing, unreadable or lacks a column; the message names file and fix."""


def _native(a: np.ndarray) -> np.ndarray:
    if a.dtype.kind in ("S", "U"):
        if a.dtype.kind == "S":
            a = np.char.decode(a, "ascii", errors="replace")
        return np.char.strip(a).astype(str)
    if a.dtype.byteorder not in ("=", "|"):
        a = a.astype(a.dtype.newbyteorder("="))
    return a


def _scaled(arr: np.ndarray, bzero: float, bscale: float) -> np.ndarray:
    """TZERO/TSCAL of an integer column: the unsigned convention exactly, anything else as float64."""
    bits = 8 * arr.dtype.itemsize
    if bscale == 1 and bzero == 2 ** (bits - 1) and arr.dtype.kind == "i":
        return (arr.view(f"u{arr.dtype.itemsize}") ^ np.array(1 << (bits - 1)).astype(f"u{arr.dtype.itemsize}"))
    return arr.astype(np.float64) * float(bscale) + float(bzero)


class CatalogFile:
    """One FITS table: ``names`` (lower case), ``nrows``, ``read(columns, start, stop)``.

    ``mode``: "auto" (fitsio for local files, ranged reads otherwise), "range" (ranged reads
    for any URI, local files included) or "whole" (the whole file into memory).
    """

    def __init__(self, uri: str, *, policy: RetryPolicy | None = None, timeout_s: float = 60.0,
                 mode: str = "auto"):
        self.uri = uri
        self._policy = policy or RetryPolicy()
        norm = storage.normalize(uri)
        remote = storage.is_http(norm) or storage.is_s3(norm)
        if norm.lower().endswith(".gz"):
            mode = "whole"
        elif mode == "auto":
            mode = "range" if remote else "fitsio"
        self.mode = mode
        if not storage.is_http(norm) and not storage.exists(norm):
            raise CatalogReadError(f"catalog {uri} does not exist; check parent.catalogs (a sweep or "
                                   "tractor FITS file, a folder of them, or their URLs)")
        try:
            if mode == "fitsio":
                self._open_fitsio(norm)
            elif mode == "range":
                self._open_range(uri, timeout_s)
            else:
                self._open_whole(uri, timeout_s)
        except CatalogReadError:
            raise
        except FileNotFoundError as exc:
            raise CatalogReadError(f"catalog {uri} does not exist ({exc}); check parent.catalogs "
                                   "(a sweep or tractor FITS file, folder or URL)") from exc
        except (OSError, ValueError, KeyError, IndexError) as exc:
            raise CatalogReadError(f"catalog {uri} is not readable as a FITS table: {exc}") from exc

    # ------------------------------------------------------------------ opening
    def _open_fitsio(self, path: str) -> None:
        import fitsio

        self._fits = fitsio.FITS(path)
        hdu = next((h for h in self._fits if h.get_exttype() in ("BINARY_TBL", "ASCII_TBL")), None)
        if hdu is None:
            raise CatalogReadError(f"catalog {self.uri} has no table extension")
        self._hdu = hdu
        self._names = list(hdu.get_colnames())
        self.nrows = int(hdu.get_nrows())

    def _table_hdu(self, hdul: Any) -> tuple[int, Any]:
        from astropy.io import fits

        for i, h in enumerate(hdul):
            if isinstance(h, (fits.BinTableHDU, fits.TableHDU)):
                return i, h
        raise CatalogReadError(f"catalog {self.uri} has no table extension")

    def _open_range(self, uri: str, timeout_s: float) -> None:
        from astropy.io import fits
        from astropy.utils.exceptions import AstropyUserWarning

        from dhs.fetch.rangefile import open_range_file

        self._file = open_range_file(uri, policy=self._policy, timeout_s=timeout_s, block_size=65536)
        with warnings.catch_warnings():  # a truncated file is refused below, by its size
            warnings.simplefilter("ignore", AstropyUserWarning)
            hdul = fits.open(self._file, lazy_load_hdus=True, memmap=False)
            idx, hdu = self._table_hdu(hdul)
            if not isinstance(hdu, fits.BinTableHDU):
                raise CatalogReadError(f"catalog {self.uri}: ASCII tables cannot be read by range; "
                                       "use a binary table")
            self._data_offset = int(hdul.fileinfo(idx)["datLoc"])
            self._row_bytes = int(hdu.header["NAXIS1"])
            self.nrows = int(hdu.header["NAXIS2"])
            self._cols = hdu.columns
            self._dtype = hdu.columns.dtype.newbyteorder(">")
            if self._dtype.itemsize != self._row_bytes:
                raise CatalogReadError(f"catalog {self.uri}: row layout of {self._dtype.itemsize} "
                                       f"bytes does not match NAXIS1 = {self._row_bytes}")
            self._names = list(hdu.columns.names)

    def _open_whole(self, uri: str, timeout_s: float) -> None:
        from astropy.io import fits

        if storage.is_http(uri):
            from dhs.fetch import http

            resp = http.session().get(uri, timeout=timeout_s)
            http.check_status(resp, uri)
            data = resp.content
        else:
            data = storage.read_bytes(uri)
        hdul = fits.open(io.BytesIO(data), memmap=False)
        _, hdu = self._table_hdu(hdul)
        self._table = hdu.data
        self._names = list(hdu.columns.names)
        self.nrows = len(hdu.data)

    # ------------------------------------------------------------------ reading
    @property
    def names(self) -> list[str]:
        return [n.lower() for n in self._names]

    def _actual(self, columns: Sequence[str]) -> list[str]:
        by_lower = {n.lower(): n for n in self._names}
        missing = [c for c in columns if c.lower() not in by_lower]
        if missing:
            raise CatalogReadError(
                f"catalog {self.uri} lacks column(s) {', '.join(c.upper() for c in missing)}; "
                f"a DR10 sweep or tractor catalog has them (columns present: "
                f"{', '.join(self._names[:40])}{' ...' if len(self._names) > 40 else ''})")
        return [by_lower[c.lower()] for c in columns]

    def read(self, columns: Sequence[str], start: int = 0, stop: int | None = None) -> dict[str, np.ndarray]:
        """Rows ``start:stop`` of ``columns`` (case-insensitive) as {lower-case name: array}."""
        stop = self.nrows if stop is None else min(int(stop), self.nrows)
        start = max(int(start), 0)
        actual = self._actual(columns)
        if stop <= start:
            return {c.lower(): np.zeros(0) for c in columns}
        if self.mode == "fitsio":
            rec = self._hdu.read(columns=actual, rows=np.arange(start, stop))
            return {c.lower(): _native(np.asarray(rec[a])) for c, a in zip(columns, actual)}
        if self.mode == "whole":
            return {c.lower(): _native(np.asarray(self._table[a][start:stop])) for c, a in zip(columns, actual)}
        return self._read_range(columns, actual, start, stop)

    def _read_range(self, columns: Sequence[str], actual: list[str], start: int, stop: int) -> dict[str, np.ndarray]:
        offset = self._data_offset + start * self._row_bytes
        n = (stop - start) * self._row_bytes
        if offset + n > self._file.size:
            raise CatalogReadError(f"catalog {self.uri}: the file ends inside rows {start}-{stop} "
                                   f"({self._file.size} bytes); is it truncated?")
        buf = self._file.source.read_at(offset, n)  # one ranged request per chunk, with retries
        rec = np.frombuffer(buf, dtype=self._dtype)
        out = {}
        for c, a in zip(columns, actual):
            col = self._cols[a]
            arr = _native(np.array(rec[a]))
            fmt = str(col.format)
            if fmt.endswith("L"):
                arr = arr.view(np.uint8) == ord("T")
            elif arr.dtype.kind in "iu" and (col.bzero not in (None, 0) or col.bscale not in (None, 1)):
                arr = _scaled(arr, col.bzero or 0, col.bscale or 1)
            out[c.lower()] = arr
        return out

    def chunks(self, columns: Sequence[str], chunk_rows: int) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        """(first row, columns) of consecutive chunks of at most ``chunk_rows`` rows."""
        step = max(int(chunk_rows), 1)
        for start in range(0, self.nrows, step):
            yield start, self.read(columns, start, start + step)

    def close(self) -> None:
        if self.mode == "fitsio":
            self._fits.close()
        elif self.mode == "range":
            self._file.close()

    def __enter__(self) -> "CatalogFile":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
