"""Quantized stamp storage: floats -> integers at a stated fraction of the local noise (lossy).

The convention is FITS tile compression's (CFITSIO ``fits_quantize_float`` with
``SUBTRACTIVE_DITHER_2``, what DR10's own coadd files use): per stamp and band a step
``q = sigma / Q`` (``Q`` = ``output.quantize``, levels per noise sigma), a dither ``R`` uniform in
[0, 1) per pixel, and

    I = round(x / q + R - 0.5)          x' = (I - R + 0.5) * q

so ``|x' - x| <= q / 2`` and the error is uniform and independent of the pixel: it adds
``q**2 / 12`` to the variance (0.5% of sigma**2 at Q = 4, 0.26% in sigma). Exact zeros and NaN
are stored as the reserved integers ``ZERO_VALUE`` and ``NULL_VALUE`` and come back exactly.

``sigma`` of a band is the stamp's pixel noise from its inverse variance,
``1 / sqrt(median(invvar > 0))``; a band without positive invvar uses the image's own noise
(``1.4826 MAD`` of adjacent-pixel differences / sqrt 2) and, when that is zero too (a blank
stamp), ``q = 1``. A band whose values would overflow int32 gets the smallest step that fits
(larger than sigma / Q; recorded like any other). Steps are float32 (``quant_step``, one per
band) and the dither is a pure function of the row's ``quant_seed`` (blake2b of task_id and the
salt ``quant_dither``) and the array (0 image, 1 arc): ``PCG64([seed, k])``, float64 uniforms.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Reserved integers (FITS: NULL_VALUE for NaN, ZERO_VALUE for exact zeros under dither 2).
NULL_VALUE = -2147483647
ZERO_VALUE = -2147483646
#: Largest |I| a quantized value may take (room below the reserved integers).
MAX_INT = 2**31 - 8
SALT = "quant_dither"
#: The dither stream of each quantized array.
STREAMS = {"image": 0, "arc": 1}


def seeds(task_ids) -> np.ndarray:
    """Dither seed of each task (int64 bit pattern of blake2b(task_id + '/' + SALT))."""
    from dhs.draws import hash_str

    return np.array([hash_str(f"{t}/{SALT}") for t in task_ids], dtype=np.uint64).view(np.int64)


def dither(seed: int, array: str, n: int) -> np.ndarray:
    """``n`` float64 uniforms in [0, 1): the dither of ``array`` ('image' or 'arc') of one row."""
    s = int(np.int64(seed).view(np.uint64))
    return np.random.Generator(np.random.PCG64([s, STREAMS[array]])).random(n)


def _image_noise(x: np.ndarray) -> float:
    d = np.diff(x[np.isfinite(x)].ravel())
    if d.size == 0:
        return 0.0
    return float(1.4826 * np.median(np.abs(d - np.median(d))) / np.sqrt(2.0))


def noise_sigma(image: np.ndarray, invvar: np.ndarray) -> np.ndarray:
    """Per-band pixel noise (nanomaggies) of stamps: (n, B, S, S) arrays -> (n, B) float64."""
    n, nb = image.shape[:2]
    out = np.zeros((n, nb))
    iv = invvar.reshape(n, nb, -1).astype(np.float64)
    for i in range(n):
        for j in range(nb):
            pos = iv[i, j][iv[i, j] > 0]
            out[i, j] = 1.0 / np.sqrt(np.median(pos)) if pos.size else _image_noise(image[i, j])
    return out


def steps(image: np.ndarray, invvar: np.ndarray, levels: float) -> np.ndarray:
    """float32 (n, B) quantization steps ``sigma / levels`` (see the module doc for fallbacks)."""
    sigma = noise_sigma(image, invvar) / float(levels)
    sigma[~(np.isfinite(sigma) & (sigma > 0))] = 1.0
    with np.errstate(invalid="ignore"):
        peak = np.nanmax(np.abs(image.reshape(image.shape[0], image.shape[1], -1)), axis=2, initial=0.0)
    floor = peak / (MAX_INT - 1)
    return np.maximum(sigma, floor).astype(np.float32)


def _dither_and_step(shape: tuple[int, ...], seed: Any, step: np.ndarray, array: str) -> tuple[np.ndarray, np.ndarray]:
    """One stamp's dither (shape[1:]) and its (B, 1, ...) float64 steps, for ``encode``/``decode``."""
    nb = shape[1]
    r = dither(int(seed), array, int(np.prod(shape[1:]))).reshape(shape[1:])
    return r, np.asarray(step, np.float64).reshape((nb,) + (1,) * (len(shape) - 2))


def encode(values: np.ndarray, step: np.ndarray, seed: np.ndarray, array: str) -> np.ndarray:
    """Quantize (n, B, S, S) float32 ``values`` with (n, B) steps -> int32 of the same shape."""
    n = values.shape[0]
    out = np.empty(values.shape, np.int32)
    for i in range(n):
        r, q = _dither_and_step(values.shape, seed[i], step[i], array)
        x = values[i].astype(np.float64)
        with np.errstate(invalid="ignore"):
            v = np.rint(x / q + r - 0.5)
        v = np.clip(np.nan_to_num(v, nan=0.0), -MAX_INT, MAX_INT).astype(np.int32)
        v[x == 0] = ZERO_VALUE
        v[~np.isfinite(x)] = NULL_VALUE
        out[i] = v
    return out


def decode(ints: np.ndarray, step: np.ndarray, seed: np.ndarray, array: str) -> np.ndarray:
    """Inverse of ``encode``: (n, B, S, S) int32 -> float32 (zeros and NaN restored exactly)."""
    n = ints.shape[0]
    out = np.empty(ints.shape, np.float32)
    for i in range(n):
        r, q = _dither_and_step(ints.shape, seed[i], step[i], array)
        v = ints[i]
        x = (v.astype(np.float64) - r + 0.5) * q
        x[v == ZERO_VALUE] = 0.0
        x[v == NULL_VALUE] = np.nan
        out[i] = x
    return out
