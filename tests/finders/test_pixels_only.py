"""Pixel finders take pixels and nothing else: their entry points' signatures name the stamp
arrays, the band names and the pixel scale, never a manifest or metrics column (theta_E, PSF,
arc SNR...). The SNR proxy is the one exception and says so."""

from __future__ import annotations

import inspect

import pytest

from dhs import schema
from dhs.finders import FINDERS, PIXEL_FINDERS, arcfinder, onnx_model, python_callable, snr_proxy

PIXELS = ["images", "invvar", "maskbits", "bands", "pixscale"]
ENTRY_POINTS = {"arcfinder": arcfinder.ArcFinder.__call__, "onnx": onnx_model.OnnxFinder.__call__,
                "python": python_callable.PythonFinder.__call__}


def _params(fn) -> list[str]:
    return [p for p in inspect.signature(fn).parameters if p != "self"]


@pytest.mark.parametrize("name", PIXEL_FINDERS)
def test_pixel_finder_entry_points_take_only_pixels(name):
    assert _params(ENTRY_POINTS[name]) == PIXELS
    kinds = {p.name: p.kind for p in inspect.signature(ENTRY_POINTS[name]).parameters.values()}
    assert kinds["bands"] == kinds["pixscale"] == inspect.Parameter.KEYWORD_ONLY


def test_no_column_of_the_manifest_or_metrics_is_a_parameter():
    columns = set(schema.names(schema.MANIFEST + schema.metrics_columns(("g", "r", "i", "z"))))
    assert _params(arcfinder.score_batch) == PIXELS + ["settings"]
    for fn in list(ENTRY_POINTS.values()) + [arcfinder.score_batch]:
        assert not set(_params(fn)) & columns
    settings = {f for cls in (arcfinder.ArcFinderSettings, onnx_model.OnnxFinderSettings,
                              python_callable.PythonFinderSettings) for f in cls.__dataclass_fields__}
    assert not settings & columns, settings & columns


def test_the_snr_proxy_is_named_an_oracle_and_reads_one_metrics_column():
    assert set(FINDERS) - set(PIXEL_FINDERS) == {"snr_proxy"}
    assert _params(snr_proxy.SnrProxy.__call__) == [snr_proxy.INPUT_COLUMN] == ["arc_snr"]
    assert "oracle proxy, not a finder on pixels" in snr_proxy.__doc__
