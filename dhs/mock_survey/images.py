"""Pixels of a mock brick from its plan (``dhs.mock_survey.plan.plan_brick``): pure NumPy, no I/O.

Arrays are (H, W) indexed [y, x], 0-based pixel centres. Galaxies are rendered into small
postage windows (never full-image profiles): a de Vaucouleurs profile supersampled 5 x 5 per
pixel, normalised to unit sum (so the catalog flux is exactly the rendered flux), convolved with
the Moffat kernel of the local psfsize FWHM and added at its sub-pixel position. Noise is
Gaussian with sigma = 1/sqrt(invvar) per pixel; where invvar = 0 the image is 0.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.ndimage import binary_dilation
from scipy.signal import fftconvolve

from dhs.physics.photometry import mag_to_nmgy
from dhs.physics.psf import psf_kernel
from dhs.survey import maskbits as mb
from dhs.mock_survey.plan import MOCK_BANDS, MOFFAT_BETA, PRIMARY_BORDER_PIX, SAT_LEVEL_NMGY, rng_for
from dhs.survey.wcs import brick_wcs, pixel_to_radec

OVERSAMPLE = 5
DEV_B = 7.669  # b_n of the de Vaucouleurs profile (n = 4)
TRUNC_START, TRUNC_END = 4.0, 5.0  # smooth truncation, in units of r_e
GAL_KERNEL_FWHM = 3.0  # galaxy PSF kernel half-size, in FWHM
STAR_KERNEL_FWHM = 12.0  # bright-star kernel half-size, in FWHM (shows the wings)


def _ramp(shape: tuple[int, int], grad: list[float]) -> np.ndarray:
    """1 + gx (x/(W-1) - 0.5) + gy (y/(H-1) - 0.5): a linear variation across the brick."""
    h, w = shape
    x = np.linspace(-0.5, 0.5, w)[None, :]
    y = np.linspace(-0.5, 0.5, h)[:, None]
    return 1.0 + grad[0] * x + grad[1] * y


def moffat(fwhm_arcsec: float, pixscale: float, half: int) -> np.ndarray:
    """Unit-sum Moffat (beta 3.5) kernel of (2 half + 1)^2 pixels (pixel-centre sampled)."""
    size = 2 * int(half) + 1
    return psf_kernel(fwhm_arcsec, pixscale, model="moffat", beta=MOFFAT_BETA, size=size,
                      stamp_size=size)


def devauc_window(re_pix: float, q: float, phi: float, dx: float, dy: float) -> np.ndarray:
    """Unit-sum de Vaucouleurs image on a (2h+1)^2 window, centre offset (dx, dy) pixels.

    ``re_pix``: semi-major half-light radius (pixels); elliptical radius
    sqrt(x'^2 + (y'/q)^2) with x' along the major axis at angle ``phi`` (rad, from +x).
    """
    h = int(math.ceil(TRUNC_END * re_pix)) + 2
    n = 2 * h + 1
    sub = (np.arange(n * OVERSAMPLE) + 0.5) / OVERSAMPLE - 0.5 - h
    x = sub[None, :] - dx
    y = sub[:, None] - dy
    c, s = math.cos(phi), math.sin(phi)
    xp = c * x + s * y
    yp = (-s * x + c * y) / q
    r = np.sqrt(xp * xp + yp * yp) / re_pix
    prof = np.exp(-DEV_B * (r ** 0.25 - 1.0))
    t = np.clip((r - TRUNC_START) / (TRUNC_END - TRUNC_START), 0.0, 1.0)
    prof *= 0.5 * (1.0 + np.cos(np.pi * t))
    img = prof.reshape(n, OVERSAMPLE, n, OVERSAMPLE).sum(axis=(1, 3))
    return img / img.sum()


def add_window(target: np.ndarray, window: np.ndarray, cx: int, cy: int) -> None:
    """Add an odd-sized window centred on pixel (cx, cy), clipped to the target."""
    hy, hx = window.shape[0] // 2, window.shape[1] // 2
    h, w = target.shape
    y0, x0 = cy - hy, cx - hx
    ty0, ty1, tx0, tx1 = max(y0, 0), min(y0 + window.shape[0], h), max(x0, 0), min(x0 + window.shape[1], w)
    if ty0 < ty1 and tx0 < tx1:
        target[ty0:ty1, tx0:tx1] += window[ty0 - y0:ty1 - y0, tx0 - x0:tx1 - x0]


def _disk(shape: tuple[int, int], x: float, y: float, r: float) -> np.ndarray:
    h, w = shape
    yy, xx = np.ogrid[0:h, 0:w]
    return (xx - x) ** 2 + (yy - y) ** 2 <= r * r


def psfsize_maps(plan: dict) -> dict[str, np.ndarray]:
    """FWHM maps (arcsec, float32) per band."""
    shape = (plan["size"], plan["size"])
    return {b: (c["fwhm"] * _ramp(shape, c["fwhm_grad"])).astype(np.float32)
            for b, c in plan["conditions"]["bands"].items()}


def invvar_maps(plan: dict) -> dict[str, np.ndarray]:
    """Inverse-variance maps (1/nmgy^2, float32) per band; zero in the zero-invvar patch."""
    shape = (plan["size"], plan["size"])
    p = plan["zero_patch"]
    out = {}
    for b, c in plan["conditions"]["bands"].items():
        iv = (c["invvar"] * _ramp(shape, c["invvar_grad"])).astype(np.float32)
        iv[p["y0"]:p["y1"], p["x0"]:p["x1"]] = 0.0
        out[b] = iv
    return out


def primary_mask(plan: dict) -> np.ndarray:
    """True inside the mock primary area: real brick bounds and a PRIMARY_BORDER_PIX border."""
    n = plan["size"]
    inside = np.zeros((n, n), bool)
    bd = PRIMARY_BORDER_PIX
    inside[bd:n - bd, bd:n - bd] = True
    wcs = brick_wcs(plan["ra"], plan["dec"], n, pixscale=plan["pixscale"])
    edge = np.concatenate([np.arange(n)] * 2)
    fixed = np.concatenate([np.full(n, bd), np.full(n, n - 1 - bd)])
    for xs, ys in ((edge, fixed), (fixed, edge)):  # the border ring decides for a small brick
        ra, dec = pixel_to_radec(wcs, xs, ys)
        ra = np.mod(ra, 360.0)
        if not np.all((ra >= plan["ra1"]) & (ra < plan["ra2"]) & (dec >= plan["dec1"]) & (dec < plan["dec2"])):
            from dhs.survey.bricks import brick_from_name
            from dhs.survey.wcs import primary_pixel_mask

            return inside & primary_pixel_mask(brick_from_name(plan["brickname"]), wcs, (n, n))
    return inside


def model_images(plan: dict, psf: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Noise-free models (nmgy/pixel, float64) per band, and the bright-star-only models."""
    n, pix = plan["size"], plan["pixscale"]
    model = {b: np.zeros((n, n)) for b in MOCK_BANDS}
    stars = {b: np.zeros((n, n)) for b in MOCK_BANDS}
    for g in plan["galaxies"]:
        cx, cy = int(math.floor(g["x"] + 0.5)), int(math.floor(g["y"] + 0.5))
        prof = devauc_window(g["re_arcsec"] / pix, g["q"], g["phi"], g["x"] - cx, g["y"] - cy)
        for b in MOCK_BANDS:
            fwhm = float(psf[b][min(max(cy, 0), n - 1), min(max(cx, 0), n - 1)])
            k = moffat(fwhm, pix, int(math.ceil(GAL_KERNEL_FWHM * fwhm / pix)))
            add_window(model[b], float(mag_to_nmgy(g["mags"][b])) * fftconvolve(prof, k), cx, cy)
    ps = plan["psf_star"]
    for b in MOCK_BANDS:
        cx, cy = int(ps["x"]), int(ps["y"])
        fwhm = float(psf[b][cy, cx])
        k = moffat(fwhm, pix, int(math.ceil(GAL_KERNEL_FWHM * fwhm / pix)))
        add_window(model[b], float(mag_to_nmgy(ps["mags"][b])) * k, cx, cy)
        for s in plan["stars"]:
            sx, sy = int(s["x"]), int(s["y"])
            fwhm = float(psf[b][sy, sx])
            half = min(int(math.ceil(STAR_KERNEL_FWHM * fwhm / pix)), n)
            add_window(stars[b], float(mag_to_nmgy(s["mags"][b])) * moffat(fwhm, pix, half), sx, sy)
        model[b] += stars[b]
    return model, stars


