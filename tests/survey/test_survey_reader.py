"""The brick-file reader on real legacypipe coadds (tests/data/legacypipe_coadd_obiwan)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from dhs.survey import brickfile, bricks, fits_checks, windows
from dhs.survey.wcs import brick_wcs, nearest_pixel, pixel_to_radec

DATA = Path(__file__).resolve().parents[1] / "data" / "legacypipe_coadd_obiwan"
IMAGE = DATA / "legacysurvey-1102p240-image-z.fits.fz"
INVVAR = DATA / "legacysurvey-1102p240-invvar-z.fits.fz"
NEXP = DATA / "legacysurvey-1102p240-nexp-z.fits.fz"


def test_real_image_header_wcs_and_pixels() -> None:
    with brickfile.open_brick_file(str(IMAGE), brick="1102p240", kind="image") as bf:
        assert bf.shape == (100, 100)
        assert bf.index == 1 and isinstance(bf.hdu, fits.CompImageHDU)
        assert bf.brickname == "1102p240"
        data = bf.read()
        assert data.dtype == np.float32
        assert data[50, 50] == pytest.approx(4.533488, rel=1e-6)
        w = bf.wcs
        # CRVAL is the brick centre of the geometry; CD is 0.262 arcsec/pixel, north up
        b = bricks.brick_from_name("1102p240")
        assert w.wcs.crval[0] == pytest.approx(b.ra, abs=1e-9)
        assert w.wcs.crval[1] == pytest.approx(b.dec, abs=1e-12)
        assert w.wcs.cd[0, 0] == pytest.approx(-0.262 / 3600, rel=1e-12)
        assert w.wcs.cd[1, 1] == pytest.approx(0.262 / 3600, rel=1e-12)


def test_real_zoom_matches_full_brick_wcs() -> None:
    # the fixture is a zoom of the 3600x3600 brick starting at (x0, y0) = (500, 650):
    # CRPIX = 1800.5 - offset. The full-brick WCS must map the same pixels to the same sky.
    full = brick_wcs(*_centre("1102p240"), width=3600)
    with brickfile.open_brick_file(str(IMAGE)) as bf:
        assert tuple(bf.wcs.wcs.crpix) == (1300.5, 1150.5)
        xs, ys = np.meshgrid(np.arange(0, 100, 9), np.arange(0, 100, 7))
        ra, dec = pixel_to_radec(bf.wcs, xs.ravel(), ys.ravel())
    ra2, dec2 = pixel_to_radec(full, xs.ravel() + 500, ys.ravel() + 650)
    assert np.max(np.abs(ra - ra2)) < 1e-10 and np.max(np.abs(dec - dec2)) < 1e-10


def _centre(name: str) -> tuple[float, float]:
    b = bricks.brick_from_name(name)
    return b.ra, b.dec


@pytest.mark.parametrize("path, kind", [(IMAGE, "image"), (INVVAR, "invvar"), (NEXP, "nexp")])
def test_sections_equal_slices_of_full_reads(path: Path, kind: str) -> None:
    with brickfile.open_brick_file(str(path), brick="1102p240", kind=kind) as bf:
        full = bf.read()
        for y0, y1, x0, x1 in [(0, 100, 0, 100), (3, 17, 90, 100), (40, 73, 12, 64), (99, 100, 0, 1)]:
            assert np.array_equal(bf.section(y0, y1, x0, x1), full[y0:y1, x0:x1])
        with pytest.raises(ValueError, match="outside"):
            bf.section(-1, 10, 0, 10)


def test_file_object_input_matches_path_input() -> None:
    with brickfile.open_brick_file(io.BytesIO(IMAGE.read_bytes())) as a, \
            brickfile.open_brick_file(str(IMAGE)) as b:
        assert np.array_equal(a.read(), b.read())


def test_wrong_bricknam_names_the_file(tmp_path: Path) -> None:
    with fits.open(IMAGE) as hdul:
        hdul[1].header["BRICKNAM"] = "0001m040"
        bad = tmp_path / "legacysurvey-1102p240-image-z.fits.fz"
        hdul.writeto(bad)
    with pytest.raises(fits_checks.BrickFileError, match=r"legacysurvey-1102p240-image-z.*BRICKNAM='0001m040'"):
        brickfile.open_brick_file(str(bad), brick="1102p240")
    # without an expectation it opens fine
    with brickfile.open_brick_file(str(bad)) as bf:
        assert bf.brickname == "0001m040"


def test_wrong_bunit_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(fits_checks.BrickFileError, match=r"BUNIT='nanomaggy'.*invvar"):
        brickfile.open_brick_file(str(IMAGE), kind="invvar")
    with pytest.raises(fits_checks.BrickFileError, match="not found"):
        brickfile.open_brick_file(str(tmp_path / "nope.fits.fz"))


def test_no_data_hdu_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "legacysurvey-1102p240-image-g.fits.fz"
    table = fits.BinTableHDU.from_columns([fits.Column(name="a", format="E", array=np.zeros(3))])
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(path)
    with pytest.raises(fits_checks.BrickFileError, match=r"image-g\.fits\.fz: no 2-D image data HDU"):
        brickfile.open_brick_file(str(path))
    junk = tmp_path / "junk.fits.fz"
    junk.write_bytes(b"not a fits file at all" * 200)
    with pytest.raises(fits_checks.BrickFileError, match="junk.fits.fz"):
        brickfile.open_brick_file(str(junk))


def test_maskbits_needs_wise_extensions(tmp_path: Path) -> None:
    path = tmp_path / "legacysurvey-1102p240-maskbits.fits.fz"
    hdr = fits.Header({"BRICKNAM": "1102p240"})
    fits.HDUList([fits.PrimaryHDU(),
                  fits.CompImageHDU(np.zeros((20, 20), np.int32), header=hdr, name="MASKBITS",
                                    compression_type="GZIP_1")]).writeto(path)
    with pytest.raises(fits_checks.BrickFileError, match=r"maskbits.*WISEM1"):
        brickfile.open_brick_file(str(path), brick="1102p240", kind="maskbits")


def test_cutout_pixel_convention_and_edges() -> None:
    with brickfile.open_brick_file(str(IMAGE)) as bf:
        full = bf.read()
        # a position 0.4 px from the centre of pixel (x=40, y=60) belongs to that pixel
        ra, dec = pixel_to_radec(bf.wcs, 40.4, 59.6)
        assert tuple(int(v) for v in nearest_pixel(bf.wcs, ra, dec)) == (40, 60)
        c = windows.cutout(bf, float(ra), float(dec), 10)
        assert c.ok and (c.ix, c.iy, c.x0, c.y0) == (40, 60, 35, 55)
        assert c.data[5, 5] == full[60, 40]
        assert np.array_equal(c.data, full[55:65, 35:45])
        # odd size: symmetric window
        c7 = windows.cutout(bf, float(ra), float(dec), 7)
        assert np.array_equal(c7.data, full[57:64, 37:44])
        # near the edge: padded with fill, flagged, the valid part still equals the image
        ra, dec = pixel_to_radec(bf.wcs, 2.0, 97.0)
        e = windows.cutout(bf, float(ra), float(dec), 16, fill=np.nan)
        assert e.edge and e.inside and not e.ok
        assert e.data.shape == (16, 16)
        assert np.array_equal(e.data[:11, 6:], full[89:100, 0:10])
        assert np.isnan(e.data[11:, :]).all() and np.isnan(e.data[:, :6]).all()
        # entirely off the image
        ra, dec = pixel_to_radec(bf.wcs, 500.0, 500.0)
        off = windows.cutout(bf, float(ra), float(dec), 8)
        assert not off.inside and off.edge and np.all(off.data == 0)


def test_cut_array_matches_cutout() -> None:
    with brickfile.open_brick_file(str(INVVAR)) as bf:
        full = bf.read()
        ra, dec = pixel_to_radec(bf.wcs, 97.0, 3.0)
        a = windows.cutout(bf, float(ra), float(dec), 12)
    b = windows.cut_array(full, 97, 3, 12)
    assert np.array_equal(a.data, b.data) and a.edge == b.edge and (a.x0, a.y0) == (b.x0, b.y0)


@pytest.mark.s3
def test_reads_sections_from_s3() -> None:
    import boto3
    from moto.server import ThreadedMotoServer

    from dhs.io import storage

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="test")
        s3.create_bucket(Bucket="coadds")
        key = "coadd/110/1102p240/legacysurvey-1102p240-image-z.fits.fz"
        s3.put_object(Bucket="coadds", Key=key, Body=IMAGE.read_bytes())
        storage.configure(endpoint, "us-east-1", "test", "test")
        with brickfile.open_brick_file(f"s3a://coadds/{key}", brick="1102p240", kind="image") as bf, \
                brickfile.open_brick_file(str(IMAGE)) as local:
            assert np.array_equal(bf.section(10, 30, 50, 90), local.section(10, 30, 50, 90))
            assert bf.wcs.wcs.compare(local.wcs.wcs)
    finally:
        storage.configure()
        server.stop()
