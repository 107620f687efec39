"""The compiled (numba) kernels against the pure NumPy path, and the FFT convolution."""

import os
import subprocess
import sys

import numpy as np
import pytest
from scipy.signal import fftconvolve

from dhs.physics import kernels
from dhs.physics.lens import LensBatch
from dhs.physics.psf import psf_kernel
from dhs.physics.raytrace import render_adaptive, render_uniform
from dhs.physics.render import _convolve, render_batch
from dhs.physics.source import SersicBatch, TemplateBatch

from .conftest import cosmos_like

PIX = 0.262


def _setup(seed: int, n: int = 12) -> tuple[LensBatch, SersicBatch, TemplateBatch]:
    rng = np.random.default_rng(seed)
    lens = LensBatch.from_q_phi(rng.uniform(0.5, 2.0, n), rng.uniform(0.3, 1.0, n),
                                rng.uniform(0, np.pi, n), rng.uniform(0, 0.12, n),
                                rng.uniform(0, np.pi, n), rng.uniform(-0.2, 0.3, n),
                                rng.uniform(-0.2, 0.3, n))
    ser = SersicBatch.from_q_phi(rng.uniform(0.1, 0.6, n), rng.uniform(0.5, 4.0, n),
                                 rng.uniform(0.3, 1.0, n), rng.uniform(0, np.pi, n),
                                 rng.uniform(-0.5, 0.5, n), rng.uniform(-0.5, 0.5, n))
    tpl = TemplateBatch(cosmos_like(rng, n, size=56).astype(np.float32),
                        rng.uniform(0.03, 0.05, n), rng.uniform(-0.5, 0.5, n),
                        rng.uniform(-0.5, 0.5, n), rng.uniform(-np.pi, np.pi, n))
    return lens, ser, tpl


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def _both(monkeypatch: pytest.MonkeyPatch, fn, *args, **kw):  # noqa: ANN001, ANN202
    monkeypatch.setattr(kernels, "USE_NUMBA", False)
    ref = fn(*args, **kw)
    monkeypatch.setattr(kernels, "USE_NUMBA", True)
    return ref, fn(*args, **kw)


@pytest.mark.parametrize("kind", ["sersic", "template", "template64"])
def test_compiled_morphology_matches_numpy(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    lens, ser, tpl = _setup(21)
    if kind == "template64":
        tpl = TemplateBatch(tpl.templates.astype(np.float64), tpl.pixscale, tpl.x, tpl.y,
                            tpl.angle)
    src = ser if kind == "sersic" else tpl
    for ss in (1, 3, 5):
        (ra, na), (ca, nc) = _both(monkeypatch, render_adaptive, lens, src, 48, PIX, ss)
        assert _rel(ca, ra) <= 1e-12
        np.testing.assert_array_equal(nc, na)
        ru, cu = _both(monkeypatch, render_uniform, lens, src, 48, PIX, ss)
        assert _rel(cu, ru) <= 1e-12
    if kind == "sersic":
        (ra, _), (ca, _) = _both(monkeypatch, render_adaptive, lens, src, 48, PIX, 5,
                                 sersic_core=True)
        assert _rel(ca, ra) <= 1e-12
        ru, cu = _both(monkeypatch, render_uniform, lens, src, 48, PIX, 1, sersic_core=True,
                       core_supersample=5)
        assert _rel(cu, ru) <= 1e-12


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_compiled_render_batch_matches_numpy(dtype: type, monkeypatch: pytest.MonkeyPatch) -> None:
    lens, ser, tpl = _setup(22)
    n = len(lens)
    flux = {b: np.full(n, 10.0) for b in "grz"}
    fwhm = {"g": np.full(n, 1.5), "r": np.linspace(0.8, 2.0, n), "z": np.full(n, 1.1)}
    tol = 1e-12 if dtype == np.float64 else 1e-6
    for src in (ser, tpl):
        ref, new = _both(monkeypatch, render_batch, lens, src, flux, fwhm, dtype=dtype)
        for b in "grz":
            assert _rel(new.images[b], ref.images[b]) <= tol
        for key, val in ref.metrics.items():
            np.testing.assert_allclose(new.metrics[key], val, rtol=1e-6, atol=1e-12, err_msg=key)


@pytest.mark.parametrize("size", [48, 33])
def test_convolution_equals_zero_padded_direct(size: int) -> None:
    rng = np.random.default_rng(23)
    n = 5
    morph = rng.normal(size=(n, size, size))
    fwhm = {"r": np.array([0.6, 1.0, 1.6, 3.0, 9.0]), "g": np.array([1.2] * n)}
    for model in ("moffat", "gaussian"):
        out = _convolve({"r": morph, "g": morph}, fwhm, size, PIX, model, 3.5, np.float64)
        for b in fwhm:
            for k in range(n):
                kern = psf_kernel(fwhm[b][k], PIX, model=model, stamp_size=size)
                ref = fftconvolve(morph[k], kern, mode="same")
                assert _rel(out[b][k], ref) <= 1e-12, (model, b, k)


def test_float32_templates_are_kept_without_copy() -> None:
    rng = np.random.default_rng(24)
    t = cosmos_like(rng, 3, size=20).astype(np.float32)
    src = TemplateBatch(t, 0.03, 0.0, 0.0, 0.0)
    assert src.templates.dtype == np.float32 and np.shares_memory(src.templates, t)
    np.testing.assert_allclose(src.sb_norm, t.sum(axis=(1, 2), dtype=np.float64) * 0.03**2)
    pad = src.padded_sb
    assert pad.shape == (3, 22, 22) and pad.dtype == np.float64
    assert not pad[:, 0].any() and not pad[:, :, -1].any()
    np.testing.assert_allclose(pad.sum(axis=(1, 2)) * 0.03**2, 1.0, rtol=1e-12)
    run = src.take(np.arange(1, 3))
    gathered = src.take(np.array([1, 2, 2]))
    assert np.shares_memory(run.templates, t)
    np.testing.assert_array_equal(run.templates, gathered.templates[:2])
    np.testing.assert_array_equal(run.sb_norm, src.sb_norm[1:])


def test_numba_can_be_switched_off_by_environment() -> None:
    code = "from dhs.physics import kernels; print(kernels.enabled())"
    env = {**os.environ, "DHS_NUMBA": "0"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "False"


def test_compiled_image_position_matches_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    from dhs.physics.lens import image_position

    lens, ser, _ = _setup(25, n=40)
    lens = LensBatch(theta_E=np.where(np.arange(40) % 9 == 0, 0.0, lens.theta_E), e1=lens.e1,
                     e2=lens.e2, center_x=lens.center_x, center_y=lens.center_y,
                     gamma1=lens.gamma1, gamma2=lens.gamma2)
    bx = lens.center_x + np.where(np.arange(40) % 7 == 0, 0.0, ser.x)
    by = lens.center_y + np.where(np.arange(40) % 7 == 0, 0.0, ser.y)
    ref, new = _both(monkeypatch, image_position, lens, bx, by)
    for a, b in zip(new, ref):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    assert np.all(ref[2][lens.theta_E > 0] < 1e-6)
