"""A seekable read-only file object over ranged reads (HTTP Range, S3 ranged GET, local pread).

astropy's ``fits.open(fileobj, lazy_load_hdus=True)`` reads the headers, then for
``CompImageHDU.section`` the tile-descriptor table and only the compressed tiles a window touches
(measured: a 64x64 window of a 3600x3600 RICE image with 100x100 tiles reads about 50 kB of an
11 MB file). ``RangeFile`` turns each of those reads into one ranged request, rounded out to
``block_size`` bytes and kept in a small block cache so that header reads and neighbouring tiles
cost one request. Every byte that crosses the wire is counted, per file and process-wide.
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from typing import Any

from dhs.fetch.retry import RetryPolicy, TransientError, call_with_retries

_COUNT_LOCK = threading.Lock()
_COUNTERS = {"bytes": 0, "requests": 0, "opens": 0}


def counters() -> dict[str, int]:
    """Process-wide totals of ranged reads: bytes transferred, requests, files opened."""
    with _COUNT_LOCK:
        return dict(_COUNTERS)


def _count(**kw: int) -> None:
    with _COUNT_LOCK:
        for k, v in kw.items():
            _COUNTERS[k] += v


# ----------------------------------------------------------------------------- range sources
class HttpRange:
    """Ranged GETs on one URL through the shared session; ``size`` from a HEAD request."""

    def __init__(self, url: str, *, timeout_s: float, policy: RetryPolicy, pool: int = 8):
        from dhs.fetch import http

        self.url, self.timeout, self.policy = url, timeout_s, policy
        self._session = http.session(pool)
        self.size = call_with_retries(lambda _a: self._head(), policy)

    def _head(self) -> int:
        from dhs.fetch import http

        resp = self._session.head(self.url, timeout=self.timeout, allow_redirects=True)
        http.check_status(resp, self.url)
        n = http.content_length(resp)
        if n is None:
            raise TransientError(f"{self.url}: HEAD answer has no Content-Length")
        return n

    def read_at(self, offset: int, n: int) -> bytes:
        return call_with_retries(lambda _a: self._get(offset, n), self.policy)

    def _get(self, offset: int, n: int) -> bytes:
        from dhs.fetch import http

        headers = {"Range": f"bytes={offset}-{offset + n - 1}"}
        resp = self._session.get(self.url, headers=headers, timeout=self.timeout)
        http.check_status(resp, self.url)
        body = resp.content
        if resp.status_code == 200:  # server ignored Range: it sent the whole file
            body = body[offset:offset + n]
        if len(body) != n:
            raise TransientError(f"{self.url}: asked for bytes {offset}-{offset + n - 1}, "
                                 f"got {len(body)} bytes")
        return body

    def close(self) -> None:
        pass


class ArrowRange:
    """``read_at`` on a pyarrow RandomAccessFile (local path or ``s3://`` through dhs.io.storage)."""

    def __init__(self, uri: str, *, policy: RetryPolicy):
        from dhs.io import storage
        from dhs.fetch.retry import Missing

        self.uri, self.policy = uri, policy
        try:
            self._f = call_with_retries(lambda _a: storage.open_input(uri), policy)
        except FileNotFoundError as exc:
            raise Missing(f"{uri}: no such file") from exc
        self.size = int(self._f.size())

    def read_at(self, offset: int, n: int) -> bytes:
        def once(_a: int) -> bytes:
            data = self._f.read_at(n, offset)
            if len(data) != n:
                raise TransientError(f"{self.uri}: short read at {offset} ({len(data)} of {n})")
            return bytes(data)

        return call_with_retries(once, self.policy)

    def close(self) -> None:
        self._f.close()


# ----------------------------------------------------------------------------- the file object
class RangeFile(io.RawIOBase):
    """Seekable binary reader over ``source.read_at(offset, n)`` with a block LRU.

    ``block_size=0`` reads exactly what is asked (local files); otherwise reads are rounded out to
    whole blocks and up to ``max_blocks`` blocks are kept. ``bytes_read`` / ``requests`` count
    what went over the wire for this file.
    """

    def __init__(self, source: Any, name: str, *, block_size: int = 32768, max_blocks: int = 128):
        super().__init__()
        self.source, self.name = source, name
        self.size = int(source.size)
        self.block_size, self.max_blocks = int(block_size), int(max_blocks)
        self._pos = 0
        self._blocks: OrderedDict[int, bytes] = OrderedDict()
        self.bytes_read = 0
        self.requests = 0
        _count(opens=1)

    mode = "rb"

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self.size}[whence]
        self._pos = max(base + int(offset), 0)
        return self._pos

    def _fetch(self, offset: int, n: int) -> bytes:
        data = self.source.read_at(offset, n)
        self.bytes_read += len(data)
        self.requests += 1
        _count(bytes=len(data), requests=1)
        return data

    def _read_span(self, offset: int, n: int) -> bytes:
        if self.block_size <= 0:
            return self._fetch(offset, n)
        bs = self.block_size
        first, last = offset // bs, (offset + n - 1) // bs
        run_start = None
        for b in range(first, last + 2):  # one past the end closes the last run
            missing = b <= last and b not in self._blocks
            if missing and run_start is None:
                run_start = b
            elif not missing and run_start is not None:
                lo = run_start * bs
                hi = min(b * bs, self.size)
                data = self._fetch(lo, hi - lo)
                for k in range(run_start, b):
                    self._blocks[k] = data[(k - run_start) * bs:(k - run_start + 1) * bs]
                run_start = None
        parts = []
        for b in range(first, last + 1):
            self._blocks.move_to_end(b)
            parts.append(self._blocks[b])
        joined = b"".join(parts)
        while len(self._blocks) > self.max_blocks:  # a whole-file read is not kept
            self._blocks.popitem(last=False)
        start = offset - first * bs
        return joined[start:start + n]

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = self.size - self._pos
        n = min(n, self.size - self._pos)
        if n <= 0:
            return b""
        data = self._read_span(self._pos, n)
        self._pos += len(data)
        return data

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        b[:len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._blocks.clear()
            self.source.close()
        super().close()


def open_range_file(uri: str, *, policy: RetryPolicy, timeout_s: float = 60.0,
                    block_size: int = 32768, pool: int = 8) -> RangeFile:
    """A RangeFile on an http(s) URL, ``s3://`` URI, ``file://`` URI or local path.

    Local files read exactly what is asked (no blocks); remote ones use ``block_size``.
    Raises ``dhs.fetch.retry.Missing`` when the file does not exist.
    """
    from dhs.io import storage

    if storage.is_http(uri):
        src: Any = HttpRange(uri, timeout_s=timeout_s, policy=policy, pool=pool)
        return RangeFile(src, uri, block_size=block_size)
    norm = storage.normalize(uri)
    src = ArrowRange(norm, policy=policy)
    return RangeFile(src, uri, block_size=block_size if storage.is_s3(norm) else 0)

