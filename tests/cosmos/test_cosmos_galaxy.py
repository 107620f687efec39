"""Template preparation on synthetic stamps with known answers (pure NumPy)."""

from __future__ import annotations

import numpy as np
import pytest

from dhs.cosmos.galaxy import (GalaxyRejected, crop_or_pad, half_light_radius, light_centroid,
                               prepare_template)


def gaussian(shape, cy, cx, sigma, flux=1.0):
    yy, xx = np.indices(shape)
    g = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma**2))
    return flux * g / g.sum()


def test_half_light_radius_of_a_gaussian():
    # circular Gaussian: half the light inside sigma * sqrt(2 ln 2)
    for sigma in (3.0, 6.0, 10.0):
        img = gaussian((121, 121), 60.3, 59.6, sigma)
        expected = sigma * np.sqrt(2 * np.log(2))
        assert half_light_radius(img, 60.3, 59.6) == pytest.approx(expected, rel=0.03)


def test_crop_and_pad_put_the_centroid_at_the_template_centre():
    for shape, cy, cx in [((190, 150), 101.3, 60.8), ((30, 44), 14.2, 22.9)]:
        img = gaussian(shape, cy, cx, 2.0)
        cut, oy, ox = crop_or_pad(img, cy, cx, 96)
        assert cut.shape == (96, 96)
        ny, nx = cy - oy, cx - ox
        assert abs(ny - 47.5) <= 0.5 and abs(nx - 47.5) <= 0.5
        my, mx = light_centroid(cut, cut > 0)
        assert my == pytest.approx(ny, abs=1e-6) and mx == pytest.approx(nx, abs=1e-6)
        # integer shift, no resampling: the pixel values are the stamp's own
        assert cut[int(round(ny)), int(round(nx))] == img[int(round(cy)), int(round(cx))]


def test_prepare_template_subtracts_noise_mean_and_normalises():
    rng = np.random.default_rng(1)
    sigma_noise, mean = 2e-3, 0.05
    img = gaussian((80, 70), 41.0, 33.0, 4.0, flux=30.0) + mean
    img += rng.normal(0, sigma_noise, img.shape)
    t = prepare_template(img, mean, sigma_noise**2, 96)
    assert t.image.dtype == np.float32 and t.image.shape == (96, 96)
    assert float(t.image.sum(dtype=np.float64)) == pytest.approx(1.0, abs=1e-5)
    assert t.flux == pytest.approx(30.0, rel=0.02)
    assert t.centroid_yx == pytest.approx((41.0, 33.0), abs=0.1)
    assert t.hlr_pix == pytest.approx(4.0 * np.sqrt(2 * np.log(2)), rel=0.1)
    # forgetting the noise mean would leave a pedestal worth more than the galaxy
    assert (img - 0).sum() > 2 * t.flux


@pytest.mark.parametrize("stamp,reason", [
    (np.full((40, 40), np.nan), "nan_pixels"),
    (np.zeros((0, 5)), "empty_stamp"),
    (np.zeros((40, 40)), "undetected"),
])
def test_rejections_carry_a_reason(stamp, reason):
    with pytest.raises(GalaxyRejected) as err:
        prepare_template(stamp, 0.0, 1e-6, 96)
    assert err.value.reason == reason


def test_nonpositive_total_flux_is_rejected():
    img = -gaussian((60, 60), 30, 30, 2.0, flux=1.0)  # only negative light
    img[28:33, 28:33] = 0.0
    img[30, 30] = 0.05
    with pytest.raises(GalaxyRejected) as err:
        prepare_template(img, 0.0, 1e-8, 96, min_snr=0.0)
    assert err.value.reason in ("nonpositive_flux", "undetected")


def test_truncated_and_faint_galaxies_are_rejected():
    wide = gaussian((30, 30), 15, 15, 12.0, flux=50.0)  # cut by the stamp box
    with pytest.raises(GalaxyRejected) as err:
        prepare_template(wide, 0.0, 1e-8, 96)
    assert err.value.reason == "truncated"
    rng = np.random.default_rng(3)
    faint = gaussian((64, 64), 32, 32, 3.0, flux=0.3) + rng.normal(0, 2e-3, (64, 64))
    with pytest.raises(GalaxyRejected) as err:
        prepare_template(faint, 0.0, 4e-6, 96, min_snr=1000.0)
    assert err.value.reason == "low_snr"
