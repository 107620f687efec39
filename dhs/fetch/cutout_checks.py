"""Checks of a cutout-service answer against its request, and the opt-in sky inverse variance.

Geometry. The viewer writes a TAN WCS with CRVAL = the requested (ra, dec), CRPIX = (W + 1) / 2
and CD = [[-p/3600, 0], [0, +p/3600]] deg/pixel (north up, east left) for the requested pixel
scale p (arcsec). The stamp is cut around CRPIX and the arcs are rendered at p, so a file that says
otherwise is refused (``CutoutGeometryError``, naming the card, its value and the expected one):

- CRVAL more than ``CENTRE_TOL_PIX`` pixels (angular distance) from the requested position;
- CRPIX1 or CRPIX2 not (W + 1) / 2;
- CD1_1 or CD2_2 off -p/3600, +p/3600 by more than ``CD_RTOL`` (relative), or CD1_2 / CD2_1
  above ``CD_RTOL`` p/3600 (a rotated or sheared grid).

A header without CD cards is read through astropy's WCS (CDELT/PC are accepted the same way).

Image-only answers (one HDU: a layer the service has no inverse variance for, or a request
without ``&invvar&maskbits``) are refused (``ImageOnlyCutoutError``) unless the user opts in
(``survey.cutout_sky_invvar=true``): then every pixel of a band gets the inverse variance of the
band's sky, ``1 / sigma^2`` with sigma the 1.4826 x MAD of the pixels after three rounds of
3-sigma clipping about the median, and the maskbits are zero. That ignores the objects' own
Poisson noise (the variance is too low on bright galaxies) and masks nothing; the row records
``invvar_source = sky_estimate``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from dhs.fetch.integrity import WrongFileError

CENTRE_TOL_PIX = 0.05
CD_RTOL = 1e-3
CLIP_SIGMA = 3.0
CLIP_ROUNDS = 3
#: How a stamp's inverse variance was obtained (metrics column invvar_source).
INVVAR_SOURCES = ("coadd", "cutout", "sky_estimate")


class CutoutGeometryError(WrongFileError):
    """A cutout's WCS does not put the requested position at its centre, or has another pixel grid."""


class ImageOnlyCutoutError(WrongFileError):
    """A cutout without its inverse-variance and maskbits HDUs (and no opt-in sky estimate)."""


def _cd(header: Any) -> np.ndarray:
    keys = ("CD1_1", "CD1_2", "CD2_1", "CD2_2")
    if all(k in header for k in keys):
        return np.array([[float(header["CD1_1"]), float(header["CD1_2"])],
                         [float(header["CD2_1"]), float(header["CD2_2"])]])
    import warnings

    from astropy.wcs import WCS

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(WCS(header, naxis=2).wcs.get_pc()) * np.asarray(
            WCS(header, naxis=2).wcs.get_cdelt())[:, None]


def check_geometry(header: Any, ra: float, dec: float, width: int, pixscale: float, label: str) -> None:
    """Raise ``CutoutGeometryError`` when the header's WCS is not the requested one."""
    if "CRVAL1" not in header or "CRVAL2" not in header:
        raise CutoutGeometryError(f"{label}: no CRVAL1/CRVAL2 in the header; cannot check that the "
                                  "cutout is centred on the target")
    c1, c2 = float(header["CRVAL1"]), float(header["CRVAL2"])
    d1, d2, r1, r2 = (math.radians(v) for v in (c2, dec, c1, ra))
    sep = 2 * math.asin(min(1.0, math.sqrt(math.sin((d1 - d2) / 2) ** 2
                                           + math.cos(d1) * math.cos(d2) * math.sin((r1 - r2) / 2) ** 2)))
    sep_pix = math.degrees(sep) * 3600.0 / float(pixscale)
    if not sep_pix <= CENTRE_TOL_PIX:
        raise CutoutGeometryError(
            f"{label}: CRVAL=({c1!r}, {c2!r}) is {sep_pix:.3g} pixels from the requested "
            f"(ra, dec)=({ra!r}, {dec!r}) (tolerance {CENTRE_TOL_PIX} pixel): the service did not "
            "centre the cutout on the target")
    want = (int(width) + 1) / 2.0
    for k in ("CRPIX1", "CRPIX2"):
        if k in header and abs(float(header[k]) - want) > 1e-6:
            raise CutoutGeometryError(f"{label}: {k}={float(header[k])!r}, expected {want!r} = "
                                      f"(W + 1) / 2 for W={int(width)}")
    cd = _cd(header)
    p = float(pixscale) / 3600.0
    expect = np.array([[-p, 0.0], [0.0, p]])
    names = (("CD1_1", "CD1_2"), ("CD2_1", "CD2_2"))
    for i in range(2):
        for j in range(2):
            if abs(cd[i, j] - expect[i, j]) > CD_RTOL * p:
                scale = math.sqrt(abs(np.linalg.det(cd))) * 3600.0
                raise CutoutGeometryError(
                    f"{label}: {names[i][j]}={float(cd[i, j])!r}, expected {float(expect[i, j])!r} (a north-up grid "
                    f"of survey.pixscale_arcsec={float(pixscale):g} arcsec/pixel; the file's is "
                    f"{scale:.6g} arcsec/pixel): the arcs would be rendered on the wrong grid")


def sky_invvar(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(invvar (B, H, W) float32, sigma per band) from the clipped sky scatter of each band."""
    img = np.asarray(image, dtype=np.float64)
    sig = np.full(img.shape[0], np.nan)
    for b in range(img.shape[0]):
        v = img[b][np.isfinite(img[b]) & (img[b] != 0)]
        for _ in range(CLIP_ROUNDS):
            if v.size < 10:
                break
            med = np.median(v)
            s = 1.4826 * np.median(np.abs(v - med))
            if not s > 0:
                break
            v = v[np.abs(v - med) < CLIP_SIGMA * s]
        if v.size >= 10:
            s = 1.4826 * np.median(np.abs(v - np.median(v)))
            sig[b] = s if s > 0 else np.nan
    iv = np.where(np.isfinite(sig) & (sig > 0), 1.0 / np.where(sig > 0, sig, 1.0) ** 2, 0.0)
    return np.broadcast_to(iv[:, None, None], img.shape).astype(np.float32), sig
