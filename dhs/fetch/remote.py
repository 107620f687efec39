"""Section reads of survey files for stage 4c, from the cache or straight from the source.

``open_survey_file(access, brick, kind, band)`` (``access``: a ``SurveyAccess``) returns an open, header-checked
``dhs.survey.astropy_reader.BrickFile`` whose ``.section(y0, y1, x0, x1)`` (and ``dhs.survey.windows.cutout``)
decompress only the tiles a window touches and, through ``dhs.fetch.rangefile.RangeFile``, transfer
only the bytes of those tiles (plus headers and the tile-descriptor table, once per open file).

Where the file comes from:
- ``cache.mode=brick``: ``<cache_root>/<brick>/<file>`` (local or ``s3://``), filled by stage 4b;
- ``cache.mode=none``: ``<survey.base_url>/<AAA>/<brick>/<file>``: a local path, ``file://``,
  ``s3://`` (ranged GETs) or ``http(s)://`` (HTTP Range requests with a small block cache).

Local files (a local cache or survey base, ``file://``) open through fitsio by path
(``dhs.survey.fitsio_reader``: same pixels and checks as astropy, about 10x cheaper to open); set
``DHS_FITSIO=0`` to read them with astropy through a ``RangeFile`` like remote ones.

Each thread keeps its own LRU of ``cache.lru_files`` open files (astropy and fitsio file objects
are not thread-safe), so a worker that cuts many stamps from one brick opens each file once.
``io_counters()`` gives the bytes and requests moved so far in this process (for files read with
fitsio, an estimate: headers, tile table and the compressed tiles each read touches).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dhs.fetch import rangefile
from dhs.fetch.download import FetchSettings
from dhs.fetch.retry import Missing, RetryPolicy
from dhs.io import storage
from dhs.survey.files import coadd_filename, coadd_url

if TYPE_CHECKING:
    import numpy as np

_LOCAL = threading.local()


class SurveyFileMissing(Missing):
    """The survey file is not where the config says (not cached, or absent at the source)."""


@dataclass(frozen=True)
class SurveyAccess:
    """Where and how stage 4c reads survey files.

    ``cache_mode`` 'brick': from ``cache_root`` (filled by stage 4b); 'none': from ``base_url``
    (the survey's ``coadd/`` root). ``fetch``: retries, timeout (s) and connection pool of remote
    reads; ``range_block_bytes``: block size of ranged reads; ``lru_files``: open files kept
    per thread.
    """

    cache_mode: str
    cache_root: str
    base_url: str
    fetch: FetchSettings = field(default_factory=lambda: FetchSettings(RetryPolicy()))
    range_block_bytes: int = 32768
    lru_files: int = 16


def survey_file_uri(access: SurveyAccess, brick: str, kind: str, band: str | None = None) -> str:
    """Where stage 4c reads ``kind``/``band`` of ``brick`` under the access's cache mode."""
    if access.cache_mode == "brick":
        return storage.join(access.cache_root, brick, coadd_filename(brick, kind, band))
    return coadd_url(access.base_url, brick, kind, band)


def _lru() -> OrderedDict:
    lru = getattr(_LOCAL, "lru", None)
    if lru is None:
        lru = _LOCAL.lru = OrderedDict()
    return lru


def _count_io(nbytes: int, requests: int) -> None:
    rangefile._count(bytes=nbytes, requests=requests)


def _missing_hint(access: SurveyAccess) -> str:
    if access.cache_mode == "brick":
        return ("it is not in the coadd cache: run `dhs stage=4b` first, or read from the survey "
                "with cache.mode=none")
    return "the survey has no such file (the brick may belong on the blacklist)"


def _open_local_fitsio(uri: str, brick: str, kind: str) -> Any:
    """The file opened with fitsio when ``uri`` is local and fitsio is usable, else None."""
    import os

    from dhs.survey import fitsio_reader

    if storage.is_http(uri) or storage.is_s3(storage.normalize(uri)):
        return None
    path = fitsio_reader.usable_path(storage.normalize(uri))
    if path is None or not os.path.isfile(path) or not fitsio_reader.available():
        return None
    bf = fitsio_reader.open_fitsio(path, brick=brick, kind=kind, label=uri, on_io=_count_io)
    if bf is not None:
        rangefile._count(opens=1)
    return bf


def _open(access: SurveyAccess, uri: str, brick: str, kind: str) -> Any:
    from dhs.survey.brickfile import open_brick_file

    fast = _open_local_fitsio(uri, brick, kind)
    if fast is not None:
        return fast
    f = access.fetch
    try:
        rf = rangefile.open_range_file(uri, policy=f.policy, timeout_s=f.timeout_s,
                                       block_size=access.range_block_bytes, pool=f.pool)
    except (Missing, FileNotFoundError) as exc:
        raise SurveyFileMissing(f"{uri}: {_missing_hint(access)}") from exc
    try:
        bf = open_brick_file(rf, brick=brick, kind=kind, label=uri)
    except Exception:
        rf.close()
        raise
    bf._range_file = rf
    return bf


def _close(bf: Any) -> None:
    bf.close()
    rf = getattr(bf, "_range_file", None)
    if rf is not None:
        rf.close()


def open_survey_file(access: SurveyAccess, brick: str, kind: str, band: str | None = None) -> Any:
    """An open ``BrickFile`` for ``kind`` ('image', 'invvar', 'maskbits', 'psfsize', ...) and
    ``band`` of ``brick``, from this thread's LRU of open files. Do not close it yourself.

    Raises ``SurveyFileMissing`` (a ``FileNotFoundError``) when the file is absent and
    ``dhs.survey.fits_checks.BrickFileError`` when it is not the file it should be.
    """
    uri = survey_file_uri(access, brick, kind, band)
    lru = _lru()
    bf = lru.get(uri)
    if bf is not None:
        lru.move_to_end(uri)
        return bf
    bf = _open(access, uri, brick, kind)
    lru[uri] = bf
    limit = max(int(access.lru_files), 1)
    while len(lru) > limit:
        _, old = lru.popitem(last=False)
        _close(old)
    return bf


def read_section(access: SurveyAccess, brick: str, kind: str, band: str | None, y0: int, y1: int,
                 x0: int, x1: int, ext: str | int | None = None) -> np.ndarray:
    """Pixels [y0:y1, x0:x1] (0-based, inside the image) of one survey file, read by section."""
    return open_survey_file(access, brick, kind, band).section(y0, y1, x0, x1, ext=ext)


def close_all() -> None:
    """Close this thread's open files."""
    lru = getattr(_LOCAL, "lru", None)
    while lru:
        _, bf = lru.popitem(last=False)
        _close(bf)


def io_counters() -> dict[str, int]:
    """Process-wide bytes transferred, ranged requests and files opened by section reads."""
    return rangefile.counters()
