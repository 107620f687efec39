"""The cutout-service source (``survey.source=cutout_service``): one FITS cutout per target.

For campaigns too sparse to justify whole bricks, stage 4b asks the Legacy Surveys viewer for one
cutout per unique target (ra, dec, stamp size, bandset) and stage 4c cuts its stamps from them:

    {survey.cutout_url}?ra=<deg>&dec=<deg>&size=<W>&layer=<survey.cutout_layer>
        &pixscale=<survey.pixscale_arcsec>&bands=<bandset>&invvar&maskbits

The answer is HDU0 float32 (n_bands, W, W) in nanomaggies in ``bands`` order (2-D for one band;
header BANDS, TAN WCS with CRPIX = (W + 1) / 2), HDU1 the inverse variance (same shape) and HDU2
the maskbits (W, W) integers. Geometry: the service centres (ra, dec) on CRPIX, i.e. on 0-based
pixel (W - 1) / 2, a pixel centre only for odd W. So a stamp of ``size`` pixels is fetched with
W = ``size | 1`` (the next odd number) and cropped to ``[:size, :size]``: the target lands at
``[size // 2, size // 2]``, the stamp convention of ``dhs.survey.windows.cutout``.

Cache: ``{cache_root}/cutouts/<key>.fits`` with ``key`` a stable hash of (ra, dec, size, bands,
layer, pixscale); ``_index.json`` records every committed cutout (target, bytes, sha256) and
``_missing.csv`` the targets the service answered 404. Files are fetched by
``dhs.fetch.download.fetch_file`` (retries with backoff and jitter, temporary name, check, atomic
rename) with ``check_cutout`` as the check.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dhs.io import storage
from dhs.fetch.integrity import IntegrityError, WrongFileError, check_structure

CUTOUT_DIR = "cutouts"
INDEX = "_index.json"
MISSING = "_missing.csv"
MISSING_FIELDS = ("key", "ra", "dec", "size", "bands", "status", "time")


@dataclass(frozen=True)
class Target:
    """One cutout: centre (ra, dec) in deg, stamp ``size`` in pixels, ``bands`` e.g. 'grz'."""

    ra: float
    dec: float
    size: int
    bands: str


def target_key(t: Target, layer: str, pixscale: float) -> str:
    """Stable cache key of a cutout: blake2b of its defining values (20 hex digits)."""
    text = f"{float(t.ra)!r}|{float(t.dec)!r}|{int(t.size)}|{t.bands}|{layer}|{float(pixscale)!r}"
    return hashlib.blake2b(text.encode("utf-8"), digest_size=10).hexdigest()


def fetch_size(size: int) -> int:
    """Width W requested for a stamp of ``size`` pixels: the next odd number (see the module doc)."""
    return int(size) | 1


def cutout_url(base: str, t: Target, layer: str, pixscale: float) -> str:
    """The viewer URL of target ``t`` (ra/dec written exactly, so the service sees our floats)."""
    return (f"{base}?ra={float(t.ra)!r}&dec={float(t.dec)!r}&size={fetch_size(t.size)}"
            f"&layer={layer}&pixscale={float(pixscale):g}&bands={t.bands}&invvar&maskbits")


def cutout_dir(cache_root: str) -> str:
    return storage.join(cache_root, CUTOUT_DIR)


def cutout_uri(cache_root: str, key: str) -> str:
    return storage.join(cutout_dir(cache_root), f"{key}.fits")


# ----------------------------------------------------------------------------- checking, reading
def _structure(data: bytes, expected_size: int | None, label: str) -> None:
    """Raise ``IntegrityError`` for a body that is not a complete FITS file."""
    check_structure(io.BytesIO(data), len(data), expected_size, label, announced_by="the service")


def parse_cutout(data: bytes, size: int, bands: str, label: str, pixscale: float | None = None,
                 **checks: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image, invvar, maskbits) of ``load_cutout`` (same arguments)."""
    return load_cutout(data, size, bands, label, pixscale, **checks)[:3]


