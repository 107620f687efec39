"""Clean templates: noise and neighbours removed, negative structure flagged only when real.

Synthetic galaxies carry the real drizzled ACS noise (the embedded catalog's correlation function,
``acs_I_unrot_sci_20_cf.fits``), so the truth under the noise is known; the 100 real COSMOS
galaxies check that real stamps behave the same way.
"""

from __future__ import annotations

import numpy as np
import pytest

from dhs.cosmos import galaxy as G
from dhs.cosmos.catalog import embedded_root
from dhs.cosmos.galaxy import correlated_noise

SIGMA = 2.1e-3  # per-pixel noise of the embedded stamps (sqrt(NOISE_VARIANCE))


@pytest.fixture(scope="module")
def rho():
    from astropy.io import fits

    cf = fits.getdata(f"{embedded_root()}/acs_I_unrot_sci_20_cf.fits")
    return G.normalised_correlation(cf)


def exponential(shape, cy, cx, r_pix, q=0.6, phi=0.5, flux=1.0):
    yy, xx = np.indices(shape, dtype=float)
    x, y = xx - cx, yy - cy
    u = np.cos(phi) * x + np.sin(phi) * y
    v = (-np.sin(phi) * x + np.cos(phi) * y) / q
    img = np.exp(-np.hypot(u, v) / r_pix)
    return flux * img / img.sum()


