"""Re-render injected arcs with lenstronomy from the saved metrics columns: an independent check of
the renderer and of what 4c stored (``dhs stage=validate validate.target=4c``).

For each sampled row the lens (SIE + SHEAR), the source (SERSIC_ELLIPSE, or INTERPOL of the
row's COSMOS template with its recorded rotation and mirror), the per-band fluxes and PSF
(Gaussian, or a Moffat pixel kernel of the recorded beta, both sized as 4c sized them) are built
from the row's columns alone; angles and offsets go through ``dhs.physics.angles`` (the one
conversion from East of North to the stamp frame). lenstronomy renders with uniform
supersampling min(row supersample, ``MAX_SUPERSAMPLE``) and convolves after binning. The result is
compared per band with the stored arc (stamps written with ``output.save_arc=true``) or, without
it, with a fresh render by ``dhs.inject.arcs`` of the same columns: relative L2
||dhs - lenstronomy|| / ||lenstronomy|| and flux ratio - 1.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dhs.physics.angles import angle_to_stamp, offsets_to_stamp

#: Uniform supersampling cap of the lenstronomy render (its cost grows as the square).
MAX_SUPERSAMPLE = 11


def _moffat_kernel(fwhm: float, beta: float, pixscale: float, size: int) -> np.ndarray:
    alpha = fwhm / (2.0 * np.sqrt(2.0 ** (1.0 / beta) - 1.0))
    r = (np.arange(size) - size // 2) * pixscale
    rr = r[None, :] ** 2 + r[:, None] ** 2
    k = (1.0 + rr / alpha**2) ** (-beta)
    return k / k.sum()


def _gauss_kernel(fwhm: float, pixscale: float, size: int) -> np.ndarray:
    sigma = fwhm / 2.3548200450309493
    r = (np.arange(size) - size // 2) * pixscale
    k = np.exp(-0.5 * (r[None, :] ** 2 + r[:, None] ** 2) / sigma**2)
    return k / k.sum()


def lenstronomy_arc(row: dict, bands: str, pixscale: float, kernel_size: dict[str, int],
                    sersic_n: float, template: np.ndarray | None, template_scale: float) -> np.ndarray:
    """(B, S, S) arc of one metrics row rendered by lenstronomy (nanomaggies per pixel)."""
    from lenstronomy.Data.imaging_data import ImageData
    from lenstronomy.Data.psf import PSF
    from lenstronomy.ImSim.image_model import ImageModel
    from lenstronomy.LensModel.lens_model import LensModel
    from lenstronomy.LightModel.light_model import LightModel

    size = int(row["stamp_size"])
    c0 = -0.5 * (size - 1) * pixscale
    off = 0.5 * pixscale if size % 2 == 0 else 0.0  # lens on the centre of pixel (N//2, N//2)
    data = ImageData(image_data=np.zeros((size, size)), ra_at_xy_0=c0, dec_at_xy_0=c0,
                     transform_pix2angle=np.eye(2) * pixscale)
    q = (1 - row["lens_e"]) / (1 + row["lens_e"])
    phi = float(angle_to_stamp(row["lens_phi_rad"]))
    e = (1 - q) / (1 + q)
    g_phi = float(angle_to_stamp(row["shear_phi_rad"]))
    kw_lens = [{"theta_E": row["theta_e_arcsec"], "e1": e * np.cos(2 * phi), "e2": e * np.sin(2 * phi),
                "center_x": off, "center_y": off},
               {"gamma1": row["shear"] * np.cos(2 * g_phi), "gamma2": row["shear"] * np.sin(2 * g_phi),
                "ra_0": off, "dec_0": off}]
    sx, sy = offsets_to_stamp(row["src_x_arcsec"], row["src_y_arcsec"])
    cx, cy = off + float(sx), off + float(sy)
    if template is not None:
        t = np.asarray(template, dtype=np.float64)
        if int(row["cosmos_flip"]) == 1:
            t = t[:, ::-1]
        name = "INTERPOL"
        unit = {"image": t / template_scale**2, "amp": 1.0 / t.sum(), "center_x": cx, "center_y": cy,
                "phi_G": float(angle_to_stamp(row["cosmos_rotation_rad"])) - 0.5 * np.pi,
                "scale": template_scale}
    else:
        sp = float(angle_to_stamp(row["src_phi_rad"]))
        name = "SERSIC_ELLIPSE"
        unit = {"amp": 1.0, "R_sersic": row["src_reff_arcsec"], "n_sersic": sersic_n,
                "e1": row["src_e"] * np.cos(2 * sp), "e2": row["src_e"] * np.sin(2 * sp),
                "center_x": cx, "center_y": cy}
    light = LightModel([name])
    unit["amp"] = unit["amp"] / float(light.total_flux([unit])[0])  # unit total flux
    mags = {"r": row["src_mag_r"], "g": row["src_mag_r"] + row["src_gr"], "z": row["src_mag_r"] - row["src_rz"],
            "i": row["src_mag_r"] - 0.5 * row["src_rz"]}
    ss = int(min(max(int(row.get("supersample", 5)), 1), MAX_SUPERSAMPLE))
    out = []
    for b in bands:
        fwhm = float(row[f"psf_fwhm_used_{b}"])
        k = kernel_size[b]
        if str(row["psf_model"]) == "moffat":
            kernel = _moffat_kernel(fwhm, float(row["moffat_beta"]), pixscale, k)
        else:
            kernel = _gauss_kernel(fwhm, pixscale, k)
        model = ImageModel(data, PSF(psf_type="PIXEL", kernel_point_source=kernel),
                           lens_model_class=LensModel(["SIE", "SHEAR"]), source_model_class=light,
                           kwargs_numerics={"supersampling_factor": ss, "supersampling_convolution": False})
        kw = dict(unit, amp=unit["amp"] * 10 ** (-0.4 * (mags[b] - 22.5)))
        out.append(model.image(kwargs_lens=kw_lens, kwargs_source=[kw]))
    arc = np.stack(out)
    radius = float(row.get("core_mask_radius", 0.0) or 0.0)
    if radius > 0:
        yy, xx = np.indices((size, size))
        arc[:, np.hypot(yy - size // 2, xx - size // 2) < radius] = 0.0
    return arc


def compare(ours: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    """(relative L2, flux ratio - 1) of one band."""
    norm = float(np.linalg.norm(ref))
    l2 = float(np.linalg.norm(ours - ref) / norm) if norm > 0 else float("nan")
    flux = float(ours.sum() / ref.sum() - 1.0) if ref.sum() != 0 else float("nan")
    return l2, flux


def summarize(per_row: list[dict[str, Any]], bands: str, l2_tol: float, flux_tol: float) -> dict:
    """Per band: median and max relative L2 and |flux error|, and whether all are in tolerance."""
    out: dict[str, Any] = {"rows": len(per_row), "l2_tolerance": l2_tol, "flux_tolerance": flux_tol,
                           "bands": {}}
    ok = bool(per_row)
    for b in bands:
        l2 = np.array([r[f"l2_{b}"] for r in per_row], dtype=float)
        fl = np.abs(np.array([r[f"flux_{b}"] for r in per_row], dtype=float))
        if not len(l2):
            continue
        band_ok = bool(np.all(l2 <= l2_tol) and np.all(fl <= flux_tol))
        ok &= band_ok
        out["bands"][b] = {"l2_median": float(np.median(l2)), "l2_max": float(l2.max()),
                           "flux_median": float(np.median(fl)), "flux_max": float(fl.max()),
                           "ok": band_ok}
    out["ok"] = ok
    return out


def sample_rows(df: Any, n: int, seed: int) -> Any:
    """The ``n`` injected, valid rows with the smallest u(task, 'validate_rerender', seed): a
    random sample that is a pure function of the task ids."""
    from dhs import draws

    inj = df[(df["is_control"] == 0) & (df["metrics_ok"] == 1)]
    if inj.empty or n <= 0:
        return inj.iloc[:0]
    u = draws.uniform(draws.draw_key_from_task_ids(inj["task_id"].astype(str).tolist()), "validate_rerender", seed)
    return inj.iloc[np.argsort(u, kind="stable")[:n]]


def run_check(df: Any, s: Any, stamps_uri: str | None, bank: Any, n: int, seed: int,
              l2_tol: float, flux_tol: float) -> dict:
    """Re-render ``n`` sampled rows of a metrics table with lenstronomy; ``s``: the 4c settings
    (``dhs.inject.settings.InjectSettings``); ``bank``: the COSMOS bank (None for Sersic)."""
    from dhs.errors import DhsError
    from dhs.inject import arcs as inj

    rows = sample_rows(df, n, seed)
    if rows.empty:
        return {"rows": 0, "ok": False, "reference": None, "detail": "no valid injected rows", "bands": {}}
    bands = str(rows["bandset"].iloc[0])
    size = int(rows["stamp_size"].iloc[0])
    stored = None
    if stamps_uri:
        from dhs.io.stamps import read_stamps, to_numpy

        try:
            t = read_stamps(stamps_uri, rows["task_id"].tolist(), columns=["task_id", "arc"])
            order = {tid: i for i, tid in enumerate(t.column("task_id").to_pylist())}
            arr = to_numpy(t, "arc", bands=len(bands), size=size)
            stored = {tid: arr[i] for tid, i in order.items()}
        except (DhsError, ValueError):  # no arc column: compare with a fresh render
            stored = None
    reference = "stored arc" if stored else "dhs re-render of the saved columns"
    ksize = {b: s.psf.kernel_size_pix(1.0, s.pixscale_arcsec, size) for b in bands}
    per_row = []
    cols = {c: rows[c].to_numpy() for c in rows.columns}
    for k in range(len(rows)):
        row = {c: cols[c][k] for c in cols}
        for b in bands:
            ksize[b] = s.psf.kernel_size_pix(float(row[f"psf_fwhm_used_{b}"]), s.pixscale_arcsec, size)
        tpl = None
        if int(row.get("cosmos_index", -1)) >= 0 and bank is not None:
            tpl = bank.images[int(row["cosmos_index"])]
        ref = lenstronomy_arc(row, bands, s.pixscale_arcsec, ksize, float(s.source.sersic_n or 1.0), tpl,
                              float(bank.pixscale) if bank is not None else 0.03)
        if stored is not None and row["task_id"] in stored:
            ours = stored[row["task_id"]].astype(np.float64)
        else:
            fwhm = np.array([[float(row[f"psf_fwhm_used_{b}"]) for b in bands]])
            one = {c: np.asarray([cols[c][k]]) for c in cols}
            ours = inj.render_rows(s, one, np.array([0]), fwhm, bands, size, bank,
                                   np.array([int(row.get("cosmos_index", -1))]))[0][0].astype(np.float64)
            if s.core_mask_radius_pix > 0:
                from dhs.inject.metrics import core_mask

                ours[:, core_mask(size, s.core_mask_radius_pix)] = 0.0
        rec: dict[str, Any] = {"task_id": row["task_id"]}
        for j, b in enumerate(bands):
            rec[f"l2_{b}"], rec[f"flux_{b}"] = compare(ours[j], ref[j])
        per_row.append(rec)
    out = summarize(per_row, bands, l2_tol, flux_tol)
    out.update({"reference": reference, "per_row": per_row})
    return out
