"""Injection of lensed arcs into the stamps of one brick: sources, PSF choice, rendering, metrics.

Physics comes from ``dhs.physics`` (pure); this module maps manifest rows to its inputs and its
outputs to metric columns. Conventions:
- the lens sits on the centre of stamp pixel (N//2, N//2), where the target galaxy is cut;
- angles (lens_phi_rad, shear_phi_rad, src_phi_rad) are counter-clockwise from the stamp's +x
  axis (columns), y along rows; source offsets src_x/y_arcsec are in that frame;
- source fluxes: r = src_mag_r, g = r + src_gr, z = r - src_rz, i = r - src_rz / 2 (AB mag ->
  nanomaggies with zero point 22.5); Milky Way extinction is not applied (the lens magnitudes
  the offsets are drawn against are observed ones);
- COSMOS template index = blake2b(task_id + cosmos_salt, 8 bytes, little endian) mod bank size
  (``dhs.draws.hash_str``);
- pixels are ``InjectSettings.pixscale_arcsec`` (the survey's pixel scale) on a side;
- the stored arc is ``stamp - cutout`` in float32, so the identity holds exactly.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dhs.draws import hash_str
from dhs.inject import metrics as M
from dhs.inject.settings import InjectSettings
from dhs.physics.lens import LensBatch
from dhs.physics.photometry import mag_to_nmgy
from dhs.physics.render import render_batch, stamp_center_offset, warning_names
from dhs.physics.source import SersicBatch, TemplateBatch


def cosmos_index(task_ids: list[str], salt: str, n_sources: int) -> np.ndarray:
    """Template index per task: blake2b(task_id + salt) mod n_sources (the earlier system's rule)."""
    return np.array([hash_str(f"{tid}{salt}") % int(n_sources) for tid in task_ids], dtype=np.int64)


def source_mags(cols: dict[str, np.ndarray], bands: str) -> dict[str, np.ndarray]:
    """Per-band source magnitudes from src_mag_r and the source colours."""
    r = np.asarray(cols["src_mag_r"], float)
    gr, rz = np.asarray(cols["src_gr"], float), np.asarray(cols["src_rz"], float)
    all_bands = {"r": r, "g": r + gr, "z": r - rz, "i": r - 0.5 * rz}
    return {b: all_bands[b] for b in bands}


def choose_psf(psf_map: np.ndarray, cols: dict[str, np.ndarray], bands: str,
               default: float) -> tuple[np.ndarray, np.ndarray]:
    """FWHM (n, B) arcsec and its source ('map', 'manifest', 'default') per band."""
    n = psf_map.shape[0]
    fwhm = np.full((n, len(bands)), np.nan)
    where = np.full((n, len(bands)), "default", dtype=object)
    for j, b in enumerate(bands):
        manifest = np.asarray(cols.get(f"psfsize_{b}", np.full(n, np.nan)), float)
        use_map = np.isfinite(psf_map[:, j]) & (psf_map[:, j] > 0)
        use_man = ~use_map & np.isfinite(manifest) & (manifest > 0)
        fwhm[:, j] = np.where(use_map, psf_map[:, j], np.where(use_man, manifest, default))
        where[use_map, j] = "map"
        where[use_man, j] = "manifest"
    return fwhm, where


def _batches(s: InjectSettings, cols: dict[str, np.ndarray], idx: np.ndarray, size: int,
             bank: Any, cosmos_idx: np.ndarray) -> tuple[LensBatch, Any]:
    cx, cy = stamp_center_offset(size, s.pixscale_arcsec)
    e = np.asarray(cols["lens_e"], float)[idx]
    lens = LensBatch.from_q_phi(
        theta_E=np.asarray(cols["theta_e_arcsec"], float)[idx], q=(1 - e) / (1 + e),
        phi=np.asarray(cols["lens_phi_rad"], float)[idx], gamma=np.asarray(cols["shear"], float)[idx],
        phi_gamma=np.asarray(cols["shear_phi_rad"], float)[idx], center_x=cx, center_y=cy)
    x = np.asarray(cols["src_x_arcsec"], float)[idx]
    y = np.asarray(cols["src_y_arcsec"], float)[idx]
    phi = np.asarray(cols["src_phi_rad"], float)[idx]
    if s.source.kind == "cosmos":
        src = TemplateBatch(templates=bank.images[cosmos_idx[idx]], pixscale=bank.pixscale,
                            x=x, y=y, angle=phi)
    else:
        es = np.asarray(cols["src_e"], float)[idx]
        src = SersicBatch(R_sersic=np.asarray(cols["src_reff_arcsec"], float)[idx],
                          n_sersic=np.full(len(idx), float(s.source.sersic_n)),
                          e1=es * np.cos(2 * phi), e2=es * np.sin(2 * phi), x=x, y=y)
    return lens, src


def render_rows(s: InjectSettings, cols: dict[str, np.ndarray], idx: np.ndarray, fwhm: np.ndarray,
                bands: str, size: int, bank: Any, cosmos_idx: np.ndarray) -> tuple[np.ndarray, dict]:
    """Render the arcs of rows ``idx``: (m, B, S, S) float32 and the renderer's metrics."""
    lens, src = _batches(s, cols, idx, size, bank, cosmos_idx)
    mags = source_mags(cols, bands)
    res = render_batch(
        lens, src, {b: mag_to_nmgy(mags[b][idx]) for b in bands},
        {b: fwhm[idx, j] for j, b in enumerate(bands)}, psf_model=s.psf.model,
        moffat_beta=s.psf.render_beta, stamp_size=size, pixscale=s.pixscale_arcsec,
        supersample=int(s.supersample) or None, dtype=np.float32,
        kernel_fwhm_multiple=s.psf.kernel_fwhm_multiple, max_kernel_pix=s.psf.max_kernel_pix)
    arcs = np.stack([res.images[b] for b in bands], axis=1)
    return arcs, res.metrics


def render_isolating_bad_rows(s: InjectSettings, cols: dict, idx: np.ndarray, fwhm: np.ndarray, bands: str,
                              size: int, bank: Any, cosmos_idx: np.ndarray, error: np.ndarray,
                              reason: np.ndarray | None = None
                              ) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """Render rows ``idx``; if the batch fails, render row by row and mark bad rows 'bad_row'
    (with their ``dhs.inject.failures.Failure`` in ``reason`` when given).

    Returns (arcs for idx, renderer metrics for idx, indices actually rendered).
    """
    try:
        arcs, met = render_rows(s, cols, idx, fwhm, bands, size, bank, cosmos_idx)
        return arcs, met, idx
    except (ValueError, FloatingPointError):
        pass
    good, parts, mets = [], [], []
    for k in idx:
        try:
            a, m = render_rows(s, cols, np.array([k]), fwhm, bands, size, bank, cosmos_idx)
        except (ValueError, FloatingPointError) as exc:
            error[k] = "bad_row"
            if reason is not None:
                from dhs.inject.failures import Failure

                reason[k] = Failure("bad_row", "", None, f"{type(exc).__name__}: {exc}"[:500])
            continue
        good.append(k)
        parts.append(a)
        mets.append(m)
    if not good:
        return np.zeros((0, len(bands), size, size), np.float32), {}, np.array([], dtype=int)
    met = {key: np.concatenate([m[key] for m in mets]) for key in mets[0]}
    return np.concatenate(parts), met, np.asarray(good)


def stamp_metrics(arc_r: np.ndarray, invvar_r: np.ndarray, maskbits: np.ndarray,
                  pixscale: float) -> dict[str, np.ndarray]:
    """arc_snr, arc_snr_max, bad_pixel_frac, wise_brightmask_frac, lensed_hlr_arcsec per stamp
    (pixels of ``pixscale`` arcsec)."""
    good = M.good_pixels(invvar_r, maskbits)
    snr, snr_max = M.arc_snr(arc_r, invvar_r, good)
    bad, wise = M.fractions(invvar_r, maskbits)
    return {"arc_snr": snr, "arc_snr_max": snr_max, "bad_pixel_frac": bad,
            "wise_brightmask_frac": wise, "lensed_hlr_arcsec": M.half_light_radius(arc_r, pixscale)}


def warnings_text(bits: np.ndarray) -> list[str]:
    return [";".join(warning_names(int(b))) for b in bits]