def test_noise_generator_has_the_catalog_correlation(rho):
    rng = np.random.default_rng(0)
    n = np.stack([correlated_noise((48, 48), rho, rng) for _ in range(60)])
    assert n.var() == pytest.approx(1.0, rel=0.05)
    lag1 = (n[:, :, 1:] * n[:, :, :-1]).mean() / n.var()
    assert lag1 == pytest.approx(rho[rho.shape[0] // 2, rho.shape[0] // 2 + 1], abs=0.03)


def test_noise_and_neighbour_are_removed(rho):
    rng = np.random.default_rng(7)
    shape = (80, 80)
    galaxy = exponential(shape, 40.3, 39.6, 4.0, flux=2.0)
    neighbour = exponential(shape, 12.0, 66.0, 2.5, flux=1.0)
    stamp = galaxy + neighbour + SIGMA * correlated_noise(shape, rho, rng)
    t = G.prepare_template(stamp, 0.0, SIGMA**2, 96, noise_correlation=rho)
    assert not t.negative_structure
    assert t.image.min() >= 0.0  # stated multiple: 0 sigma (no negative pixel at all)
    clean = t.image.astype(float) * t.flux
    oy = int(np.floor(t.centroid_yx[0] - 47.5 + 0.5))
    ox = int(np.floor(t.centroid_yx[1] - 47.5 + 0.5))
    truth, _, _ = G.crop_or_pad(galaxy, t.centroid_yx[0], t.centroid_yx[1], 96)
    other, _, _ = G.crop_or_pad(neighbour, t.centroid_yx[0], t.centroid_yx[1], 96)
    assert clean[other > 1e-3 * other.max()].max() == 0.0  # the neighbour is gone
    far = truth < 1e-3 * truth.max()
    assert far.sum() > 0.6 * far.size and np.count_nonzero(clean[far]) == 0  # pure noise: 0
    assert t.flux == pytest.approx(2.0, rel=0.1)  # the wings under the isophote are cut
    # what stays inside the galaxy is suppressed noise: well below the raw per-pixel sigma
    inside = truth > 0.05 * truth.max()
    assert np.std(clean[inside] - truth[inside]) < 0.7 * SIGMA
    assert (oy, ox) == (int(round(40.3 - 47.5)), int(round(39.6 - 47.5)))


def test_template_snr_is_the_noise_left_in_the_template(rho):
    """The analytic SNR (correlated noise through mask and smoothing) matches Monte Carlo."""
    rng = np.random.default_rng(11)
    shape = (64, 64)
    galaxy = exponential(shape, 32.0, 31.5, 3.0, flux=1.2)
    base = galaxy + SIGMA * correlated_noise(shape, rho, rng)
    c = G.clean_stamp(base, SIGMA, rho)
    t = G.prepare_template(base, 0.0, SIGMA**2, 96, noise_correlation=rho, min_snr=0)
    from scipy import ndimage

    sums = []
    for _ in range(150):
        noisy = base + SIGMA * correlated_noise(shape, rho, rng)
        smooth = ndimage.gaussian_filter(noisy, G.DENOISE_SIGMA_PIX, mode="constant")
        sums.append(np.where(c["mask"], smooth, 0.0).sum())
    assert t.flux / np.std(sums) == pytest.approx(t.snr, rel=0.15)
    white = G.prepare_template(base, 0.0, SIGMA**2, 96, noise_correlation=None, min_snr=0)
    assert white.snr > 1.3 * t.snr  # ignoring the correlation overstates the SNR


def test_planted_hole_is_flagged_and_warned(rho):
    from dhs.physics.lens import LensBatch
    from dhs.physics.render import WARNING_BITS, render_batch, stamp_center_offset
    from dhs.physics.source import TemplateBatch

    rng = np.random.default_rng(5)
    shape = (72, 72)
    galaxy = exponential(shape, 36.0, 36.0, 5.0, flux=3.0)
    noise = SIGMA * correlated_noise(shape, rho, rng)
    clean = G.prepare_template(galaxy + noise, 0.0, SIGMA**2, 96, noise_correlation=rho)
    hole = galaxy - exponential(shape, 38.0, 42.0, 2.0, q=1.0, flux=1.0)  # ~ -8 sigma smoothed
    holed = G.prepare_template(hole + noise, 0.0, SIGMA**2, 96, noise_correlation=rho)
    assert not clean.negative_structure and clean.image.min() >= 0
    assert holed.negative_structure and holed.image.min() < 0
    cx, cy = stamp_center_offset(32)
    lens = LensBatch.from_q_phi([1.2, 1.2], 0.8, 0.3, 0.0, 0.0, cx, cy)
    src = TemplateBatch(np.stack([clean.image, holed.image]), 0.03, 0.1, 0.05, 0.0)
    res = render_batch(lens, src, {"r": np.ones(2)}, {"r": np.full(2, 1.2)}, stamp_size=32)
    bits = res.metrics["physics_warnings"] & WARNING_BITS["template_negative_pixels"]
    assert bits[0] == 0 and bits[1] != 0


def test_pure_noise_never_shows_negative_structure(rho):
    rng = np.random.default_rng(21)
    flagged = 0
    for _ in range(40):
        stamp = exponential((64, 64), 32, 32, 3.0, flux=0.8) + SIGMA * correlated_noise(
            (64, 64), rho, rng)
        flagged += G.prepare_template(stamp, 0.0, SIGMA**2, 96, noise_correlation=rho,
                                      min_snr=0).negative_structure
    assert flagged == 0


def test_real_galaxies_clean(embedded_bank):
    """The 100 real COSMOS galaxies: no template pixel below 0 (a stated 0 sigma), nothing
    flagged as negative structure, every template above the SNR floor, zero outside the galaxy."""
    from dhs.cosmos.bank import load_bank

    bank = load_bank(embedded_bank[0])
    assert len(bank) >= 40
    assert not bank.columns["negative_structure"].any()
    assert bank.images.min() >= 0.0
    assert np.all(bank.columns["template_snr"] >= 15.0)
    zero = (bank.images == 0).mean(axis=(1, 2))
    assert np.median(zero) > 0.7  # most of each 96x96 box is outside the galaxy: exactly 0
    # a sharp-edged box would put flux on the template border: at most 2 % there (truncated)
    border = np.concatenate([bank.images[:, 0], bank.images[:, -1], bank.images[:, :, 0],
                             bank.images[:, :, -1]], axis=1)
    assert border.sum(axis=1).max() <= G.MAX_EDGE_FLUX
