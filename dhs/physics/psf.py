"""Circular Moffat and Gaussian PSF kernels from a FWHM in arcsec.

Kernels are sampled at pixel centres of an odd-sized square grid, normalized to unit
sum, with half width ``ceil(fwhm_multiple / 2 * fwhm / pixscale)`` pixels (``fwhm_multiple``
FWHM across, :data:`KERNEL_FWHM_MULTIPLE` = 5 by default), capped at ``max_pix`` pixels and
so that the kernel never exceeds the stamp (at most ``N`` or ``N - 1`` pixels for odd or
even ``N``).

Moffat: ``(1 + r^2/alpha^2)^(-beta)``, ``alpha = fwhm / (2 sqrt(2^(1/beta) - 1))``.
Gaussian: ``exp(-r^2 / (2 sigma^2))``, ``sigma = fwhm / (2 sqrt(2 ln 2))``.
"""

from __future__ import annotations

import numpy as np

from dhs.physics.kernel_size import (KERNEL_FWHM_MULTIPLE, MIN_KERNEL_SIZE, kernel_cap,  # noqa: F401
                                     max_kernel_size)
from dhs.physics.validate import check_range

PSF_MODELS = ("moffat", "gaussian")


def wanted_kernel_size(fwhm: np.ndarray | float, pixscale: float,
                       fwhm_multiple: float = KERNEL_FWHM_MULTIPLE) -> np.ndarray:
    """Odd kernel size (pixels) ``fwhm_multiple`` FWHM (arcsec) across, before any cap."""
    fwhm = np.atleast_1d(np.asarray(fwhm, dtype=np.float64))
    check_range("psf_fwhm", fwhm, lo=0.0, lo_open=True)
    check_range("kernel_fwhm_multiple", np.atleast_1d(fwhm_multiple), lo=0.0, lo_open=True)
    half = np.ceil(0.5 * fwhm_multiple * fwhm / pixscale - 1e-9).astype(np.int64)
    return 2 * half + 1


def kernel_size(fwhm: np.ndarray | float, pixscale: float, stamp_size: int,
                fwhm_multiple: float = KERNEL_FWHM_MULTIPLE,
                max_pix: int | None = None) -> np.ndarray:
    """Odd kernel size (pixels) for each FWHM (arcsec), capped by :func:`kernel_cap`."""
    cap = kernel_cap(stamp_size, max_pix)
    return np.clip(wanted_kernel_size(fwhm, pixscale, fwhm_multiple), min(MIN_KERNEL_SIZE, cap), cap)


def _profile(r2: np.ndarray, fwhm: np.ndarray, model: str, beta: float) -> np.ndarray:
    if model == "moffat":
        alpha = fwhm / (2.0 * np.sqrt(2.0 ** (1.0 / beta) - 1.0))
        return (1.0 + r2 / (alpha * alpha)) ** (-beta)
    if model == "gaussian":
        sigma = fwhm / (2.0 * np.sqrt(2.0 * np.log(2.0)))
        return np.exp(-0.5 * r2 / (sigma * sigma))
    raise ValueError(f"psf_model {model!r}: must be one of {PSF_MODELS}")


def psf_kernel(
    fwhm: float,
    pixscale: float = 0.262,
    *,
    model: str = "moffat",
    beta: float = 3.5,
    size: int | None = None,
    stamp_size: int = 64,
    fwhm_multiple: float = KERNEL_FWHM_MULTIPLE,
    max_pix: int | None = None,
) -> np.ndarray:
    """Unit-sum odd kernel (size, size) for one FWHM (arcsec) at ``pixscale`` arcsec/pixel.

    ``size`` defaults to :func:`kernel_size` (``fwhm_multiple``, ``max_pix``); an explicit
    size is still capped by the stamp and must be odd.
    """
    check_range("psf_fwhm", np.atleast_1d(fwhm), lo=0.0, lo_open=True)
    check_range("pixscale", np.atleast_1d(pixscale), lo=0.0, lo_open=True)
    if model == "moffat":
        check_range("moffat_beta", np.atleast_1d(beta), lo=1.0, lo_open=True)
    if size is None:
        size = int(kernel_size(fwhm, pixscale, stamp_size, fwhm_multiple, max_pix)[0])
    elif size % 2 == 0 or size < 1:
        raise ValueError(f"kernel size {size}: must be odd and positive")
    size = min(size, max_kernel_size(stamp_size))
    half = size // 2
    r = np.arange(-half, half + 1, dtype=np.float64) * pixscale
    r2 = r[None, :] ** 2 + r[:, None] ** 2
    k = _profile(r2, float(fwhm), model, beta)
    return k / k.sum()


def measure_fwhm(kernel: np.ndarray, pixscale: float) -> float:
    """FWHM (arcsec) of a centred kernel: half-maximum crossing along the central row and
    column, interpolated linearly in ``log(profile)`` versus ``r^2``."""
    k = np.asarray(kernel, dtype=np.float64)
    c = k.shape[0] // 2
    peak = k[c, c]
    out = []
    for prof in (k[c, c:], k[c, c::-1], k[c:, c], k[c::-1, c]):
        below = np.flatnonzero(prof < 0.5 * peak)
        if below.size == 0:
            raise ValueError("kernel does not fall below half maximum: too small to measure")
        i = int(below[0])
        y0, y1 = np.log(prof[i - 1] / peak), np.log(prof[i] / peak)
        x0, x1 = (i - 1) ** 2, i**2
        r2 = x0 + (np.log(0.5) - y0) * (x1 - x0) / (y1 - y0)
        out.append(2.0 * np.sqrt(r2) * pixscale)
    return float(np.mean(out))
