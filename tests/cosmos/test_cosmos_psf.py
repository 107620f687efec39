"""HST PSF removal (dhs.cosmos.hstpsf) against an analytic truth.

A Sersic galaxy is drawn by GalSim at the COSMOS pixel scale, convolved with a real HST PSF of
the embedded catalog (its PSF_HDU in real_galaxy_PSF_images_extension.fits), given the real
drizzled ACS noise, and cleaned with and without the deconvolution. Both templates and the truth
(the same Sersic convolved with the target Gaussian instead) are lensed and rendered by dhs at
DR10 pixels and 0.9-1.3 arcsec seeing.
"""

from __future__ import annotations

import numpy as np
import pytest

from dhs.cosmos import galaxy as G
from dhs.cosmos import hstpsf as H
from dhs.cosmos.catalog import embedded_root

from .conftest import copy_embedded, edit_catalog, settings

PIX, N, SIZE, SIGMA = 0.03, 128, 96, 2.1e-3
TARGET = H.TARGET_FWHM_ARCSEC


@pytest.fixture(scope="module")
def real():
    """(rho, PSF image of catalog row 3)."""
    from astropy.io import fits

    root = embedded_root()
    cat = fits.getdata(f"{root}/real_galaxy_catalog_26_extension_example.fits", 1)
    rho = G.normalised_correlation(fits.getdata(f"{root}/{cat['NOISE_FILENAME'][3].strip()}"))
    psf = fits.getdata(f"{root}/{cat['PSF_FILENAME'][3].strip()}", int(cat["PSF_HDU"][3]))
    return rho, np.asarray(psf, dtype=np.float64)


def draw(profile) -> np.ndarray:
    return profile.drawImage(nx=N, ny=N, scale=PIX, method="no_pixel").array.astype(np.float64)


def sersic_case(psf, rho, n, hlr, flux, seed):
    """(observed stamp, truth: Sersic x target Gaussian, pure Sersic), all N x N, stamp units."""
    import galsim

    gal = galsim.Sersic(n, half_light_radius=hlr, flux=flux).shear(q=0.6, beta=0.4 * galsim.radians)
    hst = galsim.InterpolatedImage(galsim.Image(psf / psf.sum(), scale=PIX), x_interpolant="quintic")
    obs = draw(galsim.Convolve(gal, hst))
    obs += SIGMA * G.correlated_noise(obs.shape, rho, np.random.default_rng(seed))
    return obs, draw(galsim.Convolve(gal, galsim.Gaussian(fwhm=TARGET))), draw(gal)


def arcs(templates, fwhm, n=8, seed=3):
    """Lensed r-band arcs (n lenses near the caustic, theta_E 1.2 arcsec) of each template."""
    from dhs.physics.lens import LensBatch
    from dhs.physics.render import render_batch, stamp_center_offset
    from dhs.physics.source import TemplateBatch

    rng = np.random.default_rng(seed)
    cx, cy = stamp_center_offset(64)
    lens = LensBatch.from_q_phi(np.full(n, 1.2), 0.8, rng.uniform(0, np.pi, n), 0.03,
                                rng.uniform(0, np.pi, n), cx, cy)
    r, a = rng.uniform(0.03, 0.35, n), rng.uniform(0, 2 * np.pi, n)
    ang = rng.uniform(0, 2 * np.pi, n)
    out = []
    for t in templates:
        src = TemplateBatch(np.repeat(np.asarray(t, np.float32)[None], n, 0), PIX,
                            r * np.cos(a), r * np.sin(a), ang)
        res = render_batch(lens, src, {"r": np.ones(n)}, {"r": np.full(n, fwhm)}, stamp_size=64)
        out.append(res.images["r"].astype(np.float64).reshape(n, -1))
    return out


def rel_l2(a, b) -> np.ndarray:
    return np.linalg.norm(a - b, axis=1) / np.linalg.norm(b, axis=1)


def template_pair(obs, psf, rho):
    plain = G.prepare_template(obs, 0.0, SIGMA**2, SIZE, noise_correlation=rho)
    deconv = G.prepare_template(obs, 0.0, SIGMA**2, SIZE, noise_correlation=rho, psf=psf,
                                target_fwhm_pix=TARGET / PIX)
    return plain, deconv


def cut(img, t):
    return G.crop_or_pad(img, *t.centroid_yx, SIZE)[0]


