"""The arc finder: its parts against direct references (photutils segmentation, per-annulus
medians, moments of a known ellipse), and its scores on mock-survey LRGs with and without arcs
rendered by dhs's renderer."""

from __future__ import annotations

import numpy as np
import pytest

from dhs.finders import kernels, lenslight, segments
from dhs.finders.arcfinder import ArcFinderSettings, score_batch
from dhs.finders.base import FinderError
from tests.finders.mock_stamps import arcs


def test_batch_segmentation_is_photutils_detect_sources_per_stamp():
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(0)
    values = gaussian_filter(rng.normal(0, 1, (12, 40, 40)), (0, 1.5, 1.5)) * 5
    valid = rng.uniform(size=values.shape) > 0.05
    a, ma = segments.label_batch(values, 1.0, valid)
    b, mb = segments.label_photutils(values, 1.0, valid)
    assert ma == mb > 50
    np.testing.assert_array_equal(a, b)


def _direct_model(vals, good, r_ell, bin_pix):
    """np.median per (stamp, channel, annulus), empty annuli filled, then np.interp in radius."""
    n, nc, size, _ = vals.shape
    nbin = int(np.ceil(r_ell.max() / bin_pix)) + 2
    out = np.empty(vals.shape)
    for i in range(n):
        k = np.minimum((r_ell[i] / bin_pix).astype(int), nbin - 1)
        for c in range(nc):
            med = np.array([np.median(vals[i, c][good[i] & (k == b)]) if (good[i] & (k == b)).any() else np.nan
                            for b in range(nbin)])
            have = np.flatnonzero(np.isfinite(med))
            for b in range(nbin):
                if np.isnan(med[b]):
                    inner = have[have < b]
                    med[b] = med[inner[-1]] if inner.size else med[have[0]]
            out[i, c] = np.interp(r_ell[i] / bin_pix - 0.5, np.arange(nbin), med)
    return out


@pytest.mark.parametrize("compiled", [True, False])
def test_elliptical_median_model_is_the_median_of_each_annulus(compiled, monkeypatch):
    rng = np.random.default_rng(1)
    n, size = 6, 31
    shape = lenslight.CoreShape(dx=rng.uniform(-1, 1, n), dy=rng.uniform(-1, 1, n), q=rng.uniform(0.4, 1, n),
                                phi=rng.uniform(0, np.pi, n))
    r_ell = lenslight.elliptical_radius(size, shape)
    vals = 100 * np.exp(-r_ell[:, None] / 3) + rng.normal(0, 1, (n, 2, size, size))
    good = rng.uniform(size=(n, size, size)) > 0.2
    good[0, 10:21, 10:21] = False  # empty inner annuli
    if not compiled:
        monkeypatch.setattr(kernels, "enabled", lambda: False)
    got = lenslight.elliptical_median_model(vals, good, r_ell, 1.0)
    np.testing.assert_allclose(got, _direct_model(vals, good, r_ell, 1.0), rtol=1e-9, atol=1e-9)


def test_core_shape_recovers_a_known_ellipse():
    size, q, phi, dx, dy = 41, 0.6, 0.5, 0.3, -0.4
    true = lenslight.CoreShape(dx=np.array([dx]), dy=np.array([dy]), q=np.array([q]), phi=np.array([phi]))
    img = 10 * np.exp(-0.5 * (lenslight.elliptical_radius(size, true) / 3.0) ** 2)
    got = lenslight.core_shape(img, np.ones_like(img, bool), 3.0, iterations=8)
    assert abs(got.q[0] - q) < 0.01 and abs(got.phi[0] - phi) < 0.01
    assert abs(got.dx[0] - dx) < 0.01 and abs(got.dy[0] - dy) < 0.01


def _scores(images, cut, **kw):
    return score_batch(images, cut.invvar, cut.maskbits, bands="grz", pixscale=0.262,
                       settings=ArcFinderSettings(**kw))


def test_bright_arcs_score_above_the_controls_and_fainter_arcs_lower(cutouts):
    n = len(cutouts)
    controls = _scores(cutouts.images, cutouts)
    auc, med = {}, {}
    for dmag in (1.0, 2.0, 3.5, 5.0):
        with_arc = _scores(cutouts.images + arcs(cutouts, np.full(n, 1.2), np.full(n, dmag), seed=5), cutouts)
        auc[dmag] = (with_arc.scores[:, None] > controls.scores[None, :]).mean()
        med[dmag] = np.median(with_arc.scores)
        if dmag == 1.0:  # arcs about as bright as the shipped priors' median: nearly all above every control
            assert (with_arc.scores > controls.scores.max()).mean() > 0.9
    assert controls.ok.all() and n >= 30
    # mock LRGs as faint as DR10's (r ~ 21): AUC 0.97 at 1 mag below the lens, ~0.6 at 5 mag
    assert auc[1.0] > 0.95 and auc[5.0] < 0.9, auc
    assert auc[1.0] > auc[2.0] > auc[3.5] > auc[5.0], auc
    assert med[1.0] > med[2.0] > med[3.5] > med[5.0], med


def test_a_stamp_scores_the_same_alone_and_in_any_batch(cutouts):
    n = len(cutouts)
    images = cutouts.images + arcs(cutouts, np.full(n, 1.0), np.full(n, 3.0), seed=6)
    whole = _scores(images, cutouts)
    for i in (0, n // 2, n - 1):
        one = score_batch(images[i:i + 1], cutouts.invvar[i:i + 1], cutouts.maskbits[i:i + 1], bands="grz",
                          pixscale=0.262)
        assert one.scores[0] == whole.scores[i]


def test_stamps_without_pixels_are_flagged_and_settings_checked(cutouts):
    images, invvar = cutouts.images[:4].copy(), cutouts.invvar[:4].copy()
    invvar[1] = 0.0
    images[2] = np.nan
    res = score_batch(images, invvar, cutouts.maskbits[:4], bands="grz", pixscale=0.262)
    assert list(res.reason) == ["", "no_pixels", "no_pixels", ""]
    assert np.isnan(res.scores[[1, 2]]).all() and np.isfinite(res.scores[[0, 3]]).all()
    with pytest.raises(FinderError, match="red_band"):
        score_batch(images[:, :2], invvar[:, :2], cutouts.maskbits[:4], bands="gr", pixscale=0.262)
    with pytest.raises(FinderError, match="lens_subtraction"):
        ArcFinderSettings(lens_subtraction="fit")
    with pytest.raises(FinderError, match="mask_bits"):
        ArcFinderSettings(mask_bits=("BRIGHTSTAR",))
