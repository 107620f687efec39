import numpy as np
import pytest

from dhs.physics.kernel_size import kernel_size_1
from dhs.physics.psf import kernel_size, measure_fwhm, psf_kernel


@pytest.mark.parametrize("model", ["moffat", "gaussian"])
@pytest.mark.parametrize("fwhm", [0.8, 1.1, 1.35, 1.7, 2.4])
def test_kernel_fwhm_sum_and_shape(model: str, fwhm: float) -> None:
    k = psf_kernel(fwhm, 0.262, model=model, beta=3.5, stamp_size=64)
    assert k.shape[0] == k.shape[1] and k.shape[0] % 2 == 1
    assert abs(k.sum() - 1.0) < 1e-12
    assert np.unravel_index(np.argmax(k), k.shape) == (k.shape[0] // 2,) * 2
    assert abs(measure_fwhm(k, 0.262) / fwhm - 1.0) < 0.02
    assert k.shape[0] * 0.262 >= 4 * fwhm


def test_moffat_wings_heavier_than_gaussian() -> None:
    m = psf_kernel(1.3, 0.262, model="moffat", size=31)
    g = psf_kernel(1.3, 0.262, model="gaussian", size=31)
    assert m[15, 30] > 100 * g[15, 30]


@pytest.mark.parametrize("stamp", [64, 33, 16])
def test_kernel_capped_at_stamp(stamp: int) -> None:
    k = psf_kernel(20.0, 0.262, stamp_size=stamp)
    assert k.shape[0] <= stamp and k.shape[0] % 2 == 1
    assert abs(k.sum() - 1.0) < 1e-12
    sizes = kernel_size(np.array([0.5, 5.0, 50.0]), 0.262, stamp)
    assert np.all(sizes <= stamp) and np.all(sizes % 2 == 1)


@pytest.mark.parametrize("bad", [0.0, -1.0, np.nan])
def test_bad_fwhm_raises(bad: float) -> None:
    with pytest.raises(ValueError, match=r"psf_fwhm\[1\]"):
        kernel_size(np.array([1.0, bad]), 0.262, 64)
    with pytest.raises(ValueError, match="psf_fwhm"):
        psf_kernel(bad, 0.262)


def test_kernel_size_follows_fwhm_multiple_and_cap() -> None:
    """Half width ceil(multiple / 2 * FWHM / pixel); a cap is rounded down to odd; the stamp caps too."""
    sizes = kernel_size(np.array([1.3, 1.3]), 0.262, 96, fwhm_multiple=9.0)
    assert list(sizes) == [47, 47]  # 4.5 * 1.3 / 0.262 = 22.3 -> 23 pixels each side
    assert int(kernel_size(1.3, 0.262, 96)[0]) == 27  # the default, 5 FWHM across
    assert int(kernel_size(1.3, 0.262, 96, 9.0, max_pix=20)[0]) == 19
    assert int(kernel_size(1.3, 0.262, 16, 9.0, max_pix=63)[0]) == 15
    assert psf_kernel(1.3, 0.262, stamp_size=96, fwhm_multiple=9.0).shape == (47, 47)


@pytest.mark.parametrize("stamp,multiple,max_pix", [(96, 5.0, None), (64, 9.0, 63), (16, 9.0, 63), (96, 9.0, 20),
                                                    (33, 0.5, None)])
def test_one_kernel_size_without_numpy_is_the_array_rule(stamp: int, multiple: float, max_pix) -> None:
    """kernel_size_1 (the 4c settings record) gives kernel_size's value at every FWHM, also at
    sizes where the ceiling or a cap decides."""
    fwhm = np.concatenate([np.linspace(0.05, 12.0, 997), [1.3, 0.262 * 2 / multiple, 0.262 * 6 / multiple]])
    arrays = kernel_size(fwhm, 0.262, stamp, multiple, max_pix)
    ones = [kernel_size_1(float(f), 0.262, stamp, multiple, max_pix) for f in fwhm]
    assert ones == [int(k) for k in arrays]
    assert len(set(ones)) > 2  # the grid crosses several sizes
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="psf_fwhm"):
            kernel_size_1(bad, 0.262, stamp)
