"""The decoded-tile cache: pixels bit for bit those of an astropy whole-file read, each tile
decoded at most once, only the tiles the windows touch, memory bounded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from dhs.survey import brickfile, tiles
from dhs.mock_survey.fits import COMPRESSION, DITHER_SEED, TILE

REAL = Path(__file__).resolve().parents[1] / "data" / "legacypipe_coadd_obiwan"
REAL_FILES = sorted(REAL.glob("*.fits.fz"))
H, W = 230, 310  # partial tiles on the right and bottom edges


def _bits(a: np.ndarray) -> bytes:
    """Native-order bytes: bit-for-bit equality, NaNs included."""
    return np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("=")).tobytes()


def _whole(path: Path, ext: int | str) -> np.ndarray:
    with fits.open(path) as hdul:
        return np.array(hdul[ext].data)


def _windows(shape: tuple[int, int], rng: np.random.Generator, n: int = 40) -> list[tuple[int, int, int, int]]:
    """Random stamps (1 to 96 px, clipped to the image), plus corners and tile-boundary cases."""
    h, w = shape
    out = [(0, 1, 0, 1), (h - 1, h, w - 1, w), (99, 101, 99, 101), (0, h, 0, w), (100, 200, 100, 200)]
    for _ in range(n):
        s = int(rng.integers(1, 97))
        y0, x0 = int(rng.integers(0, max(h - s, 1))), int(rng.integers(0, max(w - s, 1)))
        out.append((y0, min(y0 + s, h), x0, min(x0 + s, w)))
    return [(a, b, c, d) for a, b, c, d in out if 0 <= a < b <= h and 0 <= c < d <= w]


def _touched(wins, tile=(100, 100)) -> set[tuple[int, int]]:
    th, tw = tile
    return {(a, b) for y0, y1, x0, x1 in wins for a in range(y0 // th, (y1 - 1) // th + 1)
            for b in range(x0 // tw, (x1 - 1) // tw + 1)}


def _check_file(path: Path, engine: str, exts: list) -> None:
    bf = brickfile.open_brick_file(str(path), engine=engine)
    try:
        assert bf.engine == engine
        for ext in exts:
            ref = _whole(path, ext if ext is not None else 1)
            wins = _windows(ref.shape, np.random.default_rng(len(str(ext)) + ref.size))
            for y0, y1, x0, x1 in wins + wins:  # the second pass comes from the cache only
                got = bf.section(y0, y1, x0, x1, ext=ext)
                assert got.shape == (y1 - y0, x1 - x0)
                assert _bits(got) == _bits(ref[y0:y1, x0:x1]), (path.name, ext, (y0, y1, x0, x1))
            cache = bf.tile_cache(ext)
            assert cache is not None
            # each touched tile decoded exactly once; untouched tiles never
            assert cache.decoded == len(_touched(wins)) == len(cache)
            assert cache.reused > 0
    finally:
        bf.close()


@pytest.mark.parametrize("engine", ["fitsio", "astropy"])
@pytest.mark.parametrize("path", REAL_FILES, ids=[p.name for p in REAL_FILES])
def test_real_legacypipe_files(path: Path, engine: str) -> None:
    _check_file(path, engine, [None])


@pytest.fixture(scope="module")
def edge_files(tmp_path_factory) -> dict[str, Path]:
    """230 x 310 files with the DR10 codecs: partial tiles on two edges, NaNs in the image."""
    d = tmp_path_factory.mktemp("tiles")
    rng = np.random.default_rng(7)
    out = {}
    for kind, scale in (("image", 0.02), ("invvar", 300.0), ("psfsize", 0.05)):
        data = (1.0 + rng.normal(0, scale, (H, W))).astype(np.float32)
        if kind == "image":
            data[5:9, 40:47] = np.nan
        kw = dict(COMPRESSION[kind])
        if kw.get("quantize_method", -1) == 2:
            kw["dither_seed"] = DITHER_SEED
        out[kind] = d / f"{kind}.fits.fz"
        fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(data, tile_shape=TILE, **kw)]).writeto(out[kind])
    mask = (rng.integers(0, 2**14, (H, W)) * (rng.random((H, W)) < 0.3)).astype(np.int32)
    hdus = [fits.PrimaryHDU(), fits.CompImageHDU(mask, name="MASKBITS", tile_shape=TILE,
                                                 **COMPRESSION["maskbits"])]
    for name in ("WISEM1", "WISEM2"):
        hdus.append(fits.CompImageHDU((rng.random((H, W)) < 0.1).astype(np.uint8), name=name,
                                      tile_shape=TILE, **COMPRESSION["wise"]))
    out["maskbits"] = d / "maskbits.fits.fz"
    fits.HDUList(hdus).writeto(out["maskbits"])
    return out


@pytest.mark.parametrize("engine", ["fitsio", "astropy"])
@pytest.mark.parametrize("kind", ["image", "invvar", "psfsize", "maskbits"])
def test_partial_edge_tiles(edge_files, kind: str, engine: str) -> None:
    exts = [None, "WISEM1", "WISEM2"] if kind == "maskbits" else [None]
    _check_file(edge_files[kind], engine, exts)


@pytest.mark.parametrize("engine", ["fitsio", "astropy"])
def test_mock_survey_bricks(mini_root, engine: str) -> None:
    files = sorted((Path(mini_root) / "mock_survey" / "coadd").rglob("*.fits.fz"))
    assert len(files) == 30  # 3 bricks x 10 files
    for path in files[:10]:
        _check_file(path, engine, [None, "WISEM1"] if "maskbits" in path.name else [None])


def test_process_counters_and_neighbouring_stamps(edge_files) -> None:
    tiles.reset_counters()
    with brickfile.open_brick_file(str(edge_files["image"]), engine="fitsio") as bf:
        bf.section(10, 74, 10, 74)        # tile (0, 0)
        bf.section(20, 84, 30, 94)        # same tile: no decode
        bf.section(60, 124, 60, 124)      # tiles (0,0) (0,1) (1,0) (1,1): three new
    c = tiles.counters()
    assert c["tiles_decoded"] == 4 and c["tiles_reused"] == 2 and c["sections"] == 3
    # one read per run of adjacent missing tiles in a tile row: (0,0); (0,1); (1,0)+(1,1)
    assert c["decode_calls"] == 3


def test_bounded_memory_evicts_and_stays_exact(edge_files, monkeypatch) -> None:
    monkeypatch.setenv(tiles.ENV, "0.05")  # 52 kB: one 100x100 float32 tile (40 kB)
    ref = _whole(edge_files["image"], 1)
    wins = _windows(ref.shape, np.random.default_rng(3))
    with brickfile.open_brick_file(str(edge_files["image"]), engine="fitsio") as bf:
        for y0, y1, x0, x1 in wins:
            assert _bits(bf.section(y0, y1, x0, x1)) == _bits(ref[y0:y1, x0:x1])
            cache = bf.tile_cache()
            assert cache.nbytes <= cache.max_bytes
        assert cache.decoded > len(_touched(wins))  # evicted tiles had to be decoded again


def test_cache_off_reads_directly(edge_files, monkeypatch) -> None:
    monkeypatch.setenv(tiles.ENV, "0")
    ref = _whole(edge_files["invvar"], 1)
    for engine in ("fitsio", "astropy"):
        with brickfile.open_brick_file(str(edge_files["invvar"]), engine=engine) as bf:
            assert bf.tile_cache() is None
            assert _bits(bf.section(37, 201, 5, 300)) == _bits(ref[37:201, 5:300])
    monkeypatch.setenv(tiles.ENV, "lots")
    with pytest.raises(Exception, match="DHS_TILE_CACHE_MB='lots'"):
        brickfile.open_brick_file(str(edge_files["invvar"]), engine="astropy")
