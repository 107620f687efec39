"""Any Python callable as a lens finder: ``finder=python finder.target=module:function``.

The target is ``package.module:function`` (importable where the stage runs, workers included) or
``path/to/file.py:function``. It is called once per batch as ``function(batch, **kwargs)`` with a
:class:`StampBatch` (``images``, ``invvar``, ``maskbits``, ``bands``, ``pixscale``: the arrays of
:mod:`dhs.finders.base`, nothing else) and ``finder.kwargs``, and returns the scores, shape (n,)
(higher = more lens-like), or ``(scores, {feature name: (n,) array})``. Rows whose score is NaN or
infinite are flagged ``nan_score`` and the run goes on. The sha256 of the file that defines the
function is recorded with the scores::

    # my_finder.py
    import numpy as np

    def score(batch, gain=1.0):
        blue = batch.images[:, batch.bands.index("g")]
        return gain * blue[:, 24:40, 24:40].sum(axis=(1, 2))
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from dhs.finders import base
from dhs.finders.settings import PythonFinderSettings  # noqa: F401  (numpy-free, read by the config)


@dataclass(frozen=True)
class StampBatch:
    """What a Python finder receives: (n, B, S, S) images (nanomaggies) and invvar (1/nmgy^2),
    (n, S, S) maskbits, the band names and the pixel scale (arcsec/pixel)."""

    images: np.ndarray
    invvar: np.ndarray
    maskbits: np.ndarray
    bands: tuple[str, ...]
    pixscale: float

    def __len__(self) -> int:
        return int(self.images.shape[0])


def load_target(target: str) -> tuple[Callable[..., Any], str]:
    """The callable named by ``target`` and the sha256 of its source file ('' if it has none)."""
    mod_name, func_name = str(target).rsplit(":", 1)
    try:
        if mod_name.endswith(".py"):
            path = Path(mod_name).expanduser().resolve()
            if not path.is_file():
                raise FileNotFoundError(f"no file {path}")
            spec = importlib.util.spec_from_file_location(f"dhs_user_finder_{path.stem}", path)
            module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
            spec.loader.exec_module(module)  # type: ignore[union-attr]
        else:
            module = importlib.import_module(mod_name)
    except Exception as exc:  # noqa: BLE001 - any import failure of user code is the user's to fix
        raise base.FinderError(f"finder.target={target}: cannot import {mod_name} ({type(exc).__name__}: {exc}); "
                               f"make it importable where dhs runs (pip install it, or give a .py path)") from exc
    fn = getattr(module, func_name, None)
    if not callable(fn):
        raise base.FinderError(f"finder.target={target}: {mod_name} has no callable {func_name!r}")
    try:
        src = inspect.getsourcefile(fn)
        digest = hashlib.sha256(Path(src).read_bytes()).hexdigest() if src else ""
    except (TypeError, OSError):
        digest = ""
    return fn, digest


class PythonFinder:
    """A Python callable as a :class:`dhs.finders.base.Finder` (imported on first use)."""

    name = "python"

    def __init__(self, settings: PythonFinderSettings):
        self._settings = settings
        self._fn: Callable[..., Any] | None = None
        self._sha = ""

    def _load(self) -> Callable[..., Any]:
        if self._fn is None:
            self._fn, self._sha = load_target(self._settings.target)
        return self._fn

    @property
    def settings(self) -> dict[str, Any]:
        return {"target": self._settings.target, "kwargs": dict(self._settings.kwargs)}

    @property
    def checksum(self) -> str:
        self._load()
        return self._sha

    def __call__(self, images: np.ndarray, invvar: np.ndarray, maskbits: np.ndarray, *,
                 bands: Sequence[str], pixscale: float) -> base.FinderResult:
        img, iv, mb, bands = base.check_batch(images, invvar, maskbits, bands, pixscale)
        fn = self._load()
        who = f"finder.target={self._settings.target}"
        out = fn(StampBatch(img, iv, mb, bands, float(pixscale)), **dict(self._settings.kwargs))
        feats: dict[str, np.ndarray] = {}
        if isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], dict):
            out, feats = out
            for k, v in feats.items():
                if np.shape(v) != (img.shape[0],):
                    raise base.FinderError(f"{who} returned feature {k!r} of shape {np.shape(v)}; features "
                                           f"need one value per stamp, shape ({img.shape[0]},)")
        return base.finish(out, img.shape[0], who=who, failed=base.empty_pixels(img, iv), features=feats)
