"""PSF kernel sizes (pixels) from a FWHM (arcsec), without numpy: the settings record of stage
4c (also shown by ``stage=plan``) holds the kernel size at the default FWHM, and a single size
needs no array. :mod:`dhs.physics.psf` sizes whole arrays with the same rule.

Odd size ``2 ceil(fwhm_multiple / 2 * fwhm / pixscale) + 1``, at least :data:`MIN_KERNEL_SIZE`,
capped at ``max_pix`` pixels and so that the kernel never exceeds the stamp (at most ``N`` or
``N - 1`` pixels for odd or even ``N``).
"""

from __future__ import annotations

import math

KERNEL_FWHM_MULTIPLE = 5.0
MIN_KERNEL_SIZE = 3


def max_kernel_size(stamp_size: int) -> int:
    """Largest odd kernel size that fits in a stamp of ``stamp_size`` pixels."""
    return stamp_size if stamp_size % 2 else stamp_size - 1


def kernel_cap(stamp_size: int, max_pix: int | None = None) -> int:
    """Largest odd kernel size allowed: the stamp's (:func:`max_kernel_size`), and at most
    ``max_pix`` pixels (rounded down to odd) when given."""
    cap = max_kernel_size(stamp_size)
    if max_pix is not None:
        if int(max_pix) < 1:
            raise ValueError(f"max_pix {max_pix}: must be a positive number of pixels")
        cap = min(cap, max_kernel_size(int(max_pix)))
    return cap


def kernel_size_1(fwhm: float, pixscale: float, stamp_size: int,
                  fwhm_multiple: float = KERNEL_FWHM_MULTIPLE, max_pix: int | None = None) -> int:
    """Odd kernel size (pixels) of one FWHM (arcsec), capped by :func:`kernel_cap`; the value of
    ``dhs.physics.psf.kernel_size`` for that FWHM."""
    for name, value in (("psf_fwhm", fwhm), ("kernel_fwhm_multiple", fwhm_multiple)):
        if not (math.isfinite(float(value)) and float(value) > 0):
            raise ValueError(f"{name} = {value!r}: must be finite and > 0.0")
    cap = kernel_cap(stamp_size, max_pix)
    want = 2 * math.ceil(0.5 * float(fwhm_multiple) * float(fwhm) / pixscale - 1e-9) + 1
    return min(max(want, min(MIN_KERNEL_SIZE, cap)), cap)
