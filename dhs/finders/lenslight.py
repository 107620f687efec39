"""Lens-galaxy light models for the arc finder: pure NumPy, vectorised over a batch of stamps.

Coordinates: pixel (i, j) of an S x S stamp has x = j - c, y = i - c (pixels) with c = S // 2,
the pixel the survey stamps centre on the target galaxy. Angles are counter-clockwise from +x.

- :func:`core_shape`: centre, axis ratio and orientation of the lens light from adaptive
  (elliptical-Gaussian-weighted) second moments of one image, iterated a few times.
- :func:`elliptical_median_model`: a smooth, non-parametric elliptical profile: the median of the
  pixels in elliptical annuli of the core shape, linearly interpolated in elliptical radius. It
  follows any radial profile (de Vaucouleurs, Sersic, the PSF's wings) and, being a median, is
  untouched by an arc that covers less than half of an annulus.
- :func:`colour_difference`: a bluer band minus a redder band scaled by the least-squares ratio
  fitted on the core (the lens galaxy's light, red, cancels; an arc, blue, stays), as RingFinder.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Floor of an axis ratio from the moments (a flatter core is not an elliptical galaxy).
MIN_AXIS_RATIO = 0.3


@dataclass(frozen=True)
class CoreShape:
    """Per stamp (n,): centre offset dx, dy (pixels from pixel (S//2, S//2)), axis ratio q in
    [MIN_AXIS_RATIO, 1] and orientation phi (rad, counter-clockwise from +x)."""

    dx: np.ndarray
    dy: np.ndarray
    q: np.ndarray
    phi: np.ndarray


def grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) pixel offsets from pixel (size // 2, size // 2), each (size, size)."""
    c = size // 2
    y, x = np.indices((size, size), dtype=np.float64)
    return x - c, y - c


def core_shape(image: np.ndarray, good: np.ndarray, sigma_pix: float, iterations: int = 3,
               max_shift_pix: float = 2.0) -> CoreShape:
    """Adaptive moments of ``image`` (n, S, S) with an elliptical Gaussian weight of size
    ``sigma_pix`` (pixels), over ``good`` pixels, started round at the stamp centre.

    Negative pixels count as zero; the centre may move at most ``max_shift_pix``; only the pixels
    within 3 ``sigma_pix`` + ``max_shift_pix`` of the centre are used. A stamp without positive
    flux gets a round shape at the centre.
    """
    n, size, _ = image.shape
    h = min(size // 2, int(np.ceil(3.0 * sigma_pix + max_shift_pix)))
    c = size // 2
    win = slice(c - h, min(c + h + 1, size))
    x, y = (a[win, win] for a in grid(size))
    img = np.where(good[:, win, win], np.clip(image[:, win, win], 0.0, None), 0.0).astype(np.float64)
    dx = np.zeros(n)
    dy = np.zeros(n)
    cxx = np.full(n, sigma_pix ** 2)
    cyy = cxx.copy()
    cxy = np.zeros(n)
    for _ in range(iterations):
        xs = x[None] - dx[:, None, None]
        ys = y[None] - dy[:, None, None]
        det = cxx * cyy - cxy ** 2
        ixx, iyy, ixy = cyy / det, cxx / det, -cxy / det
        w = img * np.exp(-0.5 * (ixx[:, None, None] * xs ** 2 + iyy[:, None, None] * ys ** 2
                                 + 2 * ixy[:, None, None] * xs * ys))
        tot = w.sum(axis=(1, 2))
        ok = tot > 0
        safe = np.where(ok, tot, 1.0)
        mx = (w * xs).sum(axis=(1, 2)) / safe
        my = (w * ys).sum(axis=(1, 2)) / safe
        qxx = (w * (xs - mx[:, None, None]) ** 2).sum(axis=(1, 2)) / safe
        qyy = (w * (ys - my[:, None, None]) ** 2).sum(axis=(1, 2)) / safe
        qxy = (w * (xs - mx[:, None, None]) * (ys - my[:, None, None])).sum(axis=(1, 2)) / safe
        dx = np.where(ok, np.clip(dx + mx, -max_shift_pix, max_shift_pix), 0.0)
        dy = np.where(ok, np.clip(dy + my, -max_shift_pix, max_shift_pix), 0.0)
        # the weighted moments of a Gaussian-like profile are half its own (weight = its shape)
        good_q = ok & (qxx > 0) & (qyy > 0) & (qxx * qyy - qxy ** 2 > 0)
        cxx = np.where(good_q, 2 * qxx, sigma_pix ** 2)
        cyy = np.where(good_q, 2 * qyy, sigma_pix ** 2)
        cxy = np.where(good_q, 2 * qxy, 0.0)
    tr, diff = cxx + cyy, cxx - cyy
    root = np.sqrt(diff ** 2 + 4 * cxy ** 2)
    lam1, lam2 = 0.5 * (tr + root), np.maximum(0.5 * (tr - root), 1e-12)
    q = np.clip(np.sqrt(lam2 / lam1), MIN_AXIS_RATIO, 1.0)
    phi = 0.5 * np.arctan2(2 * cxy, diff)
    return CoreShape(dx=dx, dy=dy, q=q, phi=phi)


def elliptical_radius(size: int, shape: CoreShape) -> np.ndarray:
    """(n, S, S) circularised elliptical radius sqrt(q x'^2 + y'^2 / q) (pixels), x' along the
    major axis, about the fitted centre."""
    x, y = grid(size)
    xs = x[None] - shape.dx[:, None, None]
    ys = y[None] - shape.dy[:, None, None]
    c, s = np.cos(shape.phi)[:, None, None], np.sin(shape.phi)[:, None, None]
    xp = c * xs + s * ys
    yp = -s * xs + c * ys
    q = shape.q[:, None, None]
    return np.sqrt(q * xp ** 2 + yp ** 2 / q)


def elliptical_median_model(channels: np.ndarray, good: np.ndarray, r_ell: np.ndarray,
                            bin_pix: float) -> np.ndarray:
    """Median profile model of ``channels`` (n, C, S, S) in elliptical annuli of width ``bin_pix``.

    ``good`` (n, S, S): pixels that take part; ``r_ell`` (n, S, S): elliptical radius (pixels).
    The model at a
    pixel is the linear interpolation, at its radius, of the medians of the good pixels of the
    annuli ``[k, k + 1) bin_pix`` (centres ``(k + 0.5) bin_pix``); annuli without good pixels
    take the value of the nearest inner annulus that has some (else the nearest outer one, else
    0). Returns (n, C, S, S) float64. Compiled (``dhs.finders.kernels``) when numba is enabled,
    else :func:`median_model_numpy`; both give the same numbers.
    """
    from dhs.finders import kernels

    n, nc, size, _ = channels.shape
    npix = size * size
    nbin = int(np.ceil(r_ell.max() / bin_pix)) + 2 if n else 1
    k = np.minimum((r_ell / bin_pix).astype(np.int64), nbin - 1).reshape(n, npix)
    kk = np.where(good.reshape(n, npix), k, nbin)  # nbin: not in any annulus
    t = (r_ell / bin_pix - 0.5).reshape(n, npix)
    vals = np.ascontiguousarray(channels.reshape(n, nc, npix), dtype=np.float64)
    if kernels.enabled():
        out = np.empty_like(vals)
        kernels.median_model(vals, kk, t, nbin, out)
    else:
        out = median_model_numpy(vals, kk, t, nbin)
    return out.reshape(n, nc, size, size)


def median_model_numpy(vals: np.ndarray, kk: np.ndarray, t: np.ndarray, nbin: int) -> np.ndarray:
    """The NumPy path of :func:`elliptical_median_model` on flattened stamps: ``vals`` (n, C, P),
    ``kk`` (n, P) annulus index (``nbin``: excluded), ``t`` (n, P) radius in annulus units minus
    0.5. The medians come from one batched sort of keys ``4 k + 2 + v / (|v| + s)`` (s: the mean
    |v| of the stamp's channel), which orders pixels by annulus, then value (the fraction is
    monotonic in v and inside (-1, 1))."""
    n, nc, npix = vals.shape
    flat = (np.arange(n)[:, None] * (nbin + 1) + kk).ravel()
    counts = np.bincount(flat, minlength=n * (nbin + 1)).reshape(n, nbin + 1)
    starts = np.concatenate([np.zeros((n, 1), np.int64), np.cumsum(counts, axis=1)[:, :-1]], axis=1)
    cnt = counts[:, :nbin]
    lo = np.minimum(starts[:, :nbin] + np.maximum(cnt - 1, 0) // 2, npix - 1)
    hi = np.minimum(starts[:, :nbin] + np.maximum(cnt, 1) // 2, npix - 1)
    scale = np.abs(vals).mean(axis=-1, keepdims=True)
    scale = np.where(scale > 0, scale, 1.0)
    keys = vals / (np.abs(vals) + scale)
    keys += 4.0 * kk[:, None, :] + 2.0
    keys.sort(axis=-1)

    def value_at(pos: np.ndarray) -> np.ndarray:
        key = np.take_along_axis(keys, np.broadcast_to(pos[:, None, :], (n, nc, nbin)), axis=-1)
        f = np.clip(key - 4.0 * np.floor(key / 4.0) - 2.0, -1.0 + 1e-15, 1.0 - 1e-15)
        return scale * f / (1.0 - np.abs(f))

    med = 0.5 * (value_at(lo) + value_at(hi))
    med = _fill_empty(med, np.broadcast_to((cnt > 0)[:, None, :], med.shape))
    k0 = np.clip(np.floor(t).astype(np.int64), 0, nbin - 1)
    k1 = np.minimum(k0 + 1, nbin - 1)
    f = np.clip(t - k0, 0.0, 1.0)[:, None, :]
    m0 = np.take_along_axis(med, np.broadcast_to(k0[:, None, :], (n, nc, npix)), axis=-1)
    m1 = np.take_along_axis(med, np.broadcast_to(k1[:, None, :], (n, nc, npix)), axis=-1)
    return m0 * (1.0 - f) + m1 * f


def _fill_empty(med: np.ndarray, has: np.ndarray) -> np.ndarray:
    """Annuli without pixels take the value of the nearest inner annulus that has some (else the
    nearest outer one, else 0)."""
    if has.all():
        return med
    idx = np.where(has, np.arange(med.shape[-1]), -1)
    np.maximum.accumulate(idx, axis=-1, out=idx)
    fwd = np.take_along_axis(med, np.maximum(idx, 0), axis=-1)
    out = np.where(idx >= 0, fwd, np.nan)
    rev = np.where(has[..., ::-1], np.arange(med.shape[-1]), -1)
    np.maximum.accumulate(rev, axis=-1, out=rev)
    back = np.take_along_axis(med[..., ::-1], np.maximum(rev, 0), axis=-1)[..., ::-1]
    out = np.where(np.isnan(out), np.where(rev[..., ::-1] >= 0, back, 0.0), out)
    return out


def colour_difference(blue: np.ndarray, red: np.ndarray, iv_blue: np.ndarray, iv_red: np.ndarray,
                      core: np.ndarray, good: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``blue - alpha red`` per stamp, alpha fitted on the ``core`` (S, S) pixels by least squares
    (alpha = sum(blue red) / sum(red^2) over good core pixels, >= 0).

    Returns (difference (n, S, S), its inverse variance (n, S, S), alpha (n,)).
    """
    sel = good & core[None]
    b = np.where(sel, blue, 0.0).astype(np.float64)
    r = np.where(sel, red, 0.0).astype(np.float64)
    den = (r * r).sum(axis=(1, 2))
    alpha = np.clip(np.where(den > 0, (b * r).sum(axis=(1, 2)) / np.where(den > 0, den, 1.0), 0.0), 0.0, None)
    a = alpha[:, None, None]
    diff = blue.astype(np.float64) - a * red
    both = (iv_blue > 0) & (iv_red > 0)
    var = 1.0 / np.where(both, iv_blue, 1.0) + a ** 2 / np.where(both, iv_red, 1.0)
    iv = np.where(both, 1.0 / var, 0.0)
    return diff, iv, alpha
