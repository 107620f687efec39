"""DR10-format coadd files written with astropy for the cache tests and benchmarks.

``write_brick(coadd_root, brick, size, ...)`` writes ``<AAA>/<brick>/legacysurvey-<brick>-...``:
image and invvar (RICE_1, 100x100 tiles, float32), maskbits (int32, HCOMPRESS_1, with WISEM1 and
WISEM2 extensions) and psfsize (GZIP_2) per band; tile-compressed data in extension 1 with
BRICKNAM, BUNIT and a TAN WCS in its header. Pixel values are a pure function of brick, kind, band.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np
from astropy.io import fits

from dhs.survey.files import brick_files, coadd_relpath

KINDS = ("image", "invvar", "maskbits", "psfsize")
BANDS = ("g", "r", "z")


def _rng(*parts: object) -> np.random.Generator:
    seed = int.from_bytes(hashlib.blake2b("|".join(map(str, parts)).encode(),
                                          digest_size=8).digest(), "big")
    return np.random.default_rng(seed)


def _header(brick: str, size: int, bunit: str | None) -> fits.Header:
    h = fits.Header()
    h["BRICKNAM"] = brick
    if bunit:
        h["BUNIT"] = bunit
    h["CTYPE1"], h["CTYPE2"] = "RA---TAN", "DEC--TAN"
    h["CRVAL1"], h["CRVAL2"] = 112.6, 22.2
    h["CRPIX1"] = h["CRPIX2"] = size / 2 + 0.5
    h["CD1_1"], h["CD2_2"] = -0.262 / 3600, 0.262 / 3600
    h["CD1_2"] = h["CD2_1"] = 0.0
    return h


def brick_hdus(brick: str, kind: str, band: str | None, size: int) -> fits.HDUList:
    rng = _rng(brick, kind, band)
    tiles = (100, 100)
    if kind == "image":
        data = (rng.normal(0.0, 0.01, (size, size))
                + rng.exponential(0.002, (size, size))).astype(np.float32)
        hdu = fits.CompImageHDU(data, header=_header(brick, size, "nanomaggy"),
                                compression_type="RICE_1", tile_shape=tiles, quantize_level=-1e-4)
        return fits.HDUList([fits.PrimaryHDU(), hdu])
    if kind == "invvar":
        data = rng.uniform(2000.0, 4000.0, (size, size)).astype(np.float32)
        hdu = fits.CompImageHDU(data, header=_header(brick, size, "1/nanomaggy^2"),
                                compression_type="RICE_1", tile_shape=tiles, quantize_level=16)
        return fits.HDUList([fits.PrimaryHDU(), hdu])
    if kind == "maskbits":
        data = np.where(rng.random((size, size)) < 0.02, 2, 0).astype(np.int32)
        hdu = fits.CompImageHDU(data, header=_header(brick, size, None), name="MASKBITS",
                                compression_type="HCOMPRESS_1", tile_shape=tiles)
        wise = [fits.CompImageHDU(np.zeros((size, size), np.uint8), name=n,
                                  compression_type="HCOMPRESS_1", tile_shape=tiles)
                for n in ("WISEM1", "WISEM2")]
        return fits.HDUList([fits.PrimaryHDU(), hdu, *wise])
    if kind == "psfsize":
        data = np.full((size, size), 1.2 + 0.1 * rng.random(), np.float32)
        hdu = fits.CompImageHDU(data, header=_header(brick, size, None),
                                compression_type="GZIP_2", tile_shape=tiles)
        return fits.HDUList([fits.PrimaryHDU(), hdu])
    raise ValueError(kind)


def write_brick(coadd_root: str | os.PathLike, brick: str, size: int = 200,
                kinds: tuple[str, ...] = KINDS, bands: tuple[str, ...] = BANDS,
                header_brick: str | None = None) -> list[str]:
    """Write one brick's files; returns their relative paths. ``header_brick`` writes a wrong
    BRICKNAM (a misplaced file)."""
    out = []
    for kind, band, _name in brick_files(brick, kinds, bands):
        rel = coadd_relpath(brick, kind, band)
        path = os.path.join(str(coadd_root), rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        brick_hdus(header_brick or brick, kind, band, size).writeto(path, overwrite=True)
        out.append(rel)
    return out


def write_bricks_manifest(directory: str | os.PathLike, bricks: list[str]) -> None:
    """A bricks manifest like stage 4a's: brickname, experiment_id, n_tasks."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    os.makedirs(directory, exist_ok=True)
    table = pa.table({"brickname": bricks, "experiment_id": ["exp"] * len(bricks),
                      "n_tasks": list(range(1, len(bricks) + 1))})
    pq.write_table(table, os.path.join(str(directory), "part-0.parquet"))
