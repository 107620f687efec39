"""Noise that COSMOS templates carry into DR10 stamps: raw HST stamps against the clean bank.

The 100 real COSMOS F814W galaxies shipped with dhs (dhs/data/cosmos). "raw" is what the earlier
bank stored: the noise-mean-subtracted stamp cropped to 96x96 about the light centroid (all its
noise included); "clean" is :func:`dhs.cosmos.galaxy.prepare_template` (photutils segment, noise
pixels zeroed, denoised, SNR floor). Measured per template:

- template SNR: flux / (sigma sqrt(N_pix)) with N_pix the pixels that carry noise (white-noise
  definition) and flux / exact noise of the summed template with the catalog's correlation
  function (``acs_I_unrot_sci_20_cf.fits``);
- negative flux fraction: -sum(negative pixels) / sum(pixels).

Per stamp (4 lensed stamps per template, SIE + shear at theta_E, offsets and angles as the
manifest draws them, r band, Moffat FWHM 1.0-1.6 arcsec, 5-sigma depth 23.6 or 24.2 as in the
mock survey): the HST noise in the stamp is the render of (template of stamp + a new
realization of the correlated HST noise) minus the render of the template, scaled by the
injected flux, in units of the DR10 sky sigma per pixel; its maximum |value| over the stamp and
its RMS over the arc (pixels above 10 % of the arc's peak); the most negative arc pixel in sky
sigma; negative magnifications. Two brightness regimes: "grid" (source r = lens r U(19, 21.5) +
src_dmag of grid_sota, the earlier system's rule) and "faint" (unlensed source r U(23, 25)).

HST PSF (dhs.cosmos.hstpsf): "deconvolved" templates are the clean ones with the HST PSF
replaced by the 0.07 arcsec Gaussian target (the bank's default). Their template SNR and stamp
noise are reported like the others; the renders of the deconvolved against the PSF-left-in
templates of the same galaxies (seeing 0.9 and 1.2 arcsec) give the relative L2 and peak
difference by tangential stretch at the primary image. Against an analytic truth: GalSim Sersic
profiles (n 1, 2; half-light radius 0.12-0.3 arcsec) convolved with a real catalog PSF plus the
real ACS noise at three stamp fluxes (300: noise negligible; 10; 2.3, the embedded median),
lensed by 16 SIE lenses near the caustic and rendered at seeing 0.9 and 1.3 arcsec: the arc's
relative L2 with the PSF left in (against the unblurred Sersic) and removed (against the Sersic
convolved with the target, and against the unblurred Sersic), template SNR and flux.
Usage: ``python benchmarks/bench_cosmos_templates.py [--quick]``; CPU time is reported.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from dhs.cosmos import galaxy as G  # noqa: E402
from dhs.cosmos import hstpsf as H  # noqa: E402
from dhs.cosmos.catalog import embedded_root  # noqa: E402
from dhs.physics.lens import LensBatch  # noqa: E402
from dhs.physics.psf import psf_kernel  # noqa: E402
from dhs.physics.render import render_batch, stamp_center_offset  # noqa: E402
from dhs.physics.source import TemplateBatch  # noqa: E402

SIZE, PIX, STAMP = 96, 0.262, 64
TARGET = H.TARGET_FWHM_ARCSEC


def load():
    from astropy.io import fits

    root = embedded_root()
    cat = fits.getdata(f"{root}/real_galaxy_catalog_26_extension_example.fits", 1)
    rho = G.normalised_correlation(fits.getdata(f"{root}/{cat['NOISE_FILENAME'][0].strip()}"))
    with fits.open(f"{root}/real_galaxy_images_extension.fits") as h:
        stamps = [h[int(k)].data.astype(np.float64) - m for k, m in
                  zip(cat["GAL_HDU"], cat["NOISE_MEAN"])]
    with fits.open(f"{root}/real_galaxy_PSF_images_extension.fits") as h:
        psfs = [h[int(k)].data.astype(np.float64) for k in cat["PSF_HDU"]]
    return stamps, np.sqrt(cat["NOISE_VARIANCE"]), rho, psfs


def raw_template(img, sigma, rho, fixed=None):
    if fixed is None:
        c = G.clean_stamp(img, sigma, rho)
        fixed = G.light_centroid(c["values"], c["mask"])
    cut, _, _ = G.crop_or_pad(img, *fixed, SIZE)
    return cut, fixed


def clean_template(img, sigma, rho, fixed=None, psf=None):
    """The clean template (HST PSF left in, or with ``psf`` removed) on a fixed mask."""
    from scipy import ndimage

    kw = {"psf": psf, "target_fwhm_pix": TARGET / 0.03} if psf is not None else {}
    if fixed is None:
        t = G.prepare_template(img, 0.0, sigma**2, SIZE, noise_correlation=rho, **kw)
        if not 0.1 <= t.hlr_pix * 0.03 <= 1.0:
            raise G.GalaxyRejected("hlr")
        c = G.clean_stamp(img, sigma, rho, **kw)
        fixed = (c["mask"], c["negative"], t.centroid_yx, c["weights"], t.snr)
    mask, neg, centre = fixed[:3]
    if psf is None:
        smooth = ndimage.gaussian_filter(img, G.DENOISE_SIGMA_PIX, mode="constant")
        clipped = np.clip(smooth, 0.0, None)
    else:
        smooth = H.deconvolve(img, psf, TARGET / 0.03)
        clipped = H.positive_part(smooth, mask & ~neg)
    values = np.where(mask, np.where(neg, smooth, clipped), 0.0)
    return G.crop_or_pad(values, *centre, SIZE)[0], fixed


def templates(kind, stamps, sigmas, rho, per, rng, psfs):
    noisy, base, stats, keep = [], [], [], []
    for k, (img, s) in enumerate(zip(stamps, sigmas)):
        if kind == "raw":
            make = raw_template
        else:
            def make(im, sg, rh, fixed=None, _p=psfs[k] if kind == "deconvolved" else None):
                return clean_template(im, sg, rh, fixed, _p)
        try:
            b, fixed = make(img, s, rho)
        except G.GalaxyRejected:
            continue
        inside, _, _ = G.crop_or_pad(np.ones_like(img), *(fixed if kind == "raw" else fixed[2]),
                                     SIZE)
        if kind == "raw":
            noise_pix = inside
            w = inside
        else:
            noise_pix = b != 0
            w = None
        snr_white = b.sum() / (s * np.sqrt(noise_pix.sum()))
        snr_corr = b.sum() / (s * G.weighted_noise(w, rho)) if w is not None else fixed[4]
        stats.append((snr_white, snr_corr, -b[b < 0].sum() / b.sum()))
        for _ in range(per):
            a, _ = make(img + s * G.correlated_noise(img.shape, rho, rng), s, rho, fixed)
            noisy.append(a)
            base.append(b)
        keep.append(k)
    return np.array(noisy), np.array(base), np.array(stats), keep


def lenses(n, rng, stamp=STAMP):
    te = rng.choice([0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5], n)
    e = rng.uniform(0.05, 0.5, n)
    cx, cy = stamp_center_offset(stamp, PIX)
    lens = LensBatch.from_q_phi(te, (1 - e) / (1 + e), rng.uniform(0, np.pi, n),
                                rng.choice([0.0, 0.02, 0.04], n), rng.uniform(0, np.pi, n), cx, cy)
    r, a = np.sqrt(rng.uniform(0, 1, n)) * 0.8 * te, rng.uniform(0, 2 * np.pi, n)
    return lens, r * np.cos(a), r * np.sin(a), rng.uniform(0, 2 * np.pi, n)


def render(lens, x, y, ang, tpl, flux, fwhm):
    src = TemplateBatch(tpl, 0.03, x, y, ang)
    res = render_batch(lens, src, {"r": flux}, {"r": fwhm}, stamp_size=STAMP, pixscale=PIX)
    return res.images["r"].astype(np.float64), res.metrics


def stamp_noise(noisy, base, regime, rng):
    n = len(base)
    lens, x, y, ang = lenses(n, rng)
    fwhm = rng.uniform(1.0, 1.6, n)
    m5 = rng.choice([23.6, 24.2], n)
    if regime == "grid":
        mag = rng.uniform(19.0, 21.5, n) + rng.choice([0.5, 1.0, 1.5, 2.0], n)
    else:
        mag = rng.uniform(23.0, 25.0, n)
    flux = 10 ** (-0.4 * (mag - 22.5))
    sky = np.array([1 / np.sqrt(25 * 10 ** (0.8 * (m - 22.5)) / (psf_kernel(w, PIX) ** 2).sum())
                    for m, w in zip(m5, fwhm)])
    img_b, met = render(lens, x, y, ang, base, flux, fwhm)
    img_a, _ = render(lens, x, y, ang, noisy, flux, fwhm)
    scale = noisy.sum(axis=(1, 2)) / base.sum(axis=(1, 2))
    noise = (img_a * scale[:, None, None] - img_b) / sky[:, None, None]
    arc = img_b > 0.1 * img_b.max(axis=(1, 2), keepdims=True)
    return {"noise max|n|/sky": np.abs(noise).max(axis=(1, 2)),
            "noise rms in arc/sky": np.array([noise[i][arc[i]].std() for i in range(n)]),
            "arc min/sky": (img_b / sky[:, None, None]).min(axis=(1, 2)),
            "neg. magnification": (met["magnification"] < 0).astype(float)}


def row(label, v):
    v = np.asarray(v, dtype=np.float64)
    p = np.percentile(v, [10, 50, 90, 99])
    return (f"{label:34s} {p[1]:9.3g} {p[0]:9.3g} {p[2]:9.3g} {p[3]:9.3g} {v.min():9.3g} "
            f"{v.max():9.3g}")


def psf_effect(plain, deconv, rng):
    """Real templates: DR10 renders with the HST PSF removed against left in (same galaxies)."""
    plain, deconv = np.repeat(plain, 4, axis=0), np.repeat(deconv, 4, axis=0)
    lens, x, y, ang = lenses(len(plain), rng)
    out = []
    for fwhm in (0.9, 1.2):
        f = np.full(len(plain), fwhm)
        a, met = render(lens, x, y, ang, deconv, np.ones(len(plain)), f)
        b, _ = render(lens, x, y, ang, plain, np.ones(len(plain)), f)
        d = (a - b).reshape(len(a), -1)
        l2 = np.linalg.norm(d, axis=1) / np.linalg.norm(a.reshape(len(a), -1), axis=1)
        peak = np.abs(d).max(axis=1) / a.reshape(len(a), -1).max(axis=1)
        flux = np.abs(b.sum(axis=(1, 2)) / a.sum(axis=(1, 2)) - 1)
        t = met["tangential_stretch"]
        for lo, hi in ((0, 3), (3, 10), (10, np.inf)):
            sel = (t >= lo) & (t < hi)
            if sel.any():
                out.append((fwhm, f"{lo}-{hi}", int(sel.sum()), np.median(l2[sel]),
                            np.percentile(l2[sel], 90), np.median(peak[sel]), flux[sel].max()))
    return out


def analytic(psf, rho, rng):
    """Sersic truth (GalSim) x real HST PSF + ACS noise -> template; DR10 arc L2 per case."""
    import galsim

    hst = galsim.InterpolatedImage(galsim.Image(psf / psf.sum(), scale=0.03), x_interpolant="quintic")
    draw = lambda p: p.drawImage(nx=128, ny=128, scale=0.03, method="no_pixel").array  # noqa: E731
    lens, x, y, ang = lenses(16, rng)
    lens = type(lens).from_q_phi(np.full(16, 1.2), 0.8, rng.uniform(0, np.pi, 16), 0.03,
                                 rng.uniform(0, np.pi, 16), *stamp_center_offset(STAMP, PIX))
    r, a = rng.uniform(0.03, 0.35, 16), rng.uniform(0, 2 * np.pi, 16)
    x, y = r * np.cos(a), r * np.sin(a)
    sigma, rows = 2.1e-3, []
    for flux in (300.0, 10.0, 2.3):
        for n, hlr in ((1.0, 0.12), (2.0, 0.12), (1.0, 0.2), (2.0, 0.2), (1.0, 0.3), (2.0, 0.3)):
            gal = galsim.Sersic(n, half_light_radius=hlr, flux=flux).shear(q=0.6, beta=0.4 * galsim.radians)
            obs = draw(galsim.Convolve(gal, hst)).astype(np.float64)
            obs += sigma * G.correlated_noise(obs.shape, rho, rng)
            truth = draw(galsim.Convolve(gal, galsim.Gaussian(fwhm=TARGET))).astype(np.float64)
            pure = draw(gal).astype(np.float64)
            try:
                tp = G.prepare_template(obs, 0.0, sigma**2, SIZE, noise_correlation=rho, min_snr=0)
                td = G.prepare_template(obs, 0.0, sigma**2, SIZE, noise_correlation=rho, min_snr=0,
                                        psf=psf, target_fwhm_pix=TARGET / 0.03)
            except G.GalaxyRejected:
                continue
            cut = lambda im, t: G.crop_or_pad(im, *t.centroid_yx, SIZE)[0]  # noqa: E731
            for fwhm in (0.9, 1.3):
                f, ones = np.full(16, fwhm), np.ones(16)
                ims = [render(lens, x, y, ang, np.repeat(t[None], 16, 0), ones, f)[0].reshape(16, -1)
                       for t in (tp.image, cut(pure, tp), td.image, cut(truth, td), cut(pure, td))]
                l2 = lambda p, q: float(np.median(np.linalg.norm(p - q, axis=1)  # noqa: E731
                                                  / np.linalg.norm(q, axis=1)))
                rows.append((flux, n, hlr, fwhm, td.snr, tp.snr, l2(ims[0], ims[1]), l2(ims[2], ims[3]),
                             l2(ims[2], ims[4]), td.flux / truth.sum(), tp.flux / pure.sum()))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="1 stamp per template")
    args = ap.parse_args()
    t0 = time.process_time()
    stamps, sigmas, rho, psfs = load()
    per = 1 if args.quick else 4
    result = {}
    head = f"{'quantity':34s} {'median':>9s} {'p10':>9s} {'p90':>9s} {'p99':>9s} {'min':>9s} {'max':>9s}"
    bases = {}
    for kind in ("raw", "clean", "deconvolved"):
        noisy, base, stats, keep = templates(kind, stamps, sigmas, rho, per,
                                             np.random.default_rng(5), psfs)
        bases[kind] = (base[::per], keep)
        print(f"\n== {kind} templates: {len(keep)} of {len(stamps)} galaxies, {len(base)} stamps")
        print(head)
        print("-" * len(head))
        print(row("template SNR (white noise)", stats[:, 0]))
        print(row("template SNR (correlated noise)", stats[:, 1]))
        print(row("negative flux fraction", stats[:, 2]))
        for regime in ("grid", "faint"):
            m = stamp_noise(noisy, base, regime, np.random.default_rng(7))
            for name, v in m.items():
                print(row(f"[{regime}] {name}", v))
            result[f"{kind}_{regime}_noise_max_median"] = float(np.median(m["noise max|n|/sky"]))
            result[f"{kind}_{regime}_arc_min"] = float(m["arc min/sky"].min())
        result[f"{kind}_snr_white_median"] = float(np.median(stats[:, 0]))
        result[f"{kind}_neg_frac_median"] = float(np.median(stats[:, 2]))
    (plain, kp), (deconv, kd) = bases["clean"], bases["deconvolved"]
    both = sorted(set(kp) & set(kd))
    plain = plain[[kp.index(k) for k in both]]
    deconv = deconv[[kd.index(k) for k in both]]
    print(f"\n== HST PSF removed vs left in, {len(both)} real templates (4 lenses each)")
    print(f"{'seeing':>6s} {'t-stretch':>9s} {'rows':>5s} {'L2 median':>10s} {'L2 p90':>8s}"
          f" {'peak diff med':>13s} {'flux diff max':>13s}")
    for fw, band, k, l2m, l2p, pk, fl in psf_effect(plain, deconv, np.random.default_rng(9)):
        print(f"{fw:6.1f} {band:>9s} {k:5d} {l2m:10.2e} {l2p:8.2e} {pk:13.2e} {fl:13.2e}")
    print(f"\n== analytic Sersic (q 0.6) x HST PSF (catalog row 3) + ACS noise, 16 lenses theta_E 1.2 arcsec\n"
          f"   L2 medians: left in vs Sersic; removed vs Sersic x {TARGET} arcsec Gaussian; removed vs Sersic")
    print(f"{'flux':>6s} {'n':>4s} {'hlr':>5s} {'seeing':>6s} {'SNR rem':>8s} {'SNR in':>7s} "
          f"{'L2 in':>7s} {'L2 rem':>7s} {'rem/pure':>8s} {'flux rem':>8s} {'flux in':>8s}")
    rows = analytic(psfs[3], rho, np.random.default_rng(13))
    for fl, n, hlr, fw, sd, sp, a, b, c, f1, f2 in rows:
        print(f"{fl:6.1f} {n:4.1f} {hlr:5.2f} {fw:6.1f} {sd:8.1f} {sp:7.1f} {a:7.2%} {b:7.2%} {c:8.2%} "
              f"{f1:8.4f} {f2:8.4f}")
    bright = [r for r in rows if r[0] == 300.0]
    result["analytic_l2_left_in_median"] = float(np.median([r[6] for r in bright]))
    result["analytic_l2_removed_median"] = float(np.median([r[7] for r in bright]))
    result["analytic_l2_removed_max"] = float(np.max([r[7] for r in bright]))
    print(f"\n(CPU time {time.process_time() - t0:.0f} s; shared machine)")
    print("RESULT " + " ".join(f"{k}={v:.3g}" for k, v in sorted(result.items())))


if __name__ == "__main__":
    main()
