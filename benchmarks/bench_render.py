"""Stamps per second and accuracy of dhs.physics.render against lenstronomy.

One core, 64x64 stamps, 3 bands (g, r, z), Moffat PSF; Sersic and COSMOS-like
template sources (clumpy, zero outside the galaxy like the clean COSMOS bank); supersampling
1, 3, 5 and the default (adaptive, a factor per stamp from source size and stretch; the
lenstronomy column uses its uniform factor 5 there). Accuracy:
median / max relative L2 (r band) against uniform supersampling 11 and against
lenstronomy at the same supersampling. Rates are stamps per CPU second of this
single-threaded process pinned to one core (``time.process_time``), which equals wall
time on an idle machine and stays meaningful on a shared one. ``dhs`` uses the
compiled kernels when numba is importable (``DHS_NUMBA=0``: the NumPy path); the
first-call line reports the one-off kernel load (compile on a cold numba cache).
Usage: ``python benchmarks/bench_render.py [--quick]``.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import time  # noqa: E402

import numpy as np  # noqa: E402

from dhs.physics import kernels  # noqa: E402
from dhs.physics.lens import LensBatch  # noqa: E402
from dhs.physics.psf import psf_kernel  # noqa: E402
from dhs.physics.render import render_batch, stamp_center_offset  # noqa: E402
from dhs.physics.source import SersicBatch, TemplateBatch, sersic_amplitude  # noqa: E402

N, PIX, BANDS = 64, 0.262, ("g", "r", "z")


def cosmos_like(rng: np.random.Generator, n: int, size: int = 96) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size] - 0.5 * (size - 1)
    out = np.empty((n, size, size))
    for k in range(n):
        q, pa, re = rng.uniform(0.4, 1.0), rng.uniform(0, np.pi), rng.uniform(4.0, 12.0)
        xr = np.cos(pa) * xx + np.sin(pa) * yy
        yr = -np.sin(pa) * xx + np.cos(pa) * yy
        img = np.exp(-np.hypot(xr * np.sqrt(q), yr / np.sqrt(q)) / re)
        for _ in range(rng.integers(2, 7)):
            cx, cy = rng.normal(0, 1.5 * re, 2)
            w = rng.uniform(1.0, 3.0)
            img += rng.uniform(0.1, 0.6) * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * w * w))
        noisy = img + rng.normal(0, 2e-3, (size, size))
        out[k] = np.where(img > 2e-2 * img.max(), np.clip(noisy, 0.0, None), 0.0)
    return out


def make_job(n: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    cx, cy = stamp_center_offset(N, PIX)
    lens = LensBatch.from_q_phi(rng.uniform(0.8, 2.0, n), rng.uniform(0.5, 1.0, n),
                                rng.uniform(0, np.pi, n), rng.uniform(0, 0.1, n),
                                rng.uniform(0, np.pi, n), cx, cy)
    off = rng.uniform(-0.4, 0.4, (2, n))
    tpl = TemplateBatch(cosmos_like(rng, n), 0.03, off[0], off[1], rng.uniform(0, 2 * np.pi, n))
    ser = SersicBatch.from_q_phi(rng.uniform(0.2, 0.6, n), rng.uniform(0.7, 2.5, n),
                                 rng.uniform(0.5, 1.0, n), rng.uniform(0, np.pi, n),
                                 off[0], off[1])
    flux = {b: rng.uniform(2, 20, n) for b in BANDS}
    fwhm = {b: rng.uniform(1.0, 1.6, n) for b in BANDS}
    return {"lens": lens, "template": tpl, "sersic": ser, "flux": flux, "fwhm": fwhm}


def lenstronomy_render(job: dict, kind: str, k: int, ss: int) -> dict[str, np.ndarray]:
    """One stamp, 3 bands, ImageModel built afresh as a user script would."""
    from lenstronomy.Data.imaging_data import ImageData
    from lenstronomy.Data.psf import PSF
    from lenstronomy.ImSim.image_model import ImageModel
    from lenstronomy.LensModel.lens_model import LensModel
    from lenstronomy.LightModel.light_model import LightModel

    lens, src = job["lens"], job[kind]
    kw_lens = [{"theta_E": lens.theta_E[k], "e1": lens.e1[k], "e2": lens.e2[k],
                "center_x": lens.center_x[k], "center_y": lens.center_y[k]},
               {"gamma1": lens.gamma1[k], "gamma2": lens.gamma2[k],
                "ra_0": lens.center_x[k], "dec_0": lens.center_y[k]}]
    cx, cy = lens.center_x[k] + src.x[k], lens.center_y[k] + src.y[k]
    out = {}
    for b in BANDS:
        f = job["flux"][b][k]
        if kind == "sersic":
            name, kw = "SERSIC_ELLIPSE", {
                "amp": float(sersic_amplitude(f, src.R_sersic[k], src.n_sersic[k])),
                "R_sersic": src.R_sersic[k], "n_sersic": src.n_sersic[k], "e1": src.e1[k],
                "e2": src.e2[k], "center_x": cx, "center_y": cy}
        else:
            t = src.templates[k]
            name, kw = "INTERPOL", {"image": t / src.pixscale[k] ** 2, "amp": f / t.sum(),
                                    "center_x": cx, "center_y": cy, "phi_G": src.angle[k],
                                    "scale": src.pixscale[k]}
        c0 = -0.5 * (N - 1) * PIX
        data = ImageData(image_data=np.zeros((N, N)), ra_at_xy_0=c0, dec_at_xy_0=c0,
                         transform_pix2angle=np.eye(2) * PIX)
        psf = PSF(psf_type="PIXEL", kernel_point_source=psf_kernel(job["fwhm"][b][k], PIX))
        model = ImageModel(data, psf, lens_model_class=LensModel(["SIE", "SHEAR"]),
                           source_model_class=LightModel([name]),
                           kwargs_numerics={"supersampling_factor": ss,
                                            "supersampling_convolution": False})
        out[b] = model.image(kwargs_lens=kw_lens, kwargs_source=[kw])
    return out


def rel_l2(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a.reshape(a.shape[0], -1).astype(np.float64)
    b = b.reshape(b.shape[0], -1).astype(np.float64)
    return np.linalg.norm(a - b, axis=1) / np.linalg.norm(b, axis=1)


def dhs_run(job: dict, kind: str, ss: int | None, dtype: type = np.float32):
    return render_batch(job["lens"], job[kind], job["flux"], job["fwhm"], stamp_size=N,
                        pixscale=PIX, supersample=ss, dtype=dtype)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="small samples, under 60 s")
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    n_dhs, n_lt, n_acc = (192, 3, 3) if args.quick else (1024, 12, 12)
    job = make_job(n_dhs)
    settings: list[int | None] = [1, 3, 5, None]
    t0 = time.perf_counter()
    dhs_run(make_job(2, seed=1), "template", None)
    dhs_run(make_job(2, seed=1), "sersic", None)
    first_call = time.perf_counter() - t0
    lenstronomy_render(job, "template", 0, 1)
    lenstronomy_render(job, "sersic", 0, 1)
    rows = []
    result = {}
    for kind in ("template", "sersic"):
        ref11 = dhs_run(job, kind, 11, np.float64).images["r"][:64]
        dhs_run(job, kind, None)
        for ss in settings:
            t0 = time.process_time()
            res = dhs_run(job, kind, ss)
            dt = time.process_time() - t0
            rate = n_dhs / dt
            e11 = rel_l2(res.images["r"][:64], ref11)
            lt_ss = 5 if ss is None else ss
            t0 = time.process_time()
            lt = [lenstronomy_render(job, kind, k, lt_ss) for k in range(n_lt)]
            lt_rate = n_lt / (time.process_time() - t0)
            lt_imgs = np.stack([d["r"] for d in lt])
            e_lt = rel_l2(res.images["r"][:n_lt], lt_imgs)
            lt11 = rel_l2(lt_imgs[:n_acc], ref11[:n_acc]) if ss is not None else [np.nan]
            label = "default" if ss is None else f"ss{ss}"
            rows.append((kind, label, rate, lt_rate, np.median(e11), np.max(e11),
                         float(np.max(e_lt)), float(np.median(lt11))))
            if kind == "template" and ss is None:
                result = {"dhs": rate, "lt": lt_rate, "e11": float(np.median(e11))}
    head = (f"{'source':9s} {'setting':10s} {'dhs st/s':>9s} {'lenstr st/s':>11s} "
            f"{'ratio':>7s} {'dhs L2 vs ss11 med/max':>23s} {'dhs vs lenstr max':>17s} "
            f"{'lenstr vs ss11':>14s}")
    print(head)
    print("-" * len(head))
    for kind, label, rate, lt_rate, med, mx, elt, lt11 in rows:
        print(f"{kind:9s} {label:10s} {rate:9.1f} {lt_rate:11.1f} {rate / lt_rate:7.1f} "
              f"{med:11.2e}/{mx:.2e} {elt:17.2e} {lt11:14.2e}")
    print("(lenstronomy column for default is its uniform ss5; dhs images are float32)")
    print(f"dhs kernels: {'numba' if kernels.enabled() else 'numpy'}; first call (kernel load"
          f" or compile, 2 stamps each source) {first_call:.2f} s")
    print(f"RESULT render_stamps_per_s={result['dhs']:.1f} "
          f"lenstronomy_stamps_per_s={result['lt']:.1f} "
          f"ratio={result['dhs'] / result['lt']:.1f} rel_l2_vs_ss11={result['e11']:.3e}")


if __name__ == "__main__":
    main()
