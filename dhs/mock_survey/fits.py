"""Mock brick files in exact DR10 format: bytes of tile-compressed ``.fits.fz`` files.

HDU0 is an empty primary; the data sit in extension 1 (``CompImageHDU``, 100 x 100 tiles) with a
legacypipe-style header (BRICKNAM, BRICKID, brick bounds, TAN WCS, BUNIT, MAGZERO). Compression
follows DR10.0.12: image RICE with subtractive dither 2 and an absolute quantization step of
1e-4 nmgy (``qz -1e-4``), invvar RICE ``q0 16`` (no dither), psfsize GZIP (lossless), maskbits
HCOMPRESS (lossless for integers) with WISEM1 and WISEM2 (uint8, GZIP) in extensions 2 and 3.
No date or checksum cards, a fixed dither seed and gzip streams stamped with mtime 0 (astropy's
GZIP codecs otherwise write the current time into every tile): the same arrays give the same bytes.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import io
import threading
from typing import Iterator

import numpy as np
from astropy.io import fits

from dhs.survey import maskbits as mb
from dhs.survey.wcs import brick_wcs_header

TILE = (100, 100)
DITHER_SEED = 1
COMPRESSION = {
    "image": {"compression_type": "RICE_1", "quantize_level": -1e-4, "quantize_method": 2},
    "invvar": {"compression_type": "RICE_1", "quantize_level": 16.0, "quantize_method": -1},
    "psfsize": {"compression_type": "GZIP_2", "quantize_level": 0.0},
    "maskbits": {"compression_type": "HCOMPRESS_1"},
    "wise": {"compression_type": "GZIP_2"},
}
BAND_FILTER = {"g": "g DECam SDSS c0001 4720.0 1520.0", "r": "r DECam SDSS c0002 6415.0 1480.0",
               "z": "z DECam SDSS c0004 9260.0 1520.0"}


def brick_header(plan: dict) -> fits.Header:
    """Common header cards of a mock brick (legacypipe names), WCS included."""
    h = fits.Header()
    h["SURVEY"] = ("dhs-mock", "Synthetic survey in DR10 format")
    h["SURVEYID"] = ("dhs mock survey", "Survey name")
    h["DRVERSIO"] = (10, "Survey data release number")
    h["MOCKSEED"] = (int(plan["seed"]), "Seed of the mock survey")
    h["BRICKNAM"] = (plan["brickname"], "LegacySurvey brick RRRr[pm]DDd")
    h["BRICKID"] = (int(plan["brickid"]), "LegacySurvey brick id")
    h["RAMIN"] = (plan["ra1"], "Brick RA min")
    h["RAMAX"] = (plan["ra2"], "Brick RA max")
    h["DECMIN"] = (plan["dec1"], "Brick Dec min")
    h["DECMAX"] = (plan["dec2"], "Brick Dec max")
    h["BRICKRA"] = (plan["ra"], "Brick center")
    h["BRICKDEC"] = (plan["dec"], "Brick center")
    h["TELESCOP"] = "CTIO 4.0-m telescope"
    h["INSTRUME"] = "DECam"
    h.extend(brick_wcs_header(plan["ra"], plan["dec"], plan["size"], plan["size"], plan["pixscale"]))
    return h


def _kind_cards(h: fits.Header, kind: str, band: str | None) -> fits.Header:
    h = h.copy()
    if band:
        h["FILTER"] = BAND_FILTER[band]
        h["FILTERX"] = band
        h["BAND"] = (band, "Band of this coadd")
    h["IMTYPE"] = (kind, "LegacySurvey image type")
    h["PRODTYPE"] = (kind, "NOAO image type")
    if kind == "image":
        h["MAGZERO"] = (22.5, "Magnitude zeropoint")
        h["BUNIT"] = ("nanomaggy", "AB mag = 22.5 - 2.5*log10(nanomaggy)")
    elif kind == "invvar":
        h["BUNIT"] = ("1/nanomaggy^2", "Ivar of ABmag=22.5-2.5*log10(nmgy)")
    elif kind == "psfsize":
        h["BUNIT"] = ("arcsec", "Moffat FWHM of the PSF")
    elif kind == "maskbits":
        for name, value in mb.NAMES.items():
            h[f"MBIT_{int(value).bit_length() - 1}"] = (name, "MASKBITS bit name")
    return h


def _comp_hdu(data: np.ndarray, header: fits.Header, spec: dict, name: str | None = None) -> fits.CompImageHDU:
    kw = dict(spec)
    if kw.get("quantize_method", -1) == 2:
        kw["dither_seed"] = DITHER_SEED
    return fits.CompImageHDU(data=data, header=header, name=name, tile_shape=TILE, **kw)


_GZIP_LOCK = threading.Lock()


@contextlib.contextmanager
def _gzip_mtime_zero() -> Iterator[None]:
    """Make astropy's tile GZIP codecs write mtime 0 (reproducible bytes) while writing."""
    from astropy.io.fits.hdu.compressed import _codecs

    with _GZIP_LOCK:
        original = _codecs.gzip_compress
        _codecs.gzip_compress = functools.partial(gzip.compress, mtime=0)
        try:
            yield
        finally:
            _codecs.gzip_compress = original


def _to_bytes(hdus: list) -> bytes:
    buf = io.BytesIO()
    with _gzip_mtime_zero():
        fits.HDUList([fits.PrimaryHDU(), *hdus]).writeto(buf, output_verify="silentfix")
    return buf.getvalue()


def file_bytes(plan: dict, arrays: dict[str, np.ndarray], kind: str, band: str | None = None) -> bytes:
    """Bytes of one brick file (``kind`` image, invvar, psfsize with a band; maskbits without)."""
    hdr = _kind_cards(brick_header(plan), kind, band)
    if kind == "maskbits":
        base = brick_header(plan)
        return _to_bytes([
            _comp_hdu(arrays["maskbits"].astype(np.int32), hdr, COMPRESSION["maskbits"], "MASKBITS"),
            _comp_hdu(arrays["wisem1"].astype(np.uint8), base, COMPRESSION["wise"], "WISEM1"),
            _comp_hdu(arrays["wisem2"].astype(np.uint8), base, COMPRESSION["wise"], "WISEM2"),
        ])
    data = arrays[f"{kind}-{band}"].astype(np.float32)
    return _to_bytes([_comp_hdu(data, hdr, COMPRESSION[kind])])
