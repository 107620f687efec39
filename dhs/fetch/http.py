"""HTTP(S) access for survey files: one pooled ``requests.Session`` per process, status mapping.

``session(pool)`` returns a process-wide session whose connection pool holds ``pool`` connections
per host, so the fetch threads reuse TCP/TLS connections. ``check_status`` turns an HTTP answer into
the retry vocabulary of ``dhs.fetch.retry``: 404/410 -> ``Missing``, 5xx/429/408 -> ``TransientError``,
other 4xx -> ``PermanentError``.
"""

from __future__ import annotations

import threading
from typing import Any

from dhs.fetch.retry import Missing, PermanentError, TransientError

_LOCK = threading.Lock()
_SESSION: Any = None
_POOL = 0


def session(pool: int = 8) -> Any:
    """The process-wide session, (re)built with a pool of at least ``pool`` connections per host."""
    global _SESSION, _POOL
    with _LOCK:
        if _SESSION is None or pool > _POOL:
            import requests
            from requests.adapters import HTTPAdapter

            s = requests.Session()
            adapter = HTTPAdapter(pool_connections=max(pool, 1), pool_maxsize=max(pool, 1),
                                  max_retries=0)
            s.mount("http://", adapter)
            s.mount("https://", adapter)
            s.headers["User-Agent"] = "dhs-coadd-cache"
            s.headers["Accept-Encoding"] = "identity"  # sizes and ranges are of the stored bytes
            if _SESSION is not None:
                _SESSION.close()
            _SESSION, _POOL = s, max(pool, 1)
        return _SESSION


def reset() -> None:
    """Close the process-wide session (tests; after fork)."""
    global _SESSION, _POOL
    with _LOCK:
        if _SESSION is not None:
            _SESSION.close()
        _SESSION, _POOL = None, 0


def check_status(resp: Any, url: str) -> None:
    """Raise the retry-vocabulary exception for a non-success answer (closing the response)."""
    code = int(resp.status_code)
    if code < 300:
        return
    resp.close()
    if code in (404, 410):
        raise Missing(f"{url}: HTTP {code} (no such file on the server)")
    if code >= 500 or code in (408, 429):
        raise TransientError(f"{url}: HTTP {code}", status=code)
    raise PermanentError(f"{url}: HTTP {code}", status=code)


def content_length(resp: Any) -> int | None:
    value = resp.headers.get("Content-Length")
    return int(value) if value is not None and value.isdigit() else None


def total_size_from_range(resp: Any) -> int | None:
    """The full object size from a ``Content-Range: bytes a-b/N`` header."""
    cr = resp.headers.get("Content-Range", "")
    _, _, total = cr.rpartition("/")
    return int(total) if total.isdigit() else None
