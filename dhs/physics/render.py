"""Render batches of lensed-arc stamps in nanomaggies per pixel.

Pixel convention: stamp pixel ``(i, j)`` (row ``i``, column ``j``, 0-based, numpy
``image[i, j]``) has its centre at

    x = (j - (N - 1) / 2) * pixscale,    y = (i - (N - 1) / 2) * pixscale   (arcsec)

so ``x`` grows with the column and ``y`` with the row (lenstronomy's ``PixelGrid`` with
``transform_pix2angle = pixscale * I`` and ``ra_at_xy_0 = dec_at_xy_0 = -(N-1)/2 *
pixscale``). For an even ``N`` the origin ``(0, 0)`` is the corner shared by the four
central pixels. To put the lens on the centre of pixel ``(N//2, N//2)``, where survey
stamps put the target galaxy, add :func:`stamp_center_offset` (``+0.5 * pixscale`` on
both axes for even ``N``) to the lens centre.

Pipeline per stamp: ray-shoot the (adaptively) supersampled pixel grid through the SIE
+ shear lens, sample the unit-flux source, bin to native pixels (the *morphology*),
then for each band scale by the band flux and convolve with that band's PSF kernel
(zero padding outside the stamp, kernel odd and capped at the stamp). Sources shared by
all bands (a single :class:`SersicBatch` or :class:`TemplateBatch`) are traced once
(achromatic path); a mapping ``band -> source`` traces each band separately.

Default supersampling (``supersample=None``): adaptive, with a factor per stamp chosen from
the source's size and the lens's stretch (:mod:`dhs.physics.sampling`, 7 to 41): the lensed
flux is within 1 % of a converged render for at least 99 % of the rows of every shipped grid
(the earlier fixed factor 5 erred by 2-12 % at p99 on their Sersic rows). Rays within 1e-9
arcsec of the singular lens centre carry no light (an isothermal lens has no central image), so
an odd factor no longer puts a spurious point on the lens. The chosen factor is returned per
stamp as the ``supersample`` metric; an explicit ``supersample`` applies one uniform factor.

Speed: see ``benchmarks/bench_render.py`` (one core, 64x64, 3 bands, Moffat, stamps per CPU
second for uniform factors and the default, with lenstronomy measured in the same run).
The PSF convolution multiplies the morphology's FFT by the kernel's real spectrum, computed
as a cosine sum of the quarter kernel, on the smallest fast grid ``L >= N + k//2`` that
keeps the periodic wrap off the stamp.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import scipy.fft as sfft

from dhs.physics.lens import LensBatch, image_position, local_lensing
from dhs.physics.psf import (KERNEL_FWHM_MULTIPLE, PSF_MODELS, _profile, kernel_cap, kernel_size,
                             max_kernel_size, wanted_kernel_size)
from dhs.physics.raytrace import SourceBatch, render_adaptive, render_uniform
from dhs.physics.sampling import sampling_factors
from dhs.physics.source import SersicBatch, TemplateBatch
from dhs.physics.validate import check_range

STRETCH_CAP = 1e4
CHUNK = 64
UNRESOLVED_SUBPIX = 2.0

WARNING_BITS: dict[str, int] = {
    "control": 1,
    "near_critical": 2,
    "image_not_converged": 4,
    "flux_at_stamp_edge": 8,
    "psf_kernel_capped": 16,
    "source_unresolved": 32,
    "template_negative_pixels": 64,
}


def warning_names(mask: int) -> list[str]:
    """Names of the warning bits set in ``mask``."""
    return [name for name, bit in WARNING_BITS.items() if int(mask) & bit]


def stamp_center_offset(stamp_size: int, pixscale: float = 0.262) -> tuple[float, float]:
    """(center_x, center_y) in arcsec of pixel ``(N//2, N//2)``'s centre."""
    c = (stamp_size // 2 - 0.5 * (stamp_size - 1)) * pixscale
    return c, c


@dataclass(frozen=True)
class RenderResult:
    """``images``: band -> (n, N, N) arc in nanomaggies per pixel.

    ``metrics`` (all shape (n,)): ``injected_flux_<band>`` (nanomaggies, sum of the
    image), ``magnification`` (lensed in-stamp flux before the PSF over intrinsic flux),
    ``tangential_stretch`` and ``radial_stretch`` (1/|eigenvalue| of the lens Jacobian at
    the primary image of the source centre, capped at 1e4), ``magnification_proxy_1p1``
    (|1/det A| at 1.1 theta_E from the lens centre towards the source), ``expected_arc_
    radius`` (arcsec, primary-image distance from the lens centre; 0 for controls),
    ``image_x``/``image_y`` (arcsec), ``supersampled_pixels``, ``supersample`` (the factor
    used) and ``physics_warnings``
    (uint32 bitmask of :data:`WARNING_BITS`; see :func:`warning_names`).
    """

    images: dict[str, np.ndarray]
    metrics: dict[str, np.ndarray]


def _validate(lens: LensBatch, sources: Mapping[str, SourceBatch], band_flux: Mapping,
              psf_fwhm: Mapping, stamp_size: int, pixscale: float,
              supersample: int | None) -> None:
    n = len(lens)
    if stamp_size < 2:
        raise ValueError(f"stamp_size {stamp_size}: must be >= 2")
    check_range("pixscale", np.atleast_1d(pixscale), lo=0.0, lo_open=True)
    if supersample is not None and (int(supersample) != supersample or supersample < 1):
        raise ValueError(f"supersample {supersample!r}: must be a positive integer or None")
    if set(band_flux) != set(psf_fwhm):
        raise ValueError(f"band_flux bands {sorted(band_flux)} != psf_fwhm bands {sorted(psf_fwhm)}")
    if not band_flux:
        raise ValueError("band_flux is empty: need at least one band")
    for band in band_flux:
        for name, arr in ((f"band_flux[{band!r}]", band_flux[band]),
                          (f"psf_fwhm[{band!r}]", psf_fwhm[band])):
            a = np.atleast_1d(np.asarray(arr, dtype=np.float64))
            if a.shape != (n,):
                raise ValueError(f"{name} has shape {a.shape}, expected ({n},)")
        check_range(f"band_flux[{band!r}]", band_flux[band], lo=0.0)
        check_range(f"psf_fwhm[{band!r}]", psf_fwhm[band], lo=0.0, lo_open=True)
    for band, src in sources.items():
        if len(src) != n:
            raise ValueError(f"source for {band!r} has {len(src)} stamps, lens has {n}")


def _kernel_spectra(fwhm: np.ndarray, size: np.ndarray, length: int, stamp_size: int,
                    pixscale: float, model: str, beta: float) -> np.ndarray:
    """Real DFTs (m, L, L//2+1) of unit-sum kernels of odd ``size`` (m,) centred on pixel
    (0, 0) of an L x L periodic grid, ``L = length``.

    The kernels are even in both axes, so the DFT is the cosine sum of the weighted
    quarter kernel: ``C W C^T`` with ``C[v, j] = cos(2 pi v j / L)``. The quarter is
    zero-padded to a width fixed by L alone, so a stamp's numbers do not depend on its
    batch.
    """
    width = min(length - stamp_size, max_kernel_size(stamp_size) // 2) + 1
    idx = np.arange(width, dtype=np.float64)
    r = idx * pixscale
    r2 = r[None, :] ** 2 + r[:, None] ** 2
    quarter = _profile(r2[None], fwhm[:, None, None], model, beta)
    half = (size // 2).astype(np.int64)
    inside = idx[None, :] <= half[:, None]
    w = np.where(inside, np.where(idx == 0, 1.0, 2.0)[None, :], 0.0)
    quarter = quarter * w[:, :, None] * w[:, None, :]
    quarter /= quarter.sum(axis=(1, 2), keepdims=True)
    nv = length // 2 + 1
    cos = np.cos((2.0 * np.pi / length) * np.outer(np.arange(nv), idx))
    spec = cos @ quarter @ cos.T
    rows = np.minimum(np.arange(length), length - np.arange(length))
    return spec[:, rows, :]


def _convolve(morph: dict[str, np.ndarray], fwhm: dict[str, np.ndarray], stamp_size: int,
              pixscale: float, model: str, beta: float, dtype: np.dtype,
              kernel: tuple[float, int | None] = (KERNEL_FWHM_MULTIPLE, None)) -> dict[str, np.ndarray]:
    """'same' convolution of each band's morphology with its kernel (zero padding).

    Periodic convolution on an L x L grid with ``L >= N + k//2`` equals the zero-padded
    linear one on the N x N stamp (the wrapped tail never reaches the stamp). ``kernel``:
    (kernel width in FWHM, cap in pixels or None), see :func:`dhs.physics.psf.kernel_size`.
    """
    n = next(iter(morph.values())).shape[0]
    sizes = {b: kernel_size(fwhm[b], pixscale, stamp_size, *kernel) for b in fwhm}
    kmax = np.max(np.stack(list(sizes.values())), axis=0)
    fft_len = np.array([sfft.next_fast_len(stamp_size + int(k) // 2, real=True) for k in kmax])
    out = {b: np.empty((n, stamp_size, stamp_size), dtype=dtype) for b in fwhm}
    shared = len({id(m) for m in morph.values()}) == 1
    for length in np.unique(fft_len):
        sel = np.flatnonzero(fft_len == length)
        shape = (int(length), int(length))
        spec = None
        for band in fwhm:
            if spec is None or not shared:
                spec = sfft.rfft2(morph[band][sel].astype(dtype), s=shape)
            kspec = _kernel_spectra(fwhm[band][sel], sizes[band][sel], int(length),
                                    stamp_size, pixscale, model, beta).astype(dtype)
            full = sfft.irfft2(spec * kspec, s=shape)
            out[band][sel] = full[:, :stamp_size, :stamp_size]
    return out


def _lens_metrics(lens: LensBatch, src: SourceBatch) -> dict[str, np.ndarray]:
    bx = lens.center_x + src.x
    by = lens.center_y + src.y
    xi, yi, resid = image_position(lens, bx, by)
    loc = local_lensing(lens, xi, yi)
    with np.errstate(divide="ignore"):
        t = np.minimum(1.0 / np.abs(loc.eig_tangential), STRETCH_CAP)
        r = np.minimum(1.0 / np.abs(loc.eig_radial), STRETCH_CAP)
    rx, ry = src.x, src.y
    rr = np.hypot(rx, ry)
    safe = np.where(rr > 0, rr, 1.0)
    ux = np.where(rr > 0, rx / safe, 1.0)
    uy = np.where(rr > 0, ry / safe, 0.0)
    p = local_lensing(lens, lens.center_x + 1.1 * lens.theta_E * ux,
                      lens.center_y + 1.1 * lens.theta_E * uy)
    with np.errstate(divide="ignore"):
        proxy = np.minimum(np.abs(1.0 / p.det_a), STRETCH_CAP)
    control = lens.theta_E == 0
    proxy = np.where(control, 1.0, proxy)
    radius = np.where(control, 0.0, np.hypot(xi - lens.center_x, yi - lens.center_y))
    return {"tangential_stretch": t, "radial_stretch": r, "magnification_proxy_1p1": proxy,
            "expected_arc_radius": radius, "image_x": xi, "image_y": yi,
            "image_residual": resid}


def _trace(lens: LensBatch, src: SourceBatch, stamp_size: int, pixscale: float,
           factors: np.ndarray, adaptive: bool) -> tuple[np.ndarray, np.ndarray]:
    """Morphology (n, N, N) and supersampled-pixel counts, stamps grouped by factor."""
    n = len(lens)
    morph = np.empty((n, stamp_size, stamp_size))
    nss = np.zeros(n, dtype=np.int64)
    for k in np.unique(factors):
        sel = np.flatnonzero(factors == k)
        sub_l, sub_s = (lens, src) if sel.size == n else (lens.take(sel), src.take(sel))
        if adaptive:
            m, ns = render_adaptive(sub_l, sub_s, stamp_size, pixscale, int(k))
        else:
            m = render_uniform(sub_l, sub_s, stamp_size, pixscale, int(k))
            ns = np.full(sel.size, stamp_size * stamp_size if k > 1 else 0)
        morph[sel] = m
        nss[sel] = ns
    return morph, nss


def _render_chunk(lens: LensBatch, sources: dict[str, SourceBatch], band_flux: dict,
                  psf_fwhm: dict, psf_model: str, beta: float, stamp_size: int,
                  pixscale: float, supersample: int | None, adaptive: bool,
                  dtype: np.dtype, lensed: bool, kernel: tuple[float, int | None]) -> tuple[dict, dict]:
    n = len(lens)
    control = (lens.theta_E == 0) & lensed
    morph: dict[str, np.ndarray] = {}
    traced: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    geometry: dict[int, dict[str, np.ndarray]] = {}
    for band, src in sources.items():
        if id(src) not in traced:
            geometry[id(src)] = _lens_metrics(lens, src)
            if supersample is None:
                g = geometry[id(src)]
                factors = sampling_factors(src, g["radial_stretch"], g["tangential_stretch"],
                                           pixscale)
            else:
                factors = np.full(n, int(supersample), dtype=np.int64)
            m, nss = _trace(lens, src, stamp_size, pixscale, factors, adaptive)
            m[control] = 0.0
            traced[id(src)] = (m, nss, factors)
        morph[band] = traced[id(src)][0]
    conv = _convolve(morph, psf_fwhm, stamp_size, pixscale, psf_model, beta, dtype, kernel)
    images = {b: conv[b] * np.asarray(band_flux[b], dtype=np.float64)[:, None, None].astype(dtype)
              for b in band_flux}
    ref_band = "r" if "r" in sources else next(iter(sources))
    ref_src = sources[ref_band]
    ref_m, nss, ref_factors = traced[id(ref_src)]
    metrics: dict[str, np.ndarray] = {}
    for b in band_flux:
        metrics[f"injected_flux_{b}"] = images[b].sum(axis=(1, 2), dtype=np.float64)
    mag = ref_m.sum(axis=(1, 2))
    metrics["magnification"] = np.where(control, 1.0, mag)
    metrics.update(geometry[id(ref_src)])
    metrics["supersampled_pixels"] = nss.astype(np.int64)
    metrics["supersample"] = ref_factors.astype(np.int64)
    warn = np.zeros(n, dtype=np.uint32)
    warn |= np.where(control, WARNING_BITS["control"], 0).astype(np.uint32)
    crit = (metrics["tangential_stretch"] >= STRETCH_CAP) | (metrics["radial_stretch"] >= STRETCH_CAP)
    warn |= np.where(crit & ~control, WARNING_BITS["near_critical"], 0).astype(np.uint32)
    bad_img = metrics["image_residual"] > 1e-6
    warn |= np.where(bad_img & ~control, WARNING_BITS["image_not_converged"], 0).astype(np.uint32)
    edge = (ref_m[:, 0, :].sum(1) + ref_m[:, -1, :].sum(1) + ref_m[:, 1:-1, 0].sum(1)
            + ref_m[:, 1:-1, -1].sum(1))
    edge_frac = np.abs(edge) / np.maximum(np.abs(ref_m).sum(axis=(1, 2)), 1e-300)
    warn |= np.where(edge_frac > 1e-3, WARNING_BITS["flux_at_stamp_edge"], 0).astype(np.uint32)
    capped = np.zeros(n, dtype=bool)
    for b in psf_fwhm:
        want = wanted_kernel_size(psf_fwhm[b], pixscale, kernel[0])
        capped |= want > kernel_cap(stamp_size, kernel[1])
    warn |= np.where(capped, WARNING_BITS["psf_kernel_capped"], 0).astype(np.uint32)
    for src in sources.values():
        if isinstance(src, SersicBatch):
            small = src.R_sersic * np.sqrt(src.axis_ratio()) / src.n_sersic < (
                UNRESOLVED_SUBPIX * pixscale / traced[id(src)][2])
            warn |= np.where(small, WARNING_BITS["source_unresolved"], 0).astype(np.uint32)
        elif isinstance(src, TemplateBatch):
            neg = (src.templates < 0).any(axis=(1, 2))
            warn |= np.where(neg, WARNING_BITS["template_negative_pixels"], 0).astype(np.uint32)
    metrics["physics_warnings"] = warn
    return images, metrics


def render_batch(
    lens: LensBatch,
    source: SersicBatch | TemplateBatch | Mapping[str, SersicBatch | TemplateBatch],
    band_flux: Mapping[str, np.ndarray],
    psf_fwhm: Mapping[str, np.ndarray],
    *,
    psf_model: str = "moffat",
    moffat_beta: float = 3.5,
    stamp_size: int = 64,
    pixscale: float = 0.262,
    supersample: int | None = None,
    adaptive: bool | None = None,
    dtype: type = np.float32,
    kernel_fwhm_multiple: float = KERNEL_FWHM_MULTIPLE,
    max_kernel_pix: int | None = None,
    _lensed: bool = True,
) -> RenderResult:
    """Render lensed arcs for ``n`` stamps.

    lens: :class:`LensBatch` (arcsec, stamp frame). source: one source batch shared by all
    bands, or ``band -> source``. band_flux: band -> intrinsic (unlensed) total source
    flux in nanomaggies, shape (n,). psf_fwhm: band -> PSF FWHM in arcsec, shape (n,).
    supersample: None for the default (adaptive, a factor per stamp from
    :func:`dhs.physics.sampling.sampling_factors`), or a factor for uniform supersampling;
    ``adaptive=True`` applies the adaptive scheme at an explicit factor. PSF kernels are
    ``kernel_fwhm_multiple`` FWHM across, at most ``max_kernel_pix`` pixels and the stamp
    (:func:`dhs.physics.psf.kernel_size`). Returns a :class:`RenderResult` (nanomaggies per
    pixel). Pure: each stamp's output depends only on its own parameters.
    """
    if psf_model not in PSF_MODELS:
        raise ValueError(f"psf_model {psf_model!r}: must be one of {PSF_MODELS}")
    if psf_model == "moffat":
        check_range("moffat_beta", np.atleast_1d(moffat_beta), lo=1.0, lo_open=True)
    sources = dict(source) if isinstance(source, Mapping) else {b: source for b in band_flux}
    if set(sources) != set(band_flux):
        raise ValueError(f"source bands {sorted(sources)} != band_flux bands {sorted(band_flux)}")
    _validate(lens, sources, band_flux, psf_fwhm, stamp_size, pixscale, supersample)
    if adaptive is None:
        adaptive = supersample is None
    factor = None if supersample is None else int(supersample)
    dt = np.dtype(dtype)
    n = len(lens)
    flux = {b: np.atleast_1d(np.asarray(band_flux[b], dtype=np.float64)) for b in band_flux}
    fwhm = {b: np.atleast_1d(np.asarray(psf_fwhm[b], dtype=np.float64)) for b in psf_fwhm}
    images = {b: np.empty((n, stamp_size, stamp_size), dtype=dt) for b in band_flux}
    metrics: dict[str, np.ndarray] = {}
    for start in range(0, n, CHUNK):
        idx = np.arange(start, min(n, start + CHUNK))
        taken: dict[int, SourceBatch] = {}
        for s in sources.values():
            taken.setdefault(id(s), s.take(idx))
        src_c = {b: taken[id(s)] for b, s in sources.items()}
        imgs, mets = _render_chunk(
            lens.take(idx), src_c, {b: flux[b][idx] for b in flux},
            {b: fwhm[b][idx] for b in fwhm}, psf_model, moffat_beta, stamp_size, pixscale,
            factor, adaptive, dt, _lensed, (float(kernel_fwhm_multiple), max_kernel_pix))
        for b in images:
            images[b][idx] = imgs[b]
        for k, v in mets.items():
            if k not in metrics:
                metrics[k] = np.empty(n, dtype=v.dtype)
            metrics[k][idx] = v
    return RenderResult(images=images, metrics=metrics)


def render_unlensed(
    source: SersicBatch | TemplateBatch | Mapping[str, SersicBatch | TemplateBatch],
    band_flux: Mapping[str, np.ndarray],
    psf_fwhm: Mapping[str, np.ndarray],
    *,
    center_x: np.ndarray | float = 0.0,
    center_y: np.ndarray | float = 0.0,
    **kwargs,
) -> RenderResult:
    """The same sources without a lens (the intrinsic, PSF-convolved source), placed at
    ``(center_x + source.x, center_y + source.y)`` arcsec; keyword arguments as in
    :func:`render_batch`. Its images sum to ``band_flux`` when the source fits the stamp.
    """
    first = next(iter(source.values())) if isinstance(source, Mapping) else source
    n = len(first)
    zero = np.zeros(n)
    lens = LensBatch(theta_E=zero, e1=zero, e2=zero, center_x=center_x, center_y=center_y,
                     gamma1=zero, gamma2=zero)
    return render_batch(lens, source, band_flux, psf_fwhm, _lensed=False, **kwargs)
