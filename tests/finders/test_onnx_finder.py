"""The ONNX finder runs a network built here with onnx.helper (known weights) and reports what the
same computation in NumPy gives, through every normalisation and output convention."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from dhs.finders.base import FinderError
from dhs.finders.onnx_model import OnnxFinder, OnnxFinderSettings
from tests.finders.onnx_nets import build_cnn, forward_numpy

BANDS = ("g", "r", "z")


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(7)
    n, size = 10, 16
    images = rng.normal(0.0, 0.05, (n, 3, size, size)).astype(np.float32)
    images[:, :, 6:10, 6:10] += rng.uniform(0.1, 2.0, (n, 3, 1, 1)).astype(np.float32)
    invvar = np.full_like(images, 400.0)
    return images, invvar, np.zeros((n, size, size), np.int32)


def _finder(tmp_path, net, **kw) -> OnnxFinder:
    path = tmp_path / "net.onnx"
    path.write_bytes(net.model)
    return OnnxFinder(OnnxFinderSettings(model=str(path), **kw))


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def test_logit_output_is_the_numpy_forward_pass_through_a_sigmoid(tmp_path, batch):
    images, invvar, mask = batch
    net = build_cnn(3, (4, 4), seed=1)
    finder = _finder(tmp_path, net, output="logit", batch_size=4)
    res = finder(images, invvar, mask, bands=BANDS, pixscale=0.262)
    want = _sigmoid(forward_numpy(net, images)[:, 0])
    np.testing.assert_allclose(res.scores, want, rtol=2e-5, atol=1e-7)
    assert res.ok.all() and np.ptp(res.scores) > 0.005  # the stamps give different scores
    assert finder.checksum == hashlib.sha256(net.model).hexdigest()
    assert "CPUExecutionProvider" in finder.providers


@pytest.mark.parametrize("norm", ["asinh", "per_band_scale"])
def test_normalisations_are_applied_per_band(tmp_path, batch, norm):
    images, invvar, mask = batch
    net = build_cnn(3, (4,), seed=2)
    scale, offset = (0.1, 0.2, 0.4), (0.01, -0.02, 0.03)
    finder = _finder(tmp_path, net, output="probability", normalisation=norm, scale=scale, offset=offset)
    res = finder(images, invvar, mask, bands=BANDS, pixscale=0.262)
    s = np.asarray(scale)[None, :, None, None]
    x = np.arcsinh(images / s) if norm == "asinh" else (images - np.asarray(offset)[None, :, None, None]) / s
    np.testing.assert_allclose(res.scores, forward_numpy(net, x)[:, 0], rtol=2e-5, atol=1e-6)


def test_fixed_batch_models_are_fed_padded_batches_and_softmax_heads_give_probabilities(tmp_path, batch):
    images, invvar, mask = batch
    net = build_cnn(3, (3, 3), classes=2, seed=3, batch=4, size=16)
    res = _finder(tmp_path, net, output="logit", class_index=1)(images, invvar, mask, bands=BANDS, pixscale=0.262)
    z = forward_numpy(net, images)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    np.testing.assert_allclose(res.scores, (p / p.sum(axis=1, keepdims=True))[:, 1], rtol=2e-5, atol=1e-7)


def test_pixels_without_data_enter_as_zero_and_empty_stamps_are_flagged(tmp_path, batch):
    images, invvar, mask = (a.copy() for a in batch)
    invvar[2, 1, :4] = 0.0
    images[5] = np.nan
    invvar[5] = 0.0
    net = build_cnn(3, (4,), seed=4)
    res = _finder(tmp_path, net)(images, invvar, mask, bands=BANDS, pixscale=0.262)
    x = np.where(invvar > 0, images, 0.0)
    want = forward_numpy(net, x)[:, 0]
    assert list(res.reason) == ["no_pixels" if i == 5 else "" for i in range(10)]
    np.testing.assert_allclose(np.delete(res.scores, 5), np.delete(want, 5), rtol=2e-5, atol=1e-6)
    assert np.isnan(res.scores[5])


def test_mismatched_models_and_missing_files_are_clear_errors(tmp_path, batch):
    images, invvar, mask = batch
    with pytest.raises(FinderError, match="bands differ"):
        _finder(tmp_path, build_cnn(1, (2,), size=16))(images, invvar, mask, bands=BANDS, pixscale=0.262)
    with pytest.raises(FinderError, match="cannot read the ONNX file"):
        OnnxFinder(OnnxFinderSettings(model=str(tmp_path / "absent.onnx"))).checksum
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(FinderError, match="not a model onnxruntime can run"):
        OnnxFinder(OnnxFinderSettings(model=str(tmp_path / "junk.onnx"))).checksum
    with pytest.raises(FinderError, match="normalisation"):
        OnnxFinderSettings(model="x.onnx", normalisation="zscore")