def test_deconvolved_psf_is_the_target_gaussian(real):
    _, psf = real
    sigma_t = TARGET / PIX / H.FWHM_PER_SIGMA
    k = H.kernel_image(psf, TARGET / PIX)
    assert k.sum() == pytest.approx(1.0, abs=2e-3)  # K(0) = 1: flux conserved
    big = np.zeros((129, 129))
    big[64 - psf.shape[0] // 2:64 + psf.shape[0] // 2 + 1,
        64 - psf.shape[1] // 2:64 + psf.shape[1] // 2 + 1] = psf / psf.sum()
    res = H.deconvolve(big, psf, TARGET / PIX)
    yy, xx = np.indices(res.shape)
    r2 = (yy - 64.0) ** 2 + (xx - 64.0) ** 2
    inner = r2 < 25 ** 2

    def width(img):  # sqrt of the second moment per axis (pixels) within 25 pixels
        return np.sqrt((img * r2)[inner].sum() / img[inner].sum() / 2)

    # the HST PSF (second-moment width 3.7 pixels, wings included) becomes the 0.07 arcsec
    # Gaussian (1 pixel) with shallow ringing
    assert width(big) > 3 * sigma_t
    assert width(res) == pytest.approx(sigma_t, rel=0.03)
    assert res.min() > -0.06 * res.max()


@pytest.mark.parametrize("n,hlr", [(1.0, 0.2), (2.0, 0.12)])
def test_arcs_of_the_deconvolved_template_match_the_truth(real, n, hlr):
    rho, psf = real
    obs, truth, pure = sersic_case(psf, rho, n, hlr, flux=300.0, seed=int(10 * hlr))
    plain, deconv = template_pair(obs, psf, rho)
    for fwhm in (0.9, 1.3):
        a_plain, a_truth_plain = arcs([plain.image, cut(pure, plain)], fwhm)
        a_dec, a_truth = arcs([deconv.image, cut(truth, deconv)], fwhm)
        without, with_ = np.median(rel_l2(a_plain, a_truth_plain)), np.median(rel_l2(a_dec, a_truth))
        assert without > 0.05  # the HST PSF left in: arcs off by more than 5 %
        assert with_ <= 0.01, (fwhm, with_)
        assert rel_l2(a_dec, a_truth).max() <= 0.015


def test_flux_is_conserved(real):
    rho, psf = real
    obs, truth, _ = sersic_case(psf, rho, 1.0, 0.2, flux=1000.0, seed=4)
    _, deconv = template_pair(obs, psf, rho)
    assert deconv.flux == pytest.approx(truth.sum(), rel=0.005)


def test_no_new_negative_pixels_or_ringing_outside_the_segment(real):
    rho, psf = real
    obs, _, _ = sersic_case(psf, rho, 1.0, 0.2, flux=5.0, seed=8)
    c = G.clean_stamp(obs, SIGMA, rho, psf=psf, target_fwhm_pix=TARGET / PIX)
    assert c["values"].min() >= 0.0 and not c["negative"].any()
    assert np.count_nonzero(c["values"][~c["mask"]]) == 0
    # the raw deconvolved stamp does ring and go negative: the masking and positivity matter
    assert H.deconvolve(obs, psf, TARGET / PIX)[c["mask"]].min() < -3 * SIGMA


def test_positivity_adds_less_pedestal_than_clipping_did(real):
    """On pure noise in a fixed mask the flux-conserving positivity leaves a smaller mean than
    the clipping of the 1-pixel denoised stamp (the pedestal the earlier bank carried)."""
    from scipy import ndimage

    rho, psf = real
    noise = G.correlated_noise((N, N), rho, np.random.default_rng(0))
    yy, xx = np.indices((N, N))
    mask = np.hypot(yy - 64, xx - 64) < 40
    old = np.clip(ndimage.gaussian_filter(noise, G.DENOISE_SIGMA_PIX, mode="constant"), 0, None)
    new = H.positive_part(H.deconvolve(noise, psf, TARGET / PIX), mask)
    assert new.min() >= 0.0 and np.count_nonzero(new[~mask]) == 0
    assert new[mask].mean() < 0.85 * old[mask].mean()


def test_template_snr_after_deconvolution_matches_monte_carlo(real):
    rho, psf = real
    obs, _, _ = sersic_case(psf, rho, 1.0, 0.2, flux=1.2, seed=2)
    c = G.clean_stamp(obs, SIGMA, rho, psf=psf, target_fwhm_pix=TARGET / PIX)
    t = G.prepare_template(obs, 0.0, SIGMA**2, SIZE, noise_correlation=rho, min_snr=0, psf=psf,
                           target_fwhm_pix=TARGET / PIX)
    rng = np.random.default_rng(12)
    taper = H.edge_taper(c["mask"])
    assert taper.max() > 0.999 and np.all(taper[~c["mask"]] == 0)
    sums = [(taper * H.deconvolve(obs + SIGMA * G.correlated_noise(obs.shape, rho, rng), psf,
                                  TARGET / PIX)).sum() for _ in range(120)]
    assert t.flux / np.std(sums) == pytest.approx(t.snr, rel=0.15)


def test_bank_with_and_without_psf_handling(tmp_path, embedded_bank):
    import json

    from dhs.cosmos.bank import bank_config, load_bank
    from dhs.cosmos.build import build_bank

    on = load_bank(embedded_bank[0])
    out = tmp_path / "psf_left_in.h5"
    summary = build_bank(settings(deconvolve_psf=False), str(out))
    off = load_bank(str(out))
    assert json.loads(on.attrs["psf_handling"])["target_fwhm_arcsec"] == TARGET
    assert json.loads(off.attrs["psf_handling"])["deconvolve_psf"] is False
    assert bank_config(on)["deconvolve_psf"] and not bank_config(off)["deconvolve_psf"]
    assert not summary["psf_handling"]["deconvolve_psf"]
    assert "real_galaxy_PSF_images_extension.fits" in json.loads(on.attrs["input_sha256"])
    common, ia, ib = np.intersect1d(on.ident, off.ident, return_indices=True)
    assert len(common) >= 40
    diff = np.abs(on.images[ia] - off.images[ib]).sum(axis=(1, 2))
    assert np.all(diff > 0.05)  # every template changed by more than 5 % of its flux (L1)
    # sharper: the peak rises, the same galaxies flag no negative structure either way
    assert np.median(on.images[ia].max(axis=(1, 2)) / off.images[ib].max(axis=(1, 2))) > 1.3
    np.testing.assert_array_equal(on.columns["negative_structure"][ia],
                                  off.columns["negative_structure"][ib])


def test_missing_psf_columns_and_hdus(tmp_path):
    from numpy.lib import recfunctions as rfn

    from dhs.cosmos.build import build_bank
    from dhs.cosmos.catalog import CatalogError

    folder = copy_embedded(tmp_path / "cat")

    def bad_hdu(data):
        data["PSF_HDU"][:5] = 999
    edit_catalog(folder, bad_hdu)
    summary = build_bank(settings(input=str(folder), max_galaxies=3), str(tmp_path / "a.h5"))
    assert summary["skipped"]["missing_psf"] == 5

    from astropy.io import fits

    path = folder / "real_galaxy_catalog_26_extension_example.fits"
    with fits.open(path) as hdul:
        data = rfn.drop_fields(np.asarray(hdul[1].data), ["PSF_FILENAME", "PSF_HDU"])
        fits.HDUList([hdul[0].copy(), fits.BinTableHDU(data)]).writeto(path, overwrite=True)
    with pytest.raises(CatalogError, match="deconvolve_psf=false"):
        build_bank(settings(input=str(folder)), str(tmp_path / "b.h5"))
    assert build_bank(settings(input=str(folder), deconvolve_psf=False, max_galaxies=3),
                      str(tmp_path / "c.h5"))["kept"] == 3


def test_edge_taper_keeps_the_noise_weights_bounded(real):
    """Cut by a hard mask, the sharpening filter's adjoint overshoots at the edge (weights > 2
    inside, < -0.8 outside), amplifying the selection bias of the noise at the mask edge; the
    taper brings them to about [-0.4, 1.4]."""
    _, psf = real
    yy, xx = np.indices((N, N))
    mask = np.hypot((yy - 64) / 0.6, xx - 64) < 14
    hard = H.noise_weights(mask.astype(float), psf, TARGET / PIX)
    soft = H.noise_weights(H.edge_taper(mask), psf, TARGET / PIX)
    assert hard.max() > 2.0 and hard.min() < -0.8
    assert soft.max() < 1.5 and soft.min() > -0.4
    assert soft.sum() == pytest.approx(H.edge_taper(mask).sum(), rel=1e-4)
