"""Noise of injected stamps: the arc's photon noise matches its stated gain, and arc_snr with the
coadd's correlated noise matches the empirical SNR of the same footprint on a real legacypipe
coadd (where the independent-pixel SNR is off by more than half)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from dhs.inject import metrics as M
from dhs.physics import noise as N

COADD = Path(__file__).resolve().parents[1] / "data" / "legacypipe_coadd_obiwan"


def _coadd():
    def get(kind):
        return fits.getdata(COADD / f"legacysurvey-1102p240-{kind}-z.fits.fz", 1).astype(np.float64)
    return get("image"), get("invvar")


def test_effective_gain_is_sky_over_variance():
    iv = np.full((2, 8, 8), 1e4)
    iv[1] = 4e4
    g = N.effective_gain(iv, iv > 0, "r", 0.262)
    sky = 10 ** (-0.4 * (20.91 - 22.5)) * 0.262**2  # nominal DECam r sky, nmgy per pixel
    assert np.allclose(g, [1e4 * sky, 4e4 * sky])
    assert 2000 < g[0] < 4000  # a single 90 s DECam r exposure is ~4800 e-/nmgy (obsbot zp 26.818)


def test_photon_noise_variance_matches_the_gain():
    rng = np.random.default_rng(1)
    arc = np.abs(rng.normal(0.0, 0.05, (40, 3, 32, 32)))
    gain = np.array([[800.0, 1500.0, 3000.0]] * 40)
    noise = N.photon_noise(arc, gain, np.arange(40, dtype=np.uint64) * 7919)
    for j in range(3):
        var = (noise[:, j] ** 2).sum() / (arc[:, j] / gain[:, j, None, None]).sum()
        assert var == pytest.approx(1.0, abs=0.05)
    again = N.photon_noise(arc, gain, np.arange(40, dtype=np.uint64) * 7919)
    assert np.array_equal(noise, again)  # a pure function of the seeds
    iv = N.with_photon_variance(np.full(arc.shape, 1e4), arc, gain)
    assert np.allclose(1 / iv, 1e-4 + arc / gain[:, :, None, None])


def _footprint(shape, r0, r1, centre=None):
    yy, xx = np.indices(shape)
    cy, cx = centre or (shape[0] // 2, shape[1] // 2)
    r = np.hypot(yy - cy, xx - cx)
    arc = np.where((r > r0) & (r < r1) & (xx > cx), np.exp(-((r - (r0 + r1) / 2) ** 2)), 0.0)
    return arc * 0.05


@pytest.mark.parametrize("r0,r1", [(2, 4), (4, 7)])
def test_arc_snr_matches_the_empirical_snr_on_a_real_coadd(r0, r1):
    """The same footprint summed at every sky position of the real coadd (about its local
    background): arc_snr within 10 % of signal / std of those sums."""
    image, invvar = _coadd()
    good = invvar > 0
    arc = _footprint(image.shape, r0, r1, centre=(75, 20))
    res = M.arc_snr(arc[None], invvar[None], good[None], sky_image=image[None])
    sel = M.arc_pixels(arc[None], good[None])[0]
    # empirical: the footprint at every position where all its pixels are sky pixels
    sky = N.sky_pixels(image[None], invvar[None], good[None])[0]
    clean = image - N.local_background(image[None], sky[None])[0]
    ys, xs = np.nonzero(sel)
    ys, xs = ys - ys.min(), xs - xs.min()
    h, w = ys.max() + 1, xs.max() + 1
    sums = [clean[y + ys, x + xs].sum() for y in range(image.shape[0] - h) for x in range(image.shape[1] - w)
            if sky[y + ys, x + xs].all()]
    assert len(sums) > 500
    empirical = arc[sel].sum() / np.std(sums)
    assert res["arc_snr"][0] == pytest.approx(empirical, rel=0.10)
    # this coadd's noise is strongly correlated: independent pixels overstate the SNR
    assert res["arc_snr_white"][0] > 1.5 * empirical
    assert res["arc_noise_corr"][0] > 1.5


def test_white_noise_gives_no_correction():
    rng = np.random.default_rng(5)
    iv = np.full((20, 64, 64), 1e4)
    image = rng.normal(0, 0.01, iv.shape)
    arc = np.broadcast_to(_footprint((64, 64), 4, 8), iv.shape)
    res = M.arc_snr(arc, iv, iv > 0, sky_image=image)
    assert np.median(res["arc_noise_corr"]) == pytest.approx(1.0, abs=0.05)
    sel = M.arc_pixels(arc, iv > 0)[0]
    assert np.allclose(res["arc_snr_white"], arc[0][sel].sum() / np.sqrt(sel.sum() * 1e-4))
