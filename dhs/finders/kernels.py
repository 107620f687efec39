"""Compiled kernels (numba) of the arc finder, with the same numbers as their NumPy paths.

numba is optional and switched exactly as the physics kernels (``dhs.physics.kernels``:
``DHS_NUMBA=0`` or no numba means NumPy); kernels compile lazily on first use and are cached on
disk.
"""

from __future__ import annotations

import math

import numpy as np

from dhs.physics.kernels import enabled, njit

__all__ = ["enabled", "median_model"]


@njit(cache=True, nogil=True)
def median_model(vals, kk, t, nbin, out):  # noqa: ANN001, ANN201
    """Elliptical median profile model (``dhs.finders.lenslight.median_model_numpy``): ``vals``
    (n, C, P) float64, ``kk`` (n, P) annulus of each pixel (``nbin``: excluded), ``t`` (n, P)
    radius in annulus units minus 0.5; writes the model into ``out`` (n, C, P)."""
    n, nc, npix = vals.shape
    counts = np.zeros(nbin + 1, np.int64)
    starts = np.zeros(nbin + 1, np.int64)
    fill = np.zeros(nbin + 1, np.int64)
    order = np.empty(npix, np.int64)
    buf = np.empty(npix, np.float64)
    med = np.empty(nbin, np.float64)
    has = np.zeros(nbin, np.bool_)
    for i in range(n):
        counts[:] = 0
        for p in range(npix):
            counts[kk[i, p]] += 1
        starts[0] = 0
        for b in range(1, nbin + 1):
            starts[b] = starts[b - 1] + counts[b - 1]
        fill[:] = starts
        for p in range(npix):
            b = kk[i, p]
            order[fill[b]] = p
            fill[b] += 1
        for c in range(nc):
            anyone = False
            for b in range(nbin):
                m = counts[b]
                has[b] = m > 0
                if m == 0:
                    continue
                anyone = True
                for j in range(m):
                    buf[j] = vals[i, c, order[starts[b] + j]]
                med[b] = np.median(buf[:m])
            if not anyone:
                med[:] = 0.0
            else:
                first = 0
                while not has[first]:
                    first += 1
                for b in range(first):  # empty inner annuli: the nearest outer one with pixels
                    med[b] = med[first]
                last = first
                for b in range(first, nbin):  # other empty annuli: the nearest inner one
                    if has[b]:
                        last = b
                    else:
                        med[b] = med[last]
            for p in range(npix):
                tp = t[i, p]
                k0 = int(math.floor(tp))
                k0 = min(max(k0, 0), nbin - 1)
                k1 = min(k0 + 1, nbin - 1)
                f = min(max(tp - k0, 0.0), 1.0)
                out[i, c, p] = med[k0] * (1.0 - f) + med[k1] * f
