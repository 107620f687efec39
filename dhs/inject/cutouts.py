"""Cut the survey stamps of one brick's tasks: image, invvar and maskbits per band, PSF FWHM.

Pixel convention (as ``dhs.survey.windows.cutout``): the target's pixel is the 0-based pixel
nearest to (ra, dec) through the brick WCS (``floor(x + 0.5)``); it lands at array index
``[size // 2, size // 2]``. All bands of a brick share its WCS (DR10 coadds do), so positions are
computed once per brick from the r (or first) image. A stamp that does not fit inside the brick
is an ``edge`` row. Files come from the coadd cache or straight from the source
(``dhs.fetch.remote.open_survey_file``); a brick whose files cover many of its tasks is read whole
once, otherwise each stamp is read by section (only the compressed tiles it touches). The pixel
scale of a brick's WCS must be ``InjectSettings.pixscale_arcsec`` (the survey's one pixel scale,
also used to render the arcs): a mismatch raises ``dhs.survey.wcs.PixelScaleError``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dhs.inject.failures import Failure, classify
from dhs.inject.settings import InjectSettings
from dhs.survey.wcs import check_pixel_scale, nearest_pixel
from dhs.survey.windows import window_bounds

#: Read a whole file instead of sections when the stamps would touch more than this fraction
#: of its pixels (each section also decompresses the tiles around it). fitsio sections are
#: cheaper than astropy's, so the break-even point moves up with it.
WHOLE_READ_FRACTION = {"astropy": 0.5, "fitsio": 1.0}
TILE_MARGIN_PIX = 100


@dataclass
class BrickStamps:
    """Stamps of ``n`` tasks of one brick. Arrays are float32/int32, NaN/0 where not cut."""

    image: np.ndarray  # (n, B, S, S) nanomaggies
    invvar: np.ndarray  # (n, B, S, S) 1/nanomaggy^2
    maskbits: np.ndarray  # (n, S, S) int32
    psf_map: np.ndarray  # (n, B) psfsize map value at the stamp centre, arcsec (NaN: none)
    error: np.ndarray  # (n,) object: '' or an error code
    reason: np.ndarray  # (n,) object: None or the row's dhs.inject.failures.Failure
    notes: list[str] = field(default_factory=list)
    invvar_source: np.ndarray | None = None  # (n,) object: coadd, cutout or sky_estimate

    def fail(self, rows: Any, failure: Failure) -> None:
        """Mark ``rows`` (an index or mask) failed with ``failure``."""
        self.error[rows] = failure.code
        for k in np.flatnonzero(_mask(rows, len(self.error))):
            self.reason[k] = failure


def _empty(n: int, nb: int, size: int) -> BrickStamps:
    return BrickStamps(
        image=np.zeros((n, nb, size, size), np.float32),
        invvar=np.zeros((n, nb, size, size), np.float32),
        maskbits=np.zeros((n, size, size), np.int32),
        psf_map=np.full((n, nb), np.nan),
        error=np.full(n, "", dtype=object),
        invvar_source=np.full(n, "coadd", dtype=object),
        reason=np.full(n, None, dtype=object),
    )


def _mask(rows: Any, n: int) -> np.ndarray:
    m = np.zeros(n, bool)
    m[rows] = True
    return m


class _Reader:
    """Cuts windows from one open brick file, whole-read or by section."""

    def __init__(self, bf: Any, n_windows: int, size: int):
        self.bf = bf
        h, w = bf.shape
        touched = n_windows * (size + TILE_MARGIN_PIX) ** 2
        fraction = WHOLE_READ_FRACTION.get(getattr(bf, "engine", "astropy"), 0.5)
        self.whole = bf.read() if touched > fraction * h * w else None

    def window(self, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        if self.whole is not None:
            return self.whole[y0:y1, x0:x1]
        return self.bf.section(y0, y1, x0, x1)


def cut_brick(s: InjectSettings, brick: str, ra: np.ndarray, dec: np.ndarray, bands: str,
              size: int) -> BrickStamps:
    """Cut the stamps of tasks at (ra, dec) (deg) in ``brick`` for every band of ``bands``.

    Row errors (dhs.inject.failures): 'transient_io', 'missing_file', 'not_cached',
    'corrupt_file', 'access_error' (all rows of the brick, reason stored), 'edge', 'nan_pixels'.
    The psfsize maps are optional: a missing map leaves NaN (callers fall back).
    """
    from dhs.fetch.remote import open_survey_file, survey_file_uri

    n, nb = len(ra), len(bands)
    out = _empty(n, nb, size)
    if n == 0:
        return out
    access = s.survey
    ref_band = "r" if "r" in bands else bands[0]
    uri = survey_file_uri(access, brick, "image", ref_band)
    try:  # a PixelScaleError is a configuration error: classify re-raises it
        ref = open_survey_file(access, brick, "image", ref_band)
        check_pixel_scale(ref.wcs, s.pixscale_arcsec, uri)
        ix, iy = nearest_pixel(ref.wcs, np.asarray(ra, float), np.asarray(dec, float))
        ix, iy = np.atleast_1d(ix).astype(int), np.atleast_1d(iy).astype(int)
        h, w = ref.shape
    except Exception as exc:  # noqa: BLE001 - classified, unexpected errors re-raised
        out.fail(slice(None), classify(exc, uri, cache_mode=access.cache_mode))
        out.notes.append(f"{brick}: {exc}")
        return out
    y0, y1, x0, x1 = (np.asarray(v) for v in zip(*(window_bounds(a, b, size) for a, b in zip(ix, iy))))
    inside = (y0 >= 0) & (x0 >= 0) & (y1 <= h) & (x1 <= w)
    out.error[~inside] = "edge"
    todo = np.flatnonzero(inside)
    try:
        readers: dict[tuple[str, str | None], _Reader] = {}
        for b in bands:
            for kind in ("image", "invvar"):
                uri = survey_file_uri(access, brick, kind, b)
                readers[(kind, b)] = _Reader(open_survey_file(access, brick, kind, b), len(todo), size)
        uri = survey_file_uri(access, brick, "maskbits")
        readers[("maskbits", None)] = _Reader(open_survey_file(access, brick, "maskbits"), len(todo), size)
        for k in todo:
            win = (y0[k], y1[k], x0[k], x1[k])
            for j, b in enumerate(bands):
                uri = survey_file_uri(access, brick, "image", b)
                out.image[k, j] = readers[("image", b)].window(*win)
                uri = survey_file_uri(access, brick, "invvar", b)
                out.invvar[k, j] = readers[("invvar", b)].window(*win)
            uri = survey_file_uri(access, brick, "maskbits")
            out.maskbits[k] = readers[("maskbits", None)].window(*win)
    except Exception as exc:  # noqa: BLE001
        out.fail(out.error != "edge", classify(exc, uri, cache_mode=access.cache_mode))
        out.notes.append(f"{brick}: {exc}")
        return out
    finite = np.isfinite(out.image).all(axis=(1, 2, 3)) & np.isfinite(out.invvar).all(axis=(1, 2, 3))
    out.error[inside & ~finite] = "nan_pixels"
    _psf_at_pixels(access, brick, bands, ix, iy, inside, out)
    return out


def _psf_at_pixels(access: Any, brick: str, bands: str, ix: np.ndarray, iy: np.ndarray,
                   rows: np.ndarray, out: BrickStamps) -> None:
    """psfsize map values (arcsec) of ``brick`` at pixels (ix, iy) of the ``rows`` into psf_map."""
    from dhs.fetch.remote import open_survey_file

    for j, b in enumerate(bands):
        try:
            psf = open_survey_file(access, brick, "psfsize", b)
        except Exception as exc:  # noqa: BLE001 - the manifest value is the fallback
            out.notes.append(f"{brick}: psfsize-{b} unavailable ({type(exc).__name__})")
            continue
        h, w = psf.shape
        ok = rows & (iy >= 0) & (ix >= 0) & (iy < h) & (ix < w)
        try:
            reader = _Reader(psf, int(ok.sum()), 1)
            for k in np.flatnonzero(ok):
                out.psf_map[k, j] = float(reader.window(iy[k], iy[k] + 1, ix[k], ix[k] + 1)[0, 0])
        except Exception as exc:  # noqa: BLE001
            out.notes.append(f"{brick}: psfsize-{b} unreadable ({exc})")


def _cutout_psf(s: InjectSettings, brick: str, ra: np.ndarray, dec: np.ndarray, bands: str,
                out: BrickStamps) -> None:
    """Cutout mode, ``cutout_psf=map``: each target's FWHM from its brick's psfsize maps, read by
    section from ``survey.base_url`` (the manifest's psfsize where a map is unreadable)."""
    from dataclasses import replace

    from dhs.fetch.remote import open_survey_file

    access = replace(s.survey, cache_mode="none")
    ref_band = "r" if "r" in bands else bands[0]
    try:
        ref = open_survey_file(access, brick, "psfsize", ref_band)
        ix, iy = nearest_pixel(ref.wcs, np.asarray(ra, float), np.asarray(dec, float))
    except Exception as exc:  # noqa: BLE001 - the manifest value is the fallback
        out.notes.append(f"{brick}: psfsize maps unavailable under {access.base_url} "
                         f"({type(exc).__name__}); the manifest's psfsize is used")
        return
    ix, iy = np.atleast_1d(ix).astype(int), np.atleast_1d(iy).astype(int)
    _psf_at_pixels(access, brick, bands, ix, iy, out.error == "", out)


def _cutout_failure(exc: BaseException, uri: str) -> Failure:
    """Why a cutout could not be used (geometry and image-only refusals per row, else classified
    as any read failure)."""
    from dhs.fetch.cutout_checks import CutoutGeometryError, ImageOnlyCutoutError
    from dhs.survey.wcs import PixelScaleError

    text = " ".join(f"{type(exc).__name__}: {exc}".split())[:500]
    if isinstance(exc, (CutoutGeometryError, PixelScaleError)):
        return Failure("wrong_wcs", uri, None, text)
    if isinstance(exc, ImageOnlyCutoutError):
        return Failure("no_invvar", uri, None, text)
    return classify(exc, uri)


def cut_cutouts(s: InjectSettings, task_ids: Any, ra: np.ndarray, dec: np.ndarray, bands: str,
                size: int, brick: str | None = None) -> BrickStamps:
    """Stamps of tasks at (ra, dec) (deg) from the cutout cache of ``survey.source=cutout_service``
    (``dhs.fetch.cutout_service``; one file per target, read once for the tasks that share it).

    Row errors: 'missing_file' (no cached cutout: 404 at the service or not fetched by stage 4b),
    'corrupt_file', 'nan_pixels', 'wrong_wcs' (CRVAL, CRPIX or CD matrix not those of the request:
    ``dhs.fetch.cutout_checks``), 'no_invvar' (an image-only cutout without
    ``cutout_sky_invvar``). The service has no psfsize maps: with ``cutout_psf='map'`` and
    ``brick`` the FWHM comes from the brick's psfsize maps at ``survey.base_url``; else (or where
    they are unreadable) ``psf_map`` stays NaN and stage 4c uses the manifest's psfsize_<band>.
    ``invvar_source`` is 'cutout' or 'sky_estimate' per row. Reasons are stored as in ``cut_brick``.
    """
    from dhs.fetch import cutout_service as cs

    n = len(ra)
    out = _empty(n, len(bands), size)
    layer, pixscale = s.cutout_layer, s.pixscale_arcsec
    root = s.survey.cache_root
    done: dict[str, tuple | str] = {}
    for k in range(n):
        key = cs.target_key(cs.Target(float(ra[k]), float(dec[k]), int(size), bands), layer, pixscale)
        if key not in done:
            uri = cs.cutout_uri(root, key)
            try:
                done[key] = cs.read_cutout(uri, size, bands, pixscale, ra=float(ra[k]), dec=float(dec[k]),
                                           sky_invvar=s.cutout_sky_invvar)
            except Exception as exc:  # noqa: BLE001 - classified, unexpected errors re-raised
                failure = _cutout_failure(exc, uri)
                hint = " (404 at the service, or run stage 4b)" if failure.code == "missing_file" else ""
                done[key] = Failure(failure.code, failure.file, failure.status, failure.message + hint)
                detail = "" if failure.code == "missing_file" else f" {exc}"
                out.notes.append(f"task {task_ids[k]}: cutout {uri}: {type(exc).__name__}{hint}{detail}")
        got = done[key]
        if isinstance(got, Failure):
            out.fail(k, got)
            continue
        out.image[k], out.invvar[k], out.maskbits[k], out.invvar_source[k] = got
        if not (np.isfinite(got[0]).all() and np.isfinite(got[1]).all()):
            out.error[k] = "nan_pixels"
    if brick is not None and s.cutout_psf == "map" and (out.error == "").any():
        _cutout_psf(s, str(brick), ra, dec, bands, out)
    return out
