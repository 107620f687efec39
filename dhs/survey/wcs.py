"""The per-brick TAN WCS exactly as legacypipe writes it (``survey.py: wcs_for_brick``).

North up, east left: CRVAL = brick centre, CRPIX = (W/2 + 0.5, H/2 + 0.5) (1-based FITS pixels,
so the centre of a 3600-pixel brick is between pixels 1800 and 1801), CD1_1 = -pixscale/3600,
CD2_2 = +pixscale/3600, CD1_2 = CD2_1 = 0 (deg/pixel). Pixel scale in arcsec/pixel (0.262).

Pixel convention used everywhere in dhs: 0-based (x, y) = (column, row) as returned by
``astropy.wcs.WCS.world_to_pixel``; pixel (0, 0) is the centre of the first pixel, so
array[y, x] holds the pixel that contains world position (x, y) after rounding to nearest.
"""

from __future__ import annotations

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from dhs.errors import DhsError
from dhs.survey.bricks import Brick, brick_from_name
from dhs.survey.fits_checks import BrickFileError

PIXSCALE_ARCSEC = 0.262
DR10_BRICK_PIX = 3600
#: Relative tolerance between a file's pixel scale and the configured one.
PIXSCALE_RTOL = 1e-4


class PixelScaleError(DhsError):
    """A survey file's WCS pixel scale is not the configured ``survey.pixscale_arcsec``."""


def brick_wcs_header(ra_c: float, dec_c: float, width: int = DR10_BRICK_PIX,
                     height: int | None = None, pixscale: float = PIXSCALE_ARCSEC) -> fits.Header:
    """FITS header cards of the brick TAN WCS (centre in deg, size in pixels, scale arcsec/pix)."""
    height = width if height is None else height
    scale = float(pixscale) / 3600.0
    hdr = fits.Header()
    hdr["CTYPE1"] = ("RA---TAN", "TANgent plane")
    hdr["CTYPE2"] = ("DEC--TAN", "TANgent plane")
    hdr["CRVAL1"] = (float(ra_c), "Reference RA")
    hdr["CRVAL2"] = (float(dec_c), "Reference Dec")
    hdr["CRPIX1"] = (width / 2.0 + 0.5, "Reference x")
    hdr["CRPIX2"] = (height / 2.0 + 0.5, "Reference y")
    hdr["CD1_1"] = (-scale, "CD matrix")
    hdr["CD1_2"] = (0.0, "CD matrix")
    hdr["CD2_1"] = (0.0, "CD matrix")
    hdr["CD2_2"] = (scale, "CD matrix")
    hdr["EQUINOX"] = 2000.0
    return hdr


def brick_wcs(ra_c: float, dec_c: float, width: int = DR10_BRICK_PIX, height: int | None = None,
              pixscale: float = PIXSCALE_ARCSEC) -> WCS:
    """astropy WCS of a brick of ``width`` x ``height`` pixels centred on (ra_c, dec_c)."""
    height = width if height is None else height
    w = WCS(brick_wcs_header(ra_c, dec_c, width, height, pixscale))
    w.pixel_shape = (int(width), int(height))
    return w


def wcs_for_brick(brick: Brick | str, width: int = DR10_BRICK_PIX, height: int | None = None,
                  pixscale: float = PIXSCALE_ARCSEC) -> WCS:
    """The WCS of a brick given as a ``Brick`` or a brick name."""
    b = brick_from_name(brick) if isinstance(brick, str) else brick
    return brick_wcs(b.ra, b.dec, width, height, pixscale)


def radec_to_pixel(wcs: WCS, ra, dec) -> tuple[np.ndarray, np.ndarray]:
    """0-based pixel coordinates (x = column, y = row), float, of world positions (deg)."""
    x, y = wcs.all_world2pix(np.asarray(ra, dtype=np.float64), np.asarray(dec, dtype=np.float64), 0)
    return np.asarray(x), np.asarray(y)


def pixel_to_radec(wcs: WCS, x, y) -> tuple[np.ndarray, np.ndarray]:
    """World positions (deg) of 0-based pixel coordinates (x = column, y = row)."""
    ra, dec = wcs.all_pix2world(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64), 0)
    return np.asarray(ra), np.asarray(dec)


def nearest_pixel(wcs: WCS, ra, dec) -> tuple[np.ndarray, np.ndarray]:
    """0-based integer pixel (ix, iy) containing each world position (round to nearest)."""
    x, y = radec_to_pixel(wcs, ra, dec)
    return np.floor(x + 0.5).astype(np.int64), np.floor(y + 0.5).astype(np.int64)


def primary_pixel_mask(brick: Brick, wcs: WCS, shape: tuple[int, int]) -> np.ndarray:
    """Boolean (H, W) array: True where the pixel centre lies in the brick's primary area.

    Pixels where this is False carry MASKBITS NPRIMARY in legacypipe coadds.
    """
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    ra, dec = pixel_to_radec(wcs, xx.ravel(), yy.ravel())
    ra = np.mod(ra, 360.0)
    inside = (ra >= brick.ra1) & (ra < brick.ra2) & (dec >= brick.dec1) & (dec < brick.dec2)
    return inside.reshape(h, w)


def pixel_scale_arcsec(wcs: WCS) -> float:
    """Pixel scale (arcsec/pixel) of a celestial WCS: sqrt(|det CD|) in arcsec."""
    return float(np.sqrt(abs(np.linalg.det(wcs.celestial.pixel_scale_matrix))) * 3600.0)


def check_pixel_scale(wcs: WCS, expected_arcsec: float, label: str) -> None:
    """Raise ``PixelScaleError`` naming ``label`` when the WCS's pixel scale is not
    ``expected_arcsec`` (the configured ``survey.pixscale_arcsec``), ``BrickFileError`` when the
    header has no celestial WCS."""
    if not wcs.has_celestial:
        raise BrickFileError(f"{label}: header has no celestial WCS (CTYPE/CD cards)")
    got = pixel_scale_arcsec(wcs)
    if not np.isclose(got, float(expected_arcsec), rtol=PIXSCALE_RTOL, atol=0.0):
        raise PixelScaleError(
            f"{label}: the file's WCS has {got:.6g} arcsec/pixel but survey.pixscale_arcsec="
            f"{float(expected_arcsec):g}; set survey.pixscale_arcsec={got:.6g} for this survey "
            "(or rebuild the mock survey with the configured pixel scale: "
            "`dhs stage=mock_survey force=true`)")
