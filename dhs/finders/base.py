"""What every lens finder takes and returns: a batch of stamp pixels in, one score per stamp out.

A finder is called as ``finder(images, invvar, maskbits, *, bands, pixscale)`` with

- ``images``: (n, B, S, S) float, nanomaggies per pixel, band order ``bands``;
- ``invvar``: (n, B, S, S) float, inverse variance (1/nanomaggy^2); 0 where a pixel has no data;
- ``maskbits``: (n, S, S) int, DR10 MASKBITS (``dhs.survey.maskbits``);
- ``bands``: the band names, e.g. ``("g", "r", "z")``; ``pixscale``: arcsec per pixel.

Nothing else reaches a pixel finder: never the Einstein radius, the PSF, or any column of the
manifest or the metrics. It returns a :class:`FinderResult`: ``scores`` (n,) float64, higher =
more lens-like; rows whose score is not finite are flagged (``ok`` False, ``reason``) and keep
NaN, so one bad stamp never stops a batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence

import numpy as np

from dhs.finders.settings import FinderError  # noqa: F401  (defined with the settings, numpy-free)

#: Reason codes of a flagged row (empty string: scored).
REASONS = ("", "nan_score", "no_pixels", "finder_failed")


@dataclass(frozen=True)
class FinderResult:
    """Scores of a batch: ``scores`` (n,) float64 (NaN where ``ok`` is False), ``ok`` (n,) bool,
    ``reason`` (n,) str (one of :data:`REASONS`), ``features`` name -> (n,) float64."""

    scores: np.ndarray
    ok: np.ndarray
    reason: np.ndarray
    features: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.scores.shape[0])


class Finder(Protocol):
    """A lens finder: ``name``, ``settings`` (a JSON-able dict recorded with the scores),
    ``checksum`` (sha256 of a model file, or '') and the call on a batch of pixels."""

    name: str

    @property
    def settings(self) -> dict[str, Any]: ...

    @property
    def checksum(self) -> str: ...

    def __call__(self, images: np.ndarray, invvar: np.ndarray, maskbits: np.ndarray, *,
                 bands: Sequence[str], pixscale: float) -> FinderResult: ...


def check_batch(images: Any, invvar: Any, maskbits: Any, bands: Sequence[str],
                pixscale: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[str, ...]]:
    """The batch as arrays of the documented shapes (float32 / int64); FinderError if not."""
    img = np.asarray(images, dtype=np.float32)
    iv = np.asarray(invvar, dtype=np.float32)
    mb = np.asarray(maskbits)
    bands = tuple(str(b) for b in bands)
    if img.ndim != 4:
        raise FinderError(f"images has shape {img.shape}: a finder takes (n, bands, size, size)")
    n, nb, s1, s2 = img.shape
    if s1 != s2:
        raise FinderError(f"images has shape {img.shape}: stamps must be square")
    if iv.shape != img.shape:
        raise FinderError(f"invvar has shape {iv.shape}, images {img.shape}: they must match")
    if mb.shape != (n, s1, s2):
        raise FinderError(f"maskbits has shape {mb.shape}, expected {(n, s1, s2)}")
    if len(bands) != nb:
        raise FinderError(f"bands {bands} name {len(bands)} band(s), the images have {nb}")
    if not (np.isfinite(pixscale) and pixscale > 0):
        raise FinderError(f"pixscale={pixscale!r}: must be a positive number of arcsec per pixel")
    if not np.issubdtype(mb.dtype, np.integer):
        raise FinderError(f"maskbits has dtype {mb.dtype}: DR10 maskbits are integers")
    return img, iv, mb.astype(np.int64, copy=False), bands


def finish(scores: Any, n: int, *, who: str, failed: np.ndarray | None = None,
           features: dict[str, np.ndarray] | None = None) -> FinderResult:
    """Wrap raw scores: check their shape, flag rows that are not finite ('nan_score') or that the
    finder could not score (``failed``: 'no_pixels')."""
    try:
        arr = np.asarray(scores, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise FinderError(f"{who} returned scores that are not numbers ({exc}); return an array of "
                          f"shape ({n},)") from exc
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.shape != (n,):
        raise FinderError(f"{who} returned scores of shape {arr.shape} for a batch of {n} stamps; "
                          f"return one score per stamp, shape ({n},)")
    reason = np.full(n, "", dtype=object)
    reason[~np.isfinite(arr)] = "nan_score"
    if failed is not None:
        reason[np.asarray(failed, bool)] = "no_pixels"
    ok = reason == ""
    out = np.where(ok, arr, np.nan)
    feats = {k: np.asarray(v, dtype=np.float64) for k, v in (features or {}).items()}
    return FinderResult(scores=out, ok=ok, reason=reason.astype(str), features=feats)


def empty_pixels(images: np.ndarray, invvar: np.ndarray) -> np.ndarray:
    """(n,) bool: stamps with no usable pixel at all (every invvar <= 0 or not finite)."""
    good = np.isfinite(images) & np.isfinite(invvar) & (invvar > 0)
    return ~good.reshape(good.shape[0], -1).any(axis=1)
