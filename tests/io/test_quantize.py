"""Quantized stamp storage (output.quantize): error bound, noise statistics, exact zeros, round trip."""

from __future__ import annotations

import numpy as np
import pytest

from dhs.stages import layout
from dhs.io import datasets as dio
from dhs.io import quantize as qz
from dhs.io.stamps import read_stamps, to_numpy
from tests.helpers import compose_config, run_stage


def _noise(n=6, nb=3, size=32, seed=3):
    rng = np.random.default_rng(seed)
    sigma = np.array([0.004, 0.007, 0.02])[:nb]
    img = (rng.normal(size=(n, nb, size, size)) * sigma[None, :, None, None]).astype(np.float32)
    ivar = np.broadcast_to((1.0 / sigma**2)[None, :, None, None], img.shape).astype(np.float32).copy()
    return img, ivar, sigma


@pytest.mark.parametrize("levels", [1.0, 4.0, 16.0])
def test_round_trip_error_is_at_most_half_a_step(levels):
    img, ivar, sigma = _noise()
    img[0, 0, 5, 5] = 3.0e3  # a bright star stays within the bound
    seed = qz.seeds([f"t{i}" for i in range(len(img))])
    step = qz.steps(img, ivar, levels)
    np.testing.assert_allclose(step[1], sigma / levels, rtol=1e-6)
    back = qz.decode(qz.encode(img, step, seed, "image"), step, seed, "image")
    err = np.abs(back.astype(np.float64) - img) / step[:, :, None, None]
    assert err.max() <= 0.5 + 1e-4
    assert err.max() > 0.45  # the error fills the step: it is not lossless by accident


def test_noise_statistics_within_one_percent_and_dither_unbiased():
    img, ivar, sigma = _noise(n=8, size=64)
    seed = qz.seeds([f"task{i}" for i in range(len(img))])
    step = qz.steps(img, ivar, 4.0)
    back = qz.decode(qz.encode(img, step, seed, "image"), step, seed, "image")
    for j in range(3):
        ratio = back[:, j].std() / img[:, j].std()
        assert abs(ratio - 1.0) < 0.01
        # the subtractive dither makes the error uniform: variance q^2 / 12, mean zero
        err = (back[:, j].astype(np.float64) - img[:, j]) / step[:, j, None, None]
        assert abs(err.var() - 1.0 / 12.0) < 0.005 and abs(err.mean()) < 0.01


def test_zeros_and_nan_come_back_exactly_and_seeds_are_per_task():
    img, ivar, _ = _noise(n=2)
    img[0, 1, :4] = 0.0
    img[1, 2, 7, 7] = np.nan
    seed = qz.seeds(["a", "b"])
    assert seed[0] != seed[1] and (qz.seeds(["a"]) == seed[:1]).all()
    step = qz.steps(img, ivar, 4.0)
    ints = qz.encode(img, step, seed, "image")
    back = qz.decode(ints, step, seed, "image")
    assert (back[0, 1, :4] == 0.0).all() and np.isnan(back[1, 2, 7, 7])
    assert np.isfinite(back[0]).all()
    assert not np.array_equal(ints, qz.encode(img, step, seed[::-1], "image"))  # the dither depends on the seed
    # no invvar: the image's own noise sets the step; a blank stamp gets step 1 and stays zero
    blank = np.zeros_like(img)
    noise_step = qz.steps(img, np.zeros_like(ivar), 4.0)
    np.testing.assert_allclose(noise_step[:, 0], 0.004 / 4.0, rtol=0.1)
    assert (qz.steps(blank, np.zeros_like(ivar), 4.0) == 1.0).all()
    assert (qz.decode(qz.encode(blank, step, seed, "arc"), step, seed, "arc") == 0.0).all()


@pytest.fixture(scope="module")
def two_runs(mini_base):
    common = [*mini_base, "stage=4c", "source=cosmos", "output.save_arc=true"]
    cfgs = {}
    for name, extra in (("lossless", []), ("quantized", ["output.quantize=4"])):
        over = [*common, *extra, f"inject.run_name=q_{name}"]
        run_stage(over)
        cfgs[name] = compose_config(over)
    return cfgs


def test_stage_stores_quantized_stamps_within_the_stated_fraction_of_sigma(two_runs):
    exp = layout.experiment_ids(two_runs["lossless"])[0]
    ref = read_stamps(layout.stamps_dir(two_runs["lossless"], exp), columns=None).sort_by("task_id")
    got = read_stamps(layout.stamps_dir(two_runs["quantized"], exp), columns=None).sort_by("task_id")
    assert ref.schema.field("image").type.value_type.id != got.schema.field("image").type.value_type.id
    ok = np.asarray(ref.column("cutout_ok")) == 1
    assert ok.sum() > 20
    step = np.asarray(got.column("quant_step").to_pylist(), np.float64)[ok]
    ivar = to_numpy(ref, "invvar")[ok]
    for j in range(step.shape[1]):  # the step is sigma / 4 of each stamp's noise
        sig = np.array([1.0 / np.sqrt(np.median(v[v > 0])) for v in ivar[:, j]])
        np.testing.assert_allclose(step[:, j], sig / 4.0, rtol=1e-6)
    for col in ("image", "arc"):
        a, b = to_numpy(ref, col)[ok].astype(np.float64), to_numpy(got, col)[ok].astype(np.float64)
        assert np.abs(b - a).max() > 0.0
        assert (np.abs(b - a) <= 0.5 * step[:, :, None, None] * (1 + 1e-5) + 1e-7 * np.abs(a)).all()
        zero = a == 0.0
        assert (b[zero] == 0.0).all()
    img_a, img_b = to_numpy(ref, "image")[ok], to_numpy(got, "image")[ok]
    for i in range(len(img_a)):  # noise of each stamp and band: std of its sky pixels (|chi| < 3)
        for j in range(img_a.shape[1]):
            chi = img_a[i, j] * np.sqrt(ivar[i, j])
            sky = (np.abs(chi) < 3) & (ivar[i, j] > 0)
            ratio = img_b[i, j][sky].astype(np.float64).std() / img_a[i, j][sky].astype(np.float64).std()
            assert abs(ratio - 1.0) < 0.01, (i, j, ratio)
    for col in ("invvar", "maskbits"):
        assert got.column(col).equals(ref.column(col))


def test_metrics_do_not_depend_on_the_storage(two_runs):
    exp = layout.experiment_ids(two_runs["lossless"])[0]
    files = {k: dio.data_files(layout.metrics_dir(c, exp)) for k, c in two_runs.items()}
    assert len(files["lossless"]) == len(files["quantized"]) > 0
    for a, b in zip(files["lossless"], files["quantized"]):
        assert open(a, "rb").read() == open(b, "rb").read()
