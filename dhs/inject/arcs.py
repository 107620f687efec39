"""Injection of lensed arcs into the stamps of one brick: sources, PSF choice, rendering, metrics.

Physics comes from ``dhs.physics`` (pure); this module maps manifest rows to its inputs and its
outputs to metric columns. Conventions:
- the lens sits on the centre of stamp pixel (N//2, N//2), where the target galaxy is cut;
- angles (lens_phi_rad, shear_phi_rad, src_phi_rad, cosmos_rotation_rad) are East of North and
  source offsets (src_x_arcsec, src_y_arcsec) are (East, North); ``dhs.physics.angles`` turns
  them into the renderer's stamp frame (+x = columns = West, +y = rows = North);
- COSMOS orientation: the template's rows (+v) point at position angle cosmos_rotation_rad =
  2 pi u(task, 'cosmos_rotation' + cosmos_salt), after a mirror of its columns when
  cosmos_flip = [u(task, 'cosmos_flip' + cosmos_salt) < 1/2] (``dhs.draws``, seed 0);
- source fluxes: r = src_mag_r, g = r + src_gr, z = r - src_rz, i = r - src_rz / 2 (AB mag ->
  nanomaggies with zero point 22.5); Milky Way extinction is not applied (the lens magnitudes
  the offsets are drawn against are observed ones);
- COSMOS template index = blake2b(task_id + cosmos_salt, 8 bytes, little endian) mod bank size
  (``dhs.draws.hash_str``);
- pixels are ``InjectSettings.pixscale_arcsec`` (the survey's pixel scale) on a side;
- photon noise (``inject.photon_noise``, on by default): stamp = cutout + arc + Poisson(arc g)/g
  - arc, with g the stamp's effective gain per band (``dhs.physics.noise``), and the stored
  invvar becomes 1 / (1 / invvar + arc / g); the stored arc is the noiseless model, so
  stamp - cutout - arc is the photon noise (exactly 0 with photon noise off).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dhs import draws
from dhs.draws import hash_str
from dhs.inject import metrics as M
from dhs.inject.settings import InjectSettings
from dhs.physics.angles import angle_to_stamp, offsets_to_stamp
from dhs.physics.lens import LensBatch
from dhs.physics.photometry import mag_to_nmgy
from dhs.physics.render import render_batch, stamp_center_offset, warning_names
from dhs.physics.source import SersicBatch, TemplateBatch


def cosmos_index(task_ids: list[str], salt: str, n_sources: int) -> np.ndarray:
    """Template index per task: blake2b(task_id + salt) mod n_sources (the earlier system's rule)."""
    return np.array([hash_str(f"{tid}{salt}") % int(n_sources) for tid in task_ids], dtype=np.int64)


def cosmos_orientation(task_ids: list[str] | np.ndarray, salt: str) -> tuple[np.ndarray, np.ndarray]:
    """(rotation East of North in [0, 2 pi), mirror flag 0/1) of the COSMOS template per task."""
    key = draws.draw_key_from_task_ids([str(t) for t in task_ids])
    rot = 2.0 * np.pi * draws.uniform(key, f"cosmos_rotation{salt}", 0)
    flip = (draws.uniform(key, f"cosmos_flip{salt}", 0) < 0.5).astype(np.int32)
    return rot, flip


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
        phi=np.mod(angle_to_stamp(np.asarray(cols["lens_phi_rad"], float)[idx]), np.pi),
        gamma=np.asarray(cols["shear"], float)[idx],
        phi_gamma=np.mod(angle_to_stamp(np.asarray(cols["shear_phi_rad"], float)[idx]), np.pi),
        center_x=cx, center_y=cy)
    x, y = offsets_to_stamp(np.asarray(cols["src_x_arcsec"], float)[idx],
                            np.asarray(cols["src_y_arcsec"], float)[idx])
    phi = np.mod(angle_to_stamp(np.asarray(cols["src_phi_rad"], float)[idx]), np.pi)
    if s.source.kind == "cosmos":
        rot, flip = cosmos_orientation(np.asarray(cols["task_id"])[idx], str(s.source.cosmos_salt))
        templates = bank.images[cosmos_idx[idx]]
        templates = np.where(flip[:, None, None] == 1, templates[:, :, ::-1], templates)
        # rows (+v) at position angle rot: the columns (+u) sit a quarter turn before them
        src = TemplateBatch(templates=templates, pixscale=bank.pixscale, x=x, y=y,
                            angle=angle_to_stamp(rot) - 0.5 * np.pi)
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


def photon_noise_seeds(task_ids: np.ndarray) -> np.ndarray:
    """uint64 seed of each task's photon-noise generator: mix(key ^ salt 'arc_photon_noise')."""
    key = draws.draw_key_from_task_ids([str(t) for t in task_ids])
    return draws.mix(key ^ draws.salt_key("arc_photon_noise", 0))


def add_photon_noise(s: InjectSettings, arcs: np.ndarray, invvar: np.ndarray, maskbits: np.ndarray,
                     bands: str, task_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Photon noise of arcs (m, B, S, S): (noise, invvar with the arc's variance, gain (m, B)
    in electrons per nanomaggy); ``dhs.physics.noise``."""
    from dhs.physics import noise as N

    gain = np.stack([N.effective_gain(invvar[:, j], M.good_pixels(invvar[:, j], maskbits), b,
                                      s.pixscale_arcsec) for j, b in enumerate(bands)], axis=1)
    noise = N.photon_noise(arcs, gain, photon_noise_seeds(task_ids))
    return noise.astype(np.float32), N.with_photon_variance(invvar, arcs, gain), gain


def stamp_metrics(arc_r: np.ndarray, invvar_r: np.ndarray, maskbits: np.ndarray, pixscale: float,
                  sky_image_r: np.ndarray | None = None,
                  photon_var_r: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """arc_snr (correlated sky noise measured on ``sky_image_r``, the stamp before injection, plus
    the photon variance), arc_snr_white, arc_snr_max, arc_noise_corr, bad_pixel_frac,
    wise_brightmask_frac, lensed_hlr_arcsec per stamp (pixels of ``pixscale`` arcsec);
    ``invvar_r``: the sky's inverse variance."""
    good = M.good_pixels(invvar_r, maskbits)
    out = M.arc_snr(arc_r, invvar_r, good, sky_image=sky_image_r, photon_var=photon_var_r)
    bad, wise = M.fractions(invvar_r, maskbits)
    out.update({"bad_pixel_frac": bad, "wise_brightmask_frac": wise,
                "lensed_hlr_arcsec": M.half_light_radius(arc_r, pixscale)})
    return out


def warnings_text(bits: np.ndarray) -> list[str]:
    return [";".join(warning_names(int(b))) for b in bits]
