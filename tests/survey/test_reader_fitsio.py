"""The fitsio engine of the brick reader gives what the astropy engine gives, pixel for pixel."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

import dhs.config.schema  # noqa: F401  (registers the config schemas)
from dhs.fetch import remote
from dhs.survey import brickfile, fits_checks, fitsio_reader, windows
from dhs.survey.files import coadd_relpath
from dhs.mock_survey.fits import COMPRESSION, DITHER_SEED, TILE
from tests.helpers import compose_config

import fitsio  # noqa: E402,F401  (a project dependency: its absence fails here)

REAL = Path(__file__).resolve().parents[1] / "data" / "legacypipe_coadd_obiwan"
REAL_FILES = sorted(REAL.glob("*.fits.fz"))
BRICK = "1102p240"
H, W = 230, 310  # not square, not a multiple of the 100x100 tiles
BUNIT = {"image": "nanomaggy", "invvar": "1/nanomaggy^2", "psfsize": "arcsec"}
WINDOWS = [(0, H, 0, W), (0, 64, 0, 64), (90, 154, 180, 244), (166, 230, 246, 310), (99, 101, 99, 101)]


def _header(kind: str) -> fits.Header:
    h = fits.Header({"BRICKNAM": BRICK, "CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN",
                     "CRVAL1": 110.212443095599, "CRVAL2": 24.0, "CRPIX1": 155.5, "CRPIX2": 115.5,
                     "CD1_1": -7.27777777777778e-05, "CD1_2": 0.0, "CD2_1": 0.0,
                     "CD2_2": 7.27777777777778e-05})
    if kind in BUNIT:
        h["BUNIT"] = BUNIT[kind]
    return h


def _write(path: Path, kind: str, mask_compression: str = "HCOMPRESS_1") -> Path:
    """A DR10-format file with the mock survey's codecs (image: RICE + subtractive dither 2)."""
    rng = np.random.default_rng(len(kind) * 1000 + len(mask_compression))
    if kind == "maskbits":
        data = rng.integers(0, 2**14, (H, W)).astype(np.int32) * (rng.random((H, W)) < 0.3)
        hdus = [fits.CompImageHDU(data.astype(np.int32), header=_header(kind), name="MASKBITS",
                                  tile_shape=TILE, compression_type=mask_compression)]
        for name in ("WISEM1", "WISEM2"):
            hdus.append(fits.CompImageHDU(rng.integers(0, 256, (H, W)).astype(np.uint8), name=name,
                                          tile_shape=TILE, **COMPRESSION["wise"]))
    else:
        scale = {"image": 0.02, "invvar": 300.0, "psfsize": 0.05}[kind]
        data = (1.0 + rng.normal(0, scale, (H, W))).astype(np.float32)
        if kind == "image":
            data[5:9, 40:47] = np.nan  # blank pixels must come back as NaN in both engines
        kw = dict(COMPRESSION[kind])
        if kw.get("quantize_method", -1) == 2:
            kw["dither_seed"] = DITHER_SEED
        hdus = [fits.CompImageHDU(data, header=_header(kind), tile_shape=TILE, **kw)]
    fits.HDUList([fits.PrimaryHDU(), *hdus]).writeto(path)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("fitsio")
    out = {k: _write(d / f"legacysurvey-{BRICK}-{k}.fits.fz", k) for k in ("image", "invvar", "psfsize")}
    out["maskbits"] = _write(d / f"legacysurvey-{BRICK}-maskbits.fits.fz", "maskbits")
    (d / "gz").mkdir()
    out["maskbits-gzip"] = _write(d / "gz" / f"legacysurvey-{BRICK}-maskbits.fits.fz", "maskbits", "GZIP_2")
    plain = d / f"legacysurvey-{BRICK}-plain.fits"
    fits.PrimaryHDU(np.arange(H * W, dtype=np.float32).reshape(H, W), header=_header("x")).writeto(plain)
    out["plain"] = plain
    return out


def _native(a: np.ndarray) -> bytes:
    """Bytes in native order (astropy returns uncompressed HDUs big-endian, fitsio native)."""
    return np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("=")).tobytes()