def load_cutout(data: bytes, size: int, bands: str, label: str, pixscale: float | None = None, *,
                ra: float | None = None, dec: float | None = None, sky_invvar: bool = False
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """(image (B, S, S) float32 nanomaggies, invvar (B, S, S) float32, maskbits (S, S) int32,
    invvar source) of a service answer for a stamp of ``size`` = S pixels and ``bands``, cropped
    as in the module doc. Raises ``WrongFileError`` naming ``label`` for a file of the wrong
    layout; with ``pixscale`` (arcsec/pixel), ``dhs.survey.wcs.PixelScaleError`` when the WCS has
    another pixel scale; with ``ra`` and ``dec`` (deg), ``CutoutGeometryError`` when CRVAL, CRPIX
    or the CD matrix are not those of the request (``dhs.fetch.cutout_checks``). An image-only
    answer raises ``ImageOnlyCutoutError`` unless ``sky_invvar`` (then the invvar is the sky's)."""
    from astropy.io import fits

    from dhs.fetch.cutout_checks import ImageOnlyCutoutError, check_geometry
    from dhs.fetch.cutout_checks import sky_invvar as sky

    w, nb = fetch_size(size), len(bands)
    cube = (nb, w, w) if nb > 1 else (w, w)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with fits.open(io.BytesIO(data), memmap=False) as hdul:
            n_hdu = len(hdul)
            if n_hdu < 3 and not sky_invvar:
                raise ImageOnlyCutoutError(
                    f"{label}: {n_hdu} HDU(s), no inverse variance or maskbits: a cutout fetched "
                    "with &invvar&maskbits has 3 (image, invvar, maskbits). Use a layer with "
                    "inverse variances, or set survey.cutout_sky_invvar=true to estimate the "
                    "inverse variance from the sky (recorded per row as invvar_source=sky_estimate)")
            got = str(hdul[0].header.get("BANDS", "")).strip()
            if got != bands:
                raise WrongFileError(f"{label}: header BANDS={got!r}, expected {bands!r} "
                                     "(the bands= of the request)")
            arrays = [hdul[k].data for k in range(min(n_hdu, 3))]
            header = hdul[0].header
    if ra is not None and dec is not None:
        check_geometry(header, float(ra), float(dec), w, float(pixscale or 0.262), label)
    if pixscale is not None and "CTYPE1" in header:
        from astropy.wcs import WCS

        from dhs.survey.wcs import check_pixel_scale

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wcs = WCS(header, naxis=2)
        check_pixel_scale(wcs, pixscale, label)
    expect = (("image", cube), ("invvar", cube), ("maskbits", (w, w)))[: len(arrays)]
    for k, (what, want) in enumerate(expect):
        shape = None if arrays[k] is None else tuple(arrays[k].shape)
        if shape != want:
            raise WrongFileError(f"{label}: HDU {k} ({what}) has shape {shape}, expected {want} "
                                 f"(size={w}, bands={bands!r})")
    image = np.asarray(arrays[0], np.float32).reshape(nb, w, w)[:, :size, :size]
    if len(arrays) < 3:
        return image, sky(image)[0], np.zeros((size, size), np.int32), "sky_estimate"
    if arrays[2].dtype.kind not in "iu":
        raise WrongFileError(f"{label}: HDU 2 (maskbits) holds {arrays[2].dtype}, expected integers")
    invvar = np.asarray(arrays[1], np.float32).reshape(nb, w, w)[:, :size, :size]
    return image, invvar, np.asarray(arrays[2], np.int32)[:size, :size], "cutout"


def check_cutout_bytes(data: bytes, t: Target, expected_size: int | None, label: str,
                       pixscale: float | None = None, sky_invvar: bool = False) -> None:
    """Raise ``IntegrityError`` (incomplete: retried) or ``WrongFileError`` (wrong layout; with
    ``pixscale``, also a WCS that is not the request's)."""
    _structure(data, expected_size, label)
    geo = {"ra": t.ra, "dec": t.dec} if pixscale is not None else {}
    load_cutout(data, t.size, t.bands, label, pixscale, sky_invvar=sky_invvar, **geo)


def read_cutout(uri: str, size: int, bands: str, pixscale: float | None = None, **checks: Any
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """Arrays and invvar source of a cached cutout (``load_cutout``; ``checks``: ra, dec,
    sky_invvar); ``FileNotFoundError`` when absent."""
    return load_cutout(storage.read_bytes(uri), size, bands, uri, pixscale, **checks)


# ----------------------------------------------------------------------------- cache records
def read_index(cache_root: str) -> dict[str, dict]:
    """key -> record of every committed cutout ({} when none or unreadable)."""
    try:
        return dict(json.loads(storage.read_text(storage.join(cutout_dir(cache_root), INDEX))))
    except (FileNotFoundError, ValueError, OSError):
        return {}


def write_index(cache_root: str, index: dict[str, dict]) -> None:
    storage.write_text_atomic(storage.join(cutout_dir(cache_root), INDEX),
                              json.dumps(index, indent=0, sort_keys=True))


def read_missing(cache_root: str) -> dict[str, dict]:
    """key -> row of ``_missing.csv`` (targets the service answered 404)."""
    try:
        text = storage.read_text(storage.join(cutout_dir(cache_root), MISSING))
    except (FileNotFoundError, OSError):
        return {}
    return {r["key"]: r for r in csv.DictReader(io.StringIO(text)) if r.get("key")}


def write_missing(cache_root: str, rows: dict[str, dict]) -> None:
    buf = io.StringIO()
    wr = csv.DictWriter(buf, fieldnames=MISSING_FIELDS, extrasaction="ignore", lineterminator="\n")
    wr.writeheader()
    for key in sorted(rows):
        wr.writerow(rows[key])
    storage.write_text_atomic(storage.join(cutout_dir(cache_root), MISSING), buf.getvalue())


def targets_of(ra: Any, dec: Any, size: Any, bands: Any) -> list[Target]:
    """Distinct targets of manifest columns (sorted by ra, dec, size, bands)."""
    seen = {Target(float(r), float(d), int(s), str(b)) for r, d, s, b in zip(ra, dec, size, bands)}
    return sorted(seen, key=lambda t: (t.ra, t.dec, t.size, t.bands))


# ----------------------------------------------------------------------------- stage 4b: the fill
@dataclass(frozen=True)
class CutoutSettings:
    """Where cutouts come from (``url``, ``layer``, ``pixscale`` in arcsec) and go (``cache_root``)."""

    url: str
    layer: str
    pixscale: float
    cache_root: str
    threads: int
    fetch: Any  # dhs.fetch.download.FetchSettings
    redo: bool = False
    sky_invvar: bool = False


@dataclass
class CutoutReport:
    """Counts of one cutout fill (bytes in bytes, times in seconds)."""

    targets_requested: int = 0
    skipped_complete: int = 0
    skipped_missing: int = 0
    fetched: int = 0
    adopted: int = 0
    missing: int = 0
    failed: int = 0
    retries: int = 0
    bytes_committed: int = 0
    bytes_transferred: int = 0
    wall_s: float = 0.0
    failure_reasons: dict = field(default_factory=dict)
    failures: list = field(default_factory=list)

    def as_dict(self) -> dict:
        d = dict(self.__dict__)
        d["failures"] = [list(f) for f in self.failures[:200]]
        d["mb_per_s"] = round(self.bytes_transferred / 1e6 / self.wall_s, 3) if self.wall_s > 0 else 0.0
        return d


def _fetch_one(s: CutoutSettings, t: Target, key: str, adopt: bool, on_bytes: Any) -> tuple[str, dict, int]:
    """Adopt (check) a file an interrupted run committed, or fetch it: (how, record, retries)."""
    from dhs.fetch.download import fetch_file

    uri = cutout_uri(s.cache_root, key)
    rec = {"ra": t.ra, "dec": t.dec, "size": t.size, "width": fetch_size(t.size), "bands": t.bands,
           "layer": s.layer, "pixscale": s.pixscale}
    if adopt:
        try:
            data = storage.read_bytes(uri)
            check_cutout_bytes(data, t, None, uri, s.pixscale, s.sky_invvar)
            return "adopted", {**rec, "bytes": len(data),
                               "sha256": hashlib.sha256(data).hexdigest()}, 0
        except (IntegrityError, WrongFileError, FileNotFoundError):
            pass  # fetch it again

    def check(path: str, announced: int | None, label: str) -> None:
        with open(path, "rb") as fh:
            check_cutout_bytes(fh.read(), t, announced, label, s.pixscale, s.sky_invvar)

    res = fetch_file(cutout_url(s.url, t, s.layer, s.pixscale), uri, brick=key, kind="cutout",
                     settings=s.fetch, on_bytes=on_bytes, check=check)
    return "fetched", {**rec, "bytes": res.size, "sha256": res.sha256}, res.attempts - 1


def fill_cutouts(s: CutoutSettings, targets: list[Target], *, console: Any = None) -> CutoutReport:
    """Fetch the cutout of every target not yet cached; 404s go to ``_missing.csv``.

    A rerun skips indexed files and targets already known missing (``redo`` fetches all again);
    files committed by a killed run are checked and adopted. Nothing that fails stops the run.
    """
    import threading
    import time
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    from dhs.fetch.blacklist import utc_now
    from dhs.console import TransferProgress
    from dhs.fetch.coadd_cache import _reason
    from dhs.fetch.download import clean_stale_temps
    from dhs.fetch.retry import Missing, describe

    t0 = time.time()
    rep = CutoutReport(targets_requested=len(targets))
    folder = cutout_dir(s.cache_root)
    index = read_index(s.cache_root)  # kept whole: other campaigns share the folder
    missing = read_missing(s.cache_root)
    present = set() if s.redo or not storage.exists(folder) else set(storage.listdir(folder))
    clean_stale_temps(folder, t0)
    jobs: list[tuple[Target, str, bool]] = []
    for t in targets:
        key = target_key(t, s.layer, s.pixscale)
        name = f"{key}.fits"
        if not s.redo and key in index and name in present:
            rep.skipped_complete += 1
        elif not s.redo and key in missing:
            rep.skipped_missing += 1
        else:
            jobs.append((t, key, not s.redo and name in present))
    moved, lock, changed = [0], threading.Lock(), [False]

    def on_bytes(n: int) -> None:
        with lock:
            moved[0] += n

    def book(job: tuple[Target, str, bool], fut: Any) -> None:
        t, key, _ = job
        try:
            how, rec, retries = fut.result()
        except Missing:
            missing[key] = {"key": key, "ra": repr(t.ra), "dec": repr(t.dec), "size": t.size,
                            "bands": t.bands, "status": 404, "time": utc_now()}
            rep.missing += 1
            changed[0] = True
            return
        except Exception as exc:  # noqa: BLE001 - counted with its reason, the run goes on
            rep.failed += 1
            reason = _reason(exc)
            rep.failure_reasons[reason] = rep.failure_reasons.get(reason, 0) + 1
            rep.failures.append((key, f"ra={t.ra!r} dec={t.dec!r}", describe(exc)))
            return
        index[key] = rec
        missing.pop(key, None)
        changed[0] = True
        rep.retries += retries
        if how == "adopted":
            rep.adopted += 1
        else:
            rep.fetched += 1
            rep.bytes_committed += rec["bytes"]

    with TransferProgress(console, len(targets), "4b cutouts") as (bar, task), \
            ThreadPoolExecutor(max_workers=max(s.threads, 1), thread_name_prefix="dhs-cutout") as pool:
        bar.advance(task, len(targets) - len(jobs))
        todo, futures = iter(jobs), {}
        try:
            while True:
                while len(futures) < 4 * max(s.threads, 1) and (job := next(todo, None)) is not None:
                    futures[pool.submit(_fetch_one, s, *job, on_bytes)] = job
                if not futures:
                    break
                done, _ = wait(list(futures), timeout=0.5, return_when=FIRST_COMPLETED)
                for fut in done:
                    book(futures.pop(fut), fut)
                    bar.advance(task, 1)
                el = max(time.time() - t0, 1e-9)
                bar.update(task, files=rep.fetched, mb=moved[0] / 1e6, mbps=moved[0] / 1e6 / el)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        finally:  # what finished is recorded, even by an interrupted run
            if changed[0]:
                write_index(s.cache_root, index)
                write_missing(s.cache_root, missing)
    rep.bytes_transferred = moved[0]
    rep.wall_s = time.time() - t0
    return rep
