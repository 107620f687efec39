"""Fetch one survey file into the cache: download, verify, commit atomically, with retries.

Sources: ``http(s)://`` (streamed through the shared pooled session), ``s3://`` and local paths or
``file://`` (through ``dhs.io.storage``). Targets: a local folder or ``s3://``. Each attempt streams
the file to a hidden temporary name (``.dhs-tmp-<id>-<name>``; in the target folder when it is local,
in a local scratch folder when the target is S3), hashes it (sha256) while it arrives, checks it
(``dhs.fetch.integrity.check_fits``) and only then renames it into place (local) or uploads it in one
PUT/multipart upload (S3), so a reader never sees a partial or unchecked file.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import uuid
from dataclasses import dataclass
from typing import Any, Callable

from dhs.io import storage
from dhs.fetch.integrity import check_fits
from dhs.fetch.retry import Missing, RetryPolicy, TransientError, call_with_retries, describe

TMP_PREFIX = ".dhs-tmp-"
#: Prefixes of every temporary file a cache run leaves when killed.
TEMP_PREFIXES = (TMP_PREFIX, ".tmp-")
CHUNK = 1 << 20

ByteHook = Callable[[int], None]


@dataclass
class FetchResult:
    """One committed file: name, size (bytes), sha256, bytes moved (all attempts), attempts."""

    name: str
    size: int
    sha256: str
    transferred: int
    attempts: int
    retry_reasons: list[str]


@dataclass(frozen=True)
class FetchSettings:
    policy: RetryPolicy
    timeout_s: float = 60.0
    pool: int = 8
    verify_data: bool = False


def _download_http(url: str, dst: Any, hasher: Any, on_bytes: ByteHook, st: FetchSettings) -> tuple[int, int | None]:
    from dhs.fetch import http

    resp = http.session(st.pool).get(url, stream=True, timeout=st.timeout_s)
    http.check_status(resp, url)
    expected = http.content_length(resp)
    n = 0
    try:
        for chunk in resp.iter_content(CHUNK):
            dst.write(chunk)
            hasher.update(chunk)
            n += len(chunk)
            on_bytes(len(chunk))
    finally:
        resp.close()
    if expected is not None and n != expected:
        raise TransientError(f"{url}: body has {n} bytes, Content-Length said {expected} "
                             "(truncated transfer)")
    return n, expected


def _download_arrow(uri: str, dst: Any, hasher: Any, on_bytes: ByteHook) -> tuple[int, int | None]:
    from pyarrow import fs as pafs

    f, p = storage.filesystem(uri)
    info = f.get_file_info(p)
    if info.type == pafs.FileType.NotFound:
        raise Missing(f"{uri}: no such file")
    n = 0
    with f.open_input_stream(p) as src:
        while True:
            chunk = src.read(CHUNK)
            if not chunk:
                break
            dst.write(chunk)
            hasher.update(chunk)
            n += len(chunk)
            on_bytes(len(chunk))
    return n, int(info.size) if info.size is not None else None


def download(src: str, tmp_path: str, on_bytes: ByteHook, st: FetchSettings) -> tuple[int, int | None, str]:
    """Stream ``src`` into ``tmp_path``; returns (bytes, announced size, sha256 hex)."""
    hasher = hashlib.sha256()
    with open(tmp_path, "wb") as dst:
        if storage.is_http(src):
            n, expected = _download_http(src, dst, hasher, on_bytes, st)
        else:
            n, expected = _download_arrow(src, dst, hasher, on_bytes)
    return n, expected, hasher.hexdigest()


def _commit(tmp_path: str, target: str, policy: RetryPolicy) -> None:
    if not storage.is_s3(storage.normalize(target)):
        os.replace(tmp_path, storage.normalize(target))
        return

    def upload(_attempt: int) -> None:
        with open(tmp_path, "rb") as src, storage.open_output(target) as out:
            while True:
                chunk = src.read(CHUNK)
                if not chunk:
                    break
                out.write(chunk)

    call_with_retries(upload, policy)


def fetch_file(src: str, target: str, *, brick: str, kind: str, settings: FetchSettings,
               on_bytes: ByteHook | None = None,
               check: Callable[[str, int | None, str], None] | None = None) -> FetchResult:
    """Copy ``src`` to ``target`` after checking it; retried per ``settings.policy``.

    ``check(tmp_path, announced_size, label)`` replaces the coadd-file check (``check_fits``) for
    other kinds of FITS files (e.g. service cutouts); it raises like ``check_fits`` does.

    Raises ``Missing`` (404, not retried), ``PermanentError``/``WrongFileError`` (not retried) or
    the last transient error once the retries are spent.
    """
    name = storage.basename(target)
    local_target = not storage.is_s3(storage.normalize(target))
    if local_target:
        scratch = os.path.dirname(storage.normalize(target))
        os.makedirs(scratch, exist_ok=True)
        own_scratch = None
    else:
        own_scratch = tempfile.mkdtemp(prefix="dhs-fetch-")
        scratch = own_scratch
    hook = on_bytes or (lambda _n: None)
    moved = [0]
    reasons: list[str] = []

    def counted(n: int) -> None:
        moved[0] += n
        hook(n)

    def attempt(k: int) -> tuple[str, int, str]:
        tmp = os.path.join(scratch, f"{TMP_PREFIX}{uuid.uuid4().hex[:12]}-{name}")
        try:
            n, expected, digest = download(src, tmp, counted, settings)
            if check is None:
                check_fits(tmp, brick=brick, kind=kind, expected_size=expected,
                           verify_data=settings.verify_data, label=src)
            else:
                check(tmp, expected, src)
            return tmp, n, digest
        except BaseException:
            _silent_remove(tmp)
            raise

    try:
        tmp, n, digest = call_with_retries(
            attempt, settings.policy, on_retry=lambda _k, exc: reasons.append(describe(exc)))
        try:
            _commit(tmp, target, settings.policy)
        finally:
            _silent_remove(tmp)
    finally:
        if own_scratch:
            _silent_remove_dir(own_scratch)
    return FetchResult(name, n, digest, moved[0], len(reasons) + 1, reasons)


def exists_at_source(src: str, settings: FetchSettings) -> bool:
    """Whether ``src`` exists (HEAD for http(s)); transient errors are retried."""
    if storage.is_http(src):
        from dhs.fetch import http

        def head(_a: int) -> bool:
            resp = http.session(settings.pool).head(src, timeout=settings.timeout_s,
                                                    allow_redirects=True)
            try:
                http.check_status(resp, src)
            except Missing:
                return False
            resp.close()
            return True

        return call_with_retries(head, settings.policy)
    return call_with_retries(lambda _a: storage.exists(src), settings.policy)


def clean_stale_temps(folder: str, older_than: float) -> int:
    """Remove our hidden temporary files (downloads, and the atomic writes of records:
    ``storage.tmp_name``) in a local ``folder`` last modified before ``older_than`` (epoch
    seconds): leftovers of a killed run. Returns how many were removed."""
    folder = storage.normalize(folder)
    if storage.is_s3(folder) or not os.path.isdir(folder):
        return 0
    removed = 0
    for entry in os.scandir(folder):
        if entry.name.startswith(TEMP_PREFIXES) and entry.is_file() and entry.stat().st_mtime < older_than:
            _silent_remove(entry.path)
            removed += 1
    return removed


def _silent_remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def _silent_remove_dir(path: str) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
