"""Why a 4c row has no stamp: an error code, its class, and a stored reason (file, HTTP status, text).

Classes (``dhs.schema.ERROR_CLASSES``):

- ``outcome``: a fact about the sky, not a failure (``edge``: the stamp leaves the brick;
  ``nan_pixels``: the survey has no data there; ``bad_psf``: no usable PSF size);
- ``transient``: a retry can help (``transient_io``: timeout, dropped connection, HTTP 5xx/429);
- ``input``: an input is absent or damaged; repair it, then retry (``corrupt_file``: a file that
  is not what it should be; ``not_cached``: not in the coadd cache, run stage 4b);
- ``permanent``: retrying the same request cannot help (``missing_file``: 404 at the source;
  ``blacklisted_brick``; ``access_error``: another 4xx; ``bad_row``/``render_failed``: a bad value).

``retry_failed=true`` redoes the shards holding ``transient`` or ``input`` rows. A row of any class
but ``outcome`` failed for good when the stage ends: stages 4b/4c then exit with
``dhs.errors.RunFailedError``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from dhs.schema import ERROR_CLASSES

#: Classes that ``retry_failed=true`` redoes.
RETRYABLE = ("transient", "input")


@dataclass(frozen=True)
class Failure:
    """One classified failure: code, file it concerns ('' when none), HTTP status, exception text."""

    code: str
    file: str = ""
    status: Optional[int] = None
    message: str = ""


def error_class(code: str) -> str:
    """'ok', 'outcome', 'transient', 'input' or 'permanent' (unknown codes: 'permanent')."""
    return "ok" if not code else ERROR_CLASSES.get(code, "permanent")


def is_failure(code: str) -> bool:
    """True when a row with ``code`` is a failure (not ok and not an outcome)."""
    return error_class(code) not in ("ok", "outcome")


def is_retryable(code: str) -> bool:
    return error_class(code) in RETRYABLE


def _chain(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    cur: Optional[BaseException] = exc
    while cur is not None and cur not in out and len(out) < 10:
        out.append(cur)
        cur = cur.__cause__ or cur.__context__
    return out


def _is_network(exc: BaseException) -> bool:
    from dhs.fetch.retry import TransientError

    if isinstance(exc, (TransientError, TimeoutError, ConnectionError)):
        return True
    try:
        import requests

        return isinstance(exc, requests.exceptions.RequestException)
    except ImportError:  # pragma: no cover - requests is a dependency
        return False


def _text(exc: BaseException) -> str:
    msg = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {msg}"[:500]


def classify(exc: BaseException, file: str = "", *, cache_mode: str = "none") -> Failure:
    """The failure of reading ``file`` that raised ``exc``.

    Unexpected exceptions (bugs, and configuration errors such as
    ``dhs.survey.wcs.PixelScaleError``) are re-raised.
    """
    from dhs.fetch.retry import Missing, PermanentError
    from dhs.survey.fits_checks import BrickFileError

    chain = _chain(exc)
    status = next((int(s) for e in chain if isinstance(s := getattr(e, "status", None), int)), None)
    text = _text(exc)
    if any(_is_network(e) for e in chain):
        return Failure("transient_io", file, status, text)
    if any(isinstance(e, PermanentError) for e in chain):
        return Failure("access_error", file, status, text)
    if isinstance(exc, (Missing, FileNotFoundError)):
        code = "not_cached" if cache_mode == "brick" else "missing_file"
        return Failure(code, file, status if isinstance(exc, Missing) else None, text)
    if isinstance(exc, (BrickFileError, OSError, ValueError, KeyError, TypeError, EOFError)):
        return Failure("corrupt_file", file, status, text)
    raise exc


def row_columns(failures: list[Optional[Failure]]) -> dict[str, list[Any]]:
    """The stored reason columns (``error_file``, ``error_status``, ``error_message``) of rows."""
    return {"error_file": [f.file or None if f else None for f in failures],
            "error_status": [f.status if f else None for f in failures],
            "error_message": [f.message or None if f else None for f in failures]}
