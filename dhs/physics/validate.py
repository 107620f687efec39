"""Parameter validation for batched physics inputs: errors name the parameter and index."""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from typing import Any

import numpy as np


def as_batch(value: Any, n: int, name: str) -> np.ndarray:
    """Return ``value`` as a float64 array of shape ``(n,)`` (scalars are broadcast)."""
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        return np.full(n, float(arr))
    arr = arr.reshape(-1)
    if arr.size != n:
        raise ValueError(f"{name} has {arr.size} entries, expected {n} (one per stamp)")
    return arr.copy()


def first_bad(mask: np.ndarray) -> int | None:
    """Index of the first True entry, or None."""
    idx = np.flatnonzero(mask)
    return int(idx[0]) if idx.size else None


def check_finite_array(name: str, arr: np.ndarray) -> None:
    """Raise ValueError naming the first non-finite entry of ``arr`` (batch axis first)."""
    arr = np.asarray(arr)
    if arr.ndim == 0:
        if not np.isfinite(arr):
            raise ValueError(f"{name} = {arr!r}: must be finite")
        return
    bad = ~np.isfinite(arr.reshape(arr.shape[0], -1)).all(axis=1)
    i = first_bad(bad)
    if i is not None:
        raise ValueError(f"{name}[{i}] is not finite (NaN or inf)")


def check_finite(obj: Any) -> None:
    """Check every array field of a dataclass for NaN / inf."""
    assert is_dataclass(obj)
    for f in fields(obj):
        val = getattr(obj, f.name, None)
        if isinstance(val, np.ndarray) and val.dtype.kind == "f":
            check_finite_array(f.name, val)


def check_range(
    name: str,
    arr: np.ndarray,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
) -> None:
    """Raise ValueError naming the first entry outside ``[lo, hi]`` (``(lo, hi]`` if open)."""
    arr = np.asarray(arr, dtype=np.float64).reshape(-1)
    i = first_bad(~np.isfinite(arr))
    if i is not None:
        raise ValueError(f"{name}[{i}] = {arr[i]!r}: must be finite")
    if lo is not None:
        bad = arr <= lo if lo_open else arr < lo
        i = first_bad(bad)
        if i is not None:
            op = ">" if lo_open else ">="
            raise ValueError(f"{name}[{i}] = {arr[i]!r}: must be {op} {lo}")
    if hi is not None:
        i = first_bad(arr > hi)
        if i is not None:
            raise ValueError(f"{name}[{i}] = {arr[i]!r}: must be <= {hi}")


class BatchFields:
    """Mixin for frozen dataclasses of per-stamp arrays: gather and broadcast helpers."""

    _per_stamp: tuple[str, ...] = ()

    def __len__(self) -> int:
        return int(getattr(self, self._per_stamp[0]).shape[0])

    def take(self, idx: np.ndarray):  # noqa: ANN201
        """Copy with every per-stamp field gathered by ``idx`` (no re-validation); a run of
        consecutive indices gives views of the fields instead of copies."""
        out = object.__new__(type(self))
        out.__dict__.update(self.__dict__)
        idx = np.asarray(idx)
        if (idx.ndim == 1 and idx.size and idx.dtype.kind in "iu" and idx[0] >= 0
                and idx[-1] < len(self) and np.all(np.diff(idx) == 1)):
            idx = slice(int(idx[0]), int(idx[-1]) + 1)  # a run: views, no copies
        for name in self._per_stamp:
            out.__dict__[name] = getattr(self, name)[idx]
        return out

    def column(self, ndim: int):  # noqa: ANN201
        """Copy with per-stamp fields reshaped to ``(n, 1, ..., 1)`` (``ndim`` axes)."""
        out = object.__new__(type(self))
        out.__dict__.update(self.__dict__)
        shape = (len(self),) + (1,) * (ndim - 1)
        for name in self._per_stamp:
            out.__dict__[name] = getattr(self, name).reshape(shape)
        return out