def _same_file(path: Path, kind: str | None) -> None:
    a = brickfile.open_brick_file(str(path), brick=BRICK, kind=kind)
    b = brickfile.open_brick_file(str(path), brick=BRICK, kind=kind, engine="auto")
    try:
        assert (a.engine, b.engine) == ("astropy", "fitsio")
        assert a.shape == b.shape and a.brickname == b.brickname and a.extnames() == b.extnames()
        assert a.keyword("BUNIT") == b.keyword("BUNIT")
        # the image header, card for card (keywords and values)
        ha, hb = a.header, b.header
        assert [k for k in ha.keys() if k] == [k for k in hb.keys() if k]
        assert all(ha[k] == hb[k] for k in ha.keys() if k and k not in ("COMMENT", "HISTORY"))
        # WCS: same pixel for sample sky positions
        h, w = a.shape
        xs, ys = np.array([0.0, w / 3, w - 1.0, 17.25]), np.array([0.0, h / 2, h - 1.0, 80.75])
        ra, dec = a.wcs.pixel_to_world_values(xs, ys)
        pa, pb = np.array(a.wcs.world_to_pixel_values(ra, dec)), np.array(b.wcs.world_to_pixel_values(ra, dec))
        assert np.max(np.abs(pa - pb)) < 1e-9 and b.wcs.pixel_shape == a.wcs.pixel_shape
        assert b.wcs is b.wcs  # built once per open file
        exts = [None] + [n for n in a.extnames() if n.startswith("WISEM")]
        for ext in exts:
            assert a.shape_dtype(ext) == b.shape_dtype(ext)
            fa, fb = a.read(ext), b.read(ext)
            assert fa.dtype.newbyteorder("=") == fb.dtype and fa.shape == fb.shape
            assert _native(fa) == _native(fb)  # bit for bit, NaNs included
            eh, ew = a.shape_dtype(ext)[0]
            for y0, y1, x0, x1 in [(0, eh, 0, ew), (0, min(64, eh), 0, min(64, ew)),
                                   (eh // 3, eh // 3 + 40, ew // 4, ew // 4 + 50), (eh - 7, eh, ew - 9, ew)]:
                sa, sb = a.section(y0, y1, x0, x1, ext=ext), b.section(y0, y1, x0, x1, ext=ext)
                assert _native(sa) == _native(sb) == _native(fb[y0:y1, x0:x1])
        with pytest.raises(ValueError, match="outside"):
            b.section(-1, 10, 0, 10)
        with pytest.raises(fits_checks.BrickFileError, match="no extension 'NOPE'"):
            b.read("NOPE")
        ca = windows.cutout(a, *a.wcs.pixel_to_world_values(w / 2, h / 2), 33)
        cb = windows.cutout(b, *a.wcs.pixel_to_world_values(w / 2, h / 2), 33)
        assert (ca.ix, ca.iy, ca.edge) == (cb.ix, cb.iy, cb.edge) and _native(ca.data) == _native(cb.data)
        corner = a.wcs.pixel_to_world_values(1, 1)
        ea, eb = windows.cutout(a, *corner, 9), windows.cutout(b, *corner, 9)
        assert ea.edge and eb.edge and _native(ea.data) == _native(eb.data)
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("name", ["image", "invvar", "psfsize", "maskbits", "maskbits-gzip", "plain"])
def test_mock_format_files_match_astropy(files, name) -> None:
    kind = name.split("-")[0] if name != "plain" else None
    _same_file(files[name], kind)


def test_big_whole_reads_through_astropy_match(files, monkeypatch) -> None:
    monkeypatch.setattr(fitsio_reader, "WHOLE_READ_ASTROPY_PIXELS", 1000)
    _same_file(files["image"], "image")
    _same_file(files["maskbits"], "maskbits")


@pytest.mark.parametrize("path", REAL_FILES, ids=[p.name for p in REAL_FILES])
def test_real_legacypipe_files_match_astropy(path: Path) -> None:
    kind = path.name.split("-")[2]
    _same_file(path, kind if kind in ("image", "invvar") else None)


def _errors(path: Path, **kw) -> tuple[str, str]:
    msgs = []
    for engine in ("astropy", "auto"):
        with pytest.raises(fits_checks.BrickFileError) as info:
            brickfile.open_brick_file(str(path), engine=engine, **kw)
        msgs.append(str(info.value))
    return msgs[0], msgs[1]


def test_header_checks_give_the_same_errors(files, tmp_path) -> None:
    a, b = _errors(files["image"], brick="0001m040", kind="image")
    assert a == b and "BRICKNAM='1102p240'" in b
    a, b = _errors(files["image"], brick=BRICK, kind="invvar")
    assert a == b and "BUNIT='nanomaggy'" in b
    nowise = tmp_path / f"legacysurvey-{BRICK}-maskbits.fits.fz"
    fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(np.zeros((20, 20), np.int32), header=_header("m"),
                                                       name="MASKBITS")]).writeto(nowise)
    a, b = _errors(nowise, brick=BRICK, kind="maskbits")
    assert a == b and "WISEM1" in b
    junk = tmp_path / "junk.fits.fz"
    junk.write_bytes(b"not a fits file at all" * 200)
    a, b = _errors(junk)
    assert a == b and "junk.fits.fz" in b
    a, b = _errors(tmp_path / "absent.fits.fz")
    assert a == b and "not found" in b


