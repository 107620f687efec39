"""Row chunks of FITS tables: fitsio (local), ranged reads (local, loopback HTTP, moto S3) and
whole-file reads (.gz) give astropy's values for every column type a DR10 catalog uses."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from dhs.parent.fitstable import CatalogFile, CatalogReadError
from tests.s3_server import configure_storage, moto_server
from tests.servers import http_server

COLS = ["ra", "flux_g", "nobs_g", "brickname", "brick_primary", "wisemask_w1", "u16", "dchisq", "type", "maskbits"]


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    root = tmp_path_factory.mktemp("fitstable")
    n = 2500
    rng = np.random.default_rng(7)
    t = Table()
    t["RA"] = rng.uniform(0, 360, n)
    t["FLUX_G"] = rng.normal(size=n).astype(">f4")
    t["NOBS_G"] = rng.integers(0, 9, n).astype(">i2")
    t["BRICKNAME"] = rng.choice(["0001m040", "1126p222", "0238p302"], n)
    t["BRICK_PRIMARY"] = rng.random(n) > 0.3
    t["WISEMASK_W1"] = rng.integers(0, 256, n).astype("u1")
    t["U16"] = rng.integers(0, 65535, n).astype("u2")  # stored with TZERO = 32768
    t["DCHISQ"] = rng.normal(size=(n, 5)).astype(">f4")
    t["TYPE"] = rng.choice(["PSF", "REX", "DEV", "EXP", "SER"], n)
    t["MASKBITS"] = rng.integers(0, 1 << 17, n).astype(">i4")
    path = root / "sweep-000m010-010m005.fits"
    t.write(path)
    gz = root / "tractor-0001m040.fits.gz"
    gz.write_bytes(gzip.compress(path.read_bytes(), mtime=0))
    return {"root": root, "path": path, "gz": gz, "ref": Table.read(path)}


def _expected(ref: Table, col: str, a: int, b: int) -> np.ndarray:
    v = np.asarray(ref[col.upper()][a:b])
    return np.char.strip(v.astype(str)) if v.dtype.kind in "SU" else v


def _check(cat: CatalogFile, ref: Table) -> None:
    assert cat.nrows == len(ref)
    seen = 0
    for start, chunk in cat.chunks(COLS, 700):
        n = len(chunk["ra"])
        for c in COLS:
            exp = _expected(ref, c, start, start + n)
            assert chunk[c].dtype.kind == exp.dtype.kind or (c == "brick_primary" and chunk[c].dtype == bool), c
            np.testing.assert_array_equal(chunk[c], exp, err_msg=c)
            assert chunk[c].dtype.byteorder in ("=", "|"), c
        seen += n
    assert seen == len(ref)


@pytest.mark.parametrize("mode", ["fitsio", "range", "whole"])
def test_local_modes_agree_with_astropy(catalog, mode):
    with CatalogFile(str(catalog["path"]), mode=mode) as cat:
        assert cat.mode == mode
        _check(cat, catalog["ref"])


def test_gzipped_catalog_is_read_whole(catalog):
    with CatalogFile(str(catalog["gz"])) as cat:
        assert cat.mode == "whole"
        _check(cat, catalog["ref"])


def test_http_catalog_is_read_by_ranges(catalog):
    with http_server(str(catalog["root"])) as srv:
        with CatalogFile(f"{srv.url}/{catalog['path'].name}") as cat:
            assert cat.mode == "range"
            _check(cat, catalog["ref"])
        gets = [r for r in srv.requests() if r[0] == "GET"]
        # headers plus one request per chunk, never the whole file at once
        assert 4 <= len(gets) <= 12
        assert max(r[3] for r in gets) < catalog["path"].stat().st_size / 2


def test_s3_catalog_is_read_by_ranges(catalog):
    with moto_server() as srv:
        configure_storage(srv)
        srv.make_bucket("dr10")
        srv.client("s3").put_object(Bucket="dr10", Key="south/sweep/x.fits", Body=catalog["path"].read_bytes())
        with CatalogFile("s3://dr10/south/sweep/x.fits") as cat:
            assert cat.mode == "range"
            _check(cat, catalog["ref"])


def test_missing_column_and_missing_file_are_named(catalog, tmp_path):
    with CatalogFile(str(catalog["path"])) as cat:
        with pytest.raises(CatalogReadError, match="FIBERFLUX_Z") as exc:
            cat.read(["ra", "fiberflux_z"], 0, 10)
        assert str(catalog["path"]) in str(exc.value)
    with pytest.raises(CatalogReadError, match="does not exist"):
        CatalogFile(str(tmp_path / "sweep-missing.fits"))


def test_truncated_remote_file_is_refused(catalog, tmp_path):
    data = catalog["path"].read_bytes()
    cut = tmp_path / "cut.fits"
    cut.write_bytes(data[: len(data) - 40 * 2880])
    with pytest.raises(CatalogReadError):
        with CatalogFile(str(cut), mode="range") as cat:
            for _ in cat.chunks(["ra"], 1000):
                pass


def test_image_file_is_not_a_catalog(tmp_path):
    path = tmp_path / "image.fits"
    fits.HDUList([fits.PrimaryHDU(np.zeros((4, 4), np.float32))]).writeto(path)
    with pytest.raises(CatalogReadError, match="no table"):
        CatalogFile(str(path))
