"""Brick-file reads: astropy vs fitsio (dhs.survey.brickfile.open_brick_file engines), CPU ms per call.

Files: DR10-format tile-compressed files written with the mock-survey codecs (100x100 tiles):
image (RICE, subtractive dither 2), invvar (RICE), psfsize (GZIP), maskbits (HCOMPRESS), at the
mock-survey size (400x400) and the DR10 size (3600x3600). Operations: open + header checks;
open + header + 64x64 section (what a sparse stamp costs per file); 64x64 section of an open
file (tile cache off: the tiles are decompressed every time); open + whole-image read (fitsio
engine: astropy's tile loop above 2e6 pixels); the same section again with the tile cache on
(dhs.survey.tiles: decoded once, then cut from the cached tiles).
CPU time (time.process_time), best of 3 repeats.

Usage: python benchmarks/bench_reader.py [--quick]   (last line: RESULT ...)
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from astropy.io import fits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dhs.survey import brickfile, fitsio_reader, tiles  # noqa: E402
from dhs.mock_survey.fits import COMPRESSION, DITHER_SEED, TILE  # noqa: E402

BUNIT = {"image": "nanomaggy", "invvar": "1/nanomaggy^2", "psfsize": "arcsec", "maskbits": ""}


def write(path: Path, kind: str, size: int) -> None:
    rng = np.random.default_rng(size)
    if kind == "maskbits":
        data = (rng.random((size, size)) < 0.05).astype(np.int32) * 2
    elif kind == "psfsize":
        data = np.full((size, size), 1.3, np.float32) + rng.normal(0, 0.01, (size, size)).astype(np.float32)
    else:
        data = rng.normal(0.01, 0.02 if kind == "image" else 100.0, (size, size)).astype(np.float32)
    hdr = fits.Header({"BRICKNAM": "1102p240", "BUNIT": BUNIT[kind], "CTYPE1": "RA---TAN",
                       "CTYPE2": "DEC--TAN", "CRVAL1": 110.2124, "CRVAL2": 24.0, "CRPIX1": size / 2 + 0.5,
                       "CRPIX2": size / 2 + 0.5, "CD1_1": -7.2777e-5, "CD1_2": 0.0, "CD2_1": 0.0,
                       "CD2_2": 7.2777e-5})
    kw = dict(COMPRESSION[kind])
    if kw.get("quantize_method", -1) == 2:
        kw["dither_seed"] = DITHER_SEED
    hdus = [fits.PrimaryHDU(), fits.CompImageHDU(data=data, header=hdr, tile_shape=TILE, **kw)]
    if kind == "maskbits":
        hdus[1].name = "MASKBITS"
        for name in ("WISEM1", "WISEM2"):
            hdus.append(fits.CompImageHDU(data=np.zeros((size, size), np.uint8), name=name,
                                          tile_shape=TILE, **COMPRESSION["wise"]))
    fits.HDUList(hdus).writeto(path, overwrite=True)


def cpu_ms(fn, n: int) -> float:
    fn()
    best = float("inf")
    for _ in range(3):
        t0 = time.process_time()
        for _ in range(n):
            fn()
        best = min(best, (time.process_time() - t0) / n * 1e3)
    return best


def measure(path: str, kind: str, engine: str, size: int, n: int) -> dict[str, float]:
    c = size // 2 - 32

    def open_only():
        brickfile.open_brick_file(path, brick="1102p240", kind=kind, engine=engine).close()

    def open_section():
        bf = brickfile.open_brick_file(path, brick="1102p240", kind=kind, engine=engine)
        bf.section(c, c + 64, c, c + 64)
        bf.close()

    def open_whole():
        bf = brickfile.open_brick_file(path, brick="1102p240", kind=kind, engine=engine)
        bf.read()
        bf.close()

    os.environ[tiles.ENV] = "0"  # raw decoding: every section decompresses its tiles
    bf = brickfile.open_brick_file(path, brick="1102p240", kind=kind, engine=engine)
    assert bf.engine == engine, (bf.engine, engine)
    out = {"open": cpu_ms(open_only, n), "open+section": cpu_ms(open_section, n),
           "section": cpu_ms(lambda: bf.section(c, c + 64, c, c + 64), n),
           "open+whole": cpu_ms(open_whole, 2 if size > 1000 else 20)}
    bf.close()
    del os.environ[tiles.ENV]  # the tile cache: the window's tiles are decoded once, then reused
    bf = brickfile.open_brick_file(path, brick="1102p240", kind=kind, engine=engine)
    out["cached section"] = cpu_ms(lambda: bf.section(c, c + 64, c, c + 64), n)
    bf.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="400x400 files only")
    args = parser.parse_args()
    if not fitsio_reader.available():
        sys.exit("fitsio is not available (pip install fitsio, and DHS_FITSIO must not be 0)")
    sizes = (400,) if args.quick else (400, 3600)
    tmp = Path(tempfile.mkdtemp(prefix="dhs-bench-reader-"))
    try:
        _run(tmp, sizes)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _run(tmp: Path, sizes: tuple[int, ...]) -> None:
    rows, agg = [], {"astropy": [], "fitsio": []}
    for size in sizes:
        for kind in ("image", "invvar", "psfsize", "maskbits"):
            path = tmp / f"{kind}-{size}.fits.fz"
            write(path, kind, size)
            res = {e: measure(str(path), kind, e, size, 100 if size < 1000 else 30) for e in ("astropy", "fitsio")}
            for e in res:
                agg[e].append(res[e]["open+section"])
            rows.append((f"{kind} {size}", res))
    head = ("file", "engine", "open ms", "open+sec ms", "section ms", "open+whole ms", "cached sec ms")
    print(f"{head[0]:>16}{head[1]:>9}" + "".join(f"{h:>14}" for h in head[2:]))
    for name, res in rows:
        for e, r in res.items():
            cols = ("open", "open+section", "section", "open+whole", "cached section")
            print(f"{name:>16}{e:>9}" + "".join(f"{r[k]:>14.3f}" for k in cols))
    fa, aa = float(np.mean(agg["fitsio"])), float(np.mean(agg["astropy"]))
    print(f"RESULT fitsio_open_section_ms={fa:.3f} astropy_open_section_ms={aa:.3f} ratio={aa / fa:.2f}")


if __name__ == "__main__":
    main()