def test_switches_select_astropy(files, monkeypatch) -> None:
    path = str(files["image"])
    assert brickfile.open_brick_file(path).engine == "astropy"  # the default engine is unchanged
    monkeypatch.setenv("DHS_FITSIO", "0")
    assert not fitsio_reader.available()
    assert brickfile.open_brick_file(path, engine="auto").engine == "astropy"
    monkeypatch.setenv("DHS_FITSIO", "1")
    assert brickfile.open_brick_file(path, engine="auto").engine == "fitsio"
    monkeypatch.setitem(__import__("sys").modules, "fitsio", None)  # not importable
    assert brickfile.open_brick_file(path, engine="auto").engine == "astropy"
    # fitsio needs a local path: URLs, file objects and CFITSIO-special names go to astropy
    assert fitsio_reader.usable_path("s3://bucket/x.fits.fz") is None
    assert fitsio_reader.usable_path("https://host/x.fits.fz") is None
    assert fitsio_reader.usable_path("/data/x.fits.fz[1]") is None
    assert fitsio_reader.usable_path(f"file://{path}") == path
    with pytest.raises(ValueError, match="engine"):
        brickfile.open_brick_file(path, engine="cfitsio")


def _cfg(tmp_path: Path, base: Path):
    from dhs.stages.settings import survey_access

    return survey_access(compose_config(["stage=4c", f"paths.data_root={tmp_path}",
                                         f"survey.base_url={base}", "cache.mode=none"]))


@pytest.fixture
def survey_dir(files, tmp_path) -> Path:
    base = tmp_path / "coadd"
    for kind in ("image", "maskbits"):
        dst = base / coadd_relpath(BRICK, kind, "r" if kind == "image" else None)
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(files[kind].read_bytes())
    return base


def test_remote_opens_local_files_with_fitsio_and_counts(survey_dir, tmp_path, monkeypatch) -> None:
    full = fits.getdata(survey_dir / coadd_relpath(BRICK, "image", "r"), 1)
    for flag, engine in (("1", "fitsio"), ("0", "astropy")):
        monkeypatch.setenv("DHS_FITSIO", flag)
        remote.close_all()
        cfg = _cfg(tmp_path, survey_dir)
        before = remote.io_counters()
        bf = remote.open_survey_file(cfg, BRICK, "image", "r")
        assert bf.engine == engine and remote.open_survey_file(cfg, BRICK, "image", "r") is bf
        got = remote.read_section(cfg, BRICK, "image", "r", 90, 154, 180, 244)
        assert got.tobytes() == full[90:154, 180:244].tobytes()
        after = remote.io_counters()
        moved = after["bytes"] - before["bytes"]
        size = (survey_dir / coadd_relpath(BRICK, "image", "r")).stat().st_size
        assert after["opens"] - before["opens"] == 1 and 0 < moved < size
        mb = remote.open_survey_file(cfg, BRICK, "maskbits")
        assert mb.engine == engine and mb.section(0, 5, 0, 5, ext="WISEM2").dtype == np.uint8
        with pytest.raises(remote.SurveyFileMissing):
            remote.open_survey_file(cfg, BRICK, "image", "g")
        remote.close_all()


def test_threads_keep_their_own_fitsio_files(survey_dir, tmp_path) -> None:
    cfg = _cfg(tmp_path, survey_dir)
    full = fits.getdata(survey_dir / coadd_relpath(BRICK, "image", "r"), 1)
    seen: dict[int, str] = {}
    errors: list[Exception] = []

    def work(i: int) -> None:
        try:
            bf = remote.open_survey_file(cfg, BRICK, "image", "r")
            for k in range(30):
                y, x = (7 * k + i) % (H - 20), (11 * k + 3 * i) % (W - 20)
                assert remote.read_section(cfg, BRICK, "image", "r", y, y + 20, x, x + 20).tobytes() == \
                    full[y:y + 20, x:x + 20].tobytes()
            seen[i] = bf.engine
            remote.close_all()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and seen == dict.fromkeys(range(4), "fitsio")
