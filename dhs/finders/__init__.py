"""Lens finders: pure functions of a batch of stamp pixels to one score per stamp.

- ``arcfinder`` (:mod:`dhs.finders.arcfinder`): built in, classical, no training;
- ``onnx`` (:mod:`dhs.finders.onnx_model`): a user's trained network exported to ONNX;
- ``python`` (:mod:`dhs.finders.python_callable`): any ``module:function``;
- ``snr_proxy`` (:mod:`dhs.finders.snr_proxy`): the arc-SNR rule, an oracle proxy that reads the
  injection's ``arc_snr`` (not a finder on pixels).

A pixel finder is called as ``finder(images, invvar, maskbits, bands=..., pixscale=...)`` and
returns a :class:`dhs.finders.base.FinderResult` (see :mod:`dhs.finders.base`). Nothing here reads a
config: :func:`make_finder` takes a frozen settings object. Heavy imports happen on first use.
"""

from __future__ import annotations

from typing import Any

#: Every finder, and those that see only pixels.
FINDERS = ("arcfinder", "onnx", "python", "snr_proxy")
PIXEL_FINDERS = ("arcfinder", "onnx", "python")


def settings_class(name: str) -> type:
    """The frozen settings class of finder ``name`` (its fields are the keys of ``conf/finder/<name>``)."""
    if name == "arcfinder":
        from dhs.finders.settings import ArcFinderSettings as cls
    elif name == "onnx":
        from dhs.finders.settings import OnnxFinderSettings as cls
    elif name == "python":
        from dhs.finders.settings import PythonFinderSettings as cls
    elif name == "snr_proxy":
        from dhs.finders.settings import SnrProxySettings as cls
    else:
        from dhs.finders.settings import FinderError

        raise FinderError(f"finder={name!r}: use one of {list(FINDERS)}")
    return cls


def make_finder(name: str, settings: Any = None) -> Any:
    """The finder ``name`` built from its settings object (``None``: defaults, where it has them)."""
    if name == "arcfinder":
        from dhs.finders.arcfinder import ArcFinder

        return ArcFinder(settings)
    if name == "onnx":
        from dhs.finders.onnx_model import OnnxFinder

        return OnnxFinder(settings)
    if name == "python":
        from dhs.finders.python_callable import PythonFinder

        return PythonFinder(settings)
    if name == "snr_proxy":
        from dhs.finders.snr_proxy import SnrProxy

        return SnrProxy(settings)
    from dhs.finders.base import FinderError

    raise FinderError(f"finder={name!r}: use one of {list(FINDERS)}")