def maskbits_maps(plan: dict, model: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MASKBITS (int32) and the WISEM1 / WISEM2 maps (uint8, 1 inside a WISE bright-star mask)."""
    n = plan["size"]
    shape = (n, n)
    m = np.zeros(shape, np.int32)
    m[~primary_mask(plan)] |= mb.NPRIMARY
    w1 = np.zeros(shape, np.uint8)
    w2 = np.zeros(shape, np.uint8)
    for s in plan["stars"]:
        m[_disk(shape, s["x"], s["y"], s["medium_r"])] |= mb.MEDIUM
        if s["bright_r"] > 0:
            m[_disk(shape, s["x"], s["y"], s["bright_r"])] |= mb.BRIGHT
        w1[_disk(shape, s["x"], s["y"], s["wise1_r"])] = 1
        w2[_disk(shape, s["x"], s["y"], s["wise2_r"])] = 1
    wo = plan["wise_only"]
    w1[_disk(shape, wo["x"], wo["y"], wo["wise1_r"])] = 1
    w2[_disk(shape, wo["x"], wo["y"], wo["wise2_r"])] = 1
    m[w1 > 0] |= mb.WISEM1
    m[w2 > 0] |= mb.WISEM2
    for b in MOCK_BANDS:
        sat = binary_dilation(model[b] > SAT_LEVEL_NMGY, iterations=2)
        m[sat] |= mb.SATUR[b]
    return m, w1, w2


def render_brick(plan: dict) -> dict[str, np.ndarray]:
    """Every array of a brick: image-<b>, invvar-<b>, psfsize-<b> (float32), maskbits (int32),
    wisem1, wisem2 (uint8)."""
    psf = psfsize_maps(plan)
    iv = invvar_maps(plan)
    model, _ = model_images(plan, psf)
    mask, w1, w2 = maskbits_maps(plan, model)
    out: dict[str, np.ndarray] = {"maskbits": mask, "wisem1": w1, "wisem2": w2}
    for b in MOCK_BANDS:
        rng = rng_for(plan["seed"], "noise", plan["brickname"], b)
        ivb = iv[b].astype(np.float64)
        sigma = np.where(ivb > 0, 1.0 / np.sqrt(np.where(ivb > 0, ivb, 1.0)), 0.0)
        img = np.minimum(model[b], SAT_LEVEL_NMGY) + sigma * rng.standard_normal(ivb.shape)
        img[ivb <= 0] = 0.0
        out[f"image-{b}"] = img.astype(np.float32)
        out[f"invvar-{b}"] = iv[b]
        out[f"psfsize-{b}"] = psf[b]
    return out

