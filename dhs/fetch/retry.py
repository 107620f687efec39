"""Retry policy for remote reads: which errors are transient, and exponential backoff with jitter.

Transient (retried): timeouts, connection resets and drops, truncated bodies, HTTP 5xx and 429,
and files that arrive but fail the integrity check. Permanent (not retried): HTTP 404 / a missing
object (``Missing``), and other 4xx answers (``PermanentError``).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Callable, TypeVar

T = TypeVar("T")


class Missing(FileNotFoundError):
    """The source has no such file (HTTP 404, no such key, no such path)."""

    status = 404


class PermanentError(IOError):
    """A failure that retrying cannot fix (HTTP 4xx other than 404/429, bad credentials)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class TransientError(IOError):
    """A failure worth retrying (5xx, truncated body, failed integrity check)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class RetryPolicy:
    """``retries`` extra attempts after the first; the wait before attempt k (k >= 1) is
    ``backoff_s * 2**(k-1)`` seconds, times a random factor in [0.5, 1.5), capped at ``max_wait_s``."""

    retries: int = 5
    backoff_s: float = 0.5
    max_wait_s: float = 60.0

    def wait_s(self, attempt: int) -> float:
        base = self.backoff_s * (2 ** max(attempt - 1, 0))
        return min(base * (0.5 + random.random()), self.max_wait_s)


def is_transient(exc: BaseException) -> bool:
    """True for errors a retry may fix."""
    if isinstance(exc, (Missing, PermanentError, FileNotFoundError, PermissionError)):
        return False
    if isinstance(exc, TransientError):
        return True
    try:
        import requests

        if isinstance(exc, requests.exceptions.RequestException):
            return True
    except ImportError:  # pragma: no cover - requests is a dependency
        pass
    return isinstance(exc, (OSError, TimeoutError, ConnectionError, EOFError))


def describe(exc: BaseException) -> str:
    """A short reason for summaries: the exception class and the first line of its message."""
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {msg}"[:300]


def call_with_retries(fn: Callable[[int], T], policy: RetryPolicy,
                      on_retry: Callable[[int, BaseException], None] | None = None) -> T:
    """Call ``fn(attempt)`` until it succeeds, retrying transient errors ``policy.retries`` times."""
    attempt = 0
    while True:
        try:
            return fn(attempt)
        except Exception as exc:
            if not is_transient(exc) or attempt >= policy.retries:
                raise
            attempt += 1
            if on_retry is not None:
                on_retry(attempt, exc)
            time.sleep(policy.wait_s(attempt))
