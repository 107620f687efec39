"""Compiled ray-shooting kernels (numba) for :mod:`dhs.physics.raytrace`.

Each kernel renders whole stamps in one pass: corner rays -> per-pixel supersampling
flags -> deflection and source lookup for the sub-pixel rays, pixel by pixel (each
pixel's rays staged through two small buffers so that independent rays overlap). The
arithmetic mirrors the NumPy path operation by operation (same formulas, same order,
no fast-math), so both give the same numbers to a few units in the last place; only
``atan`` (libm vs NumPy) and ``log1p`` (from ``log``, see :func:`_log1p`) differ.

numba is optional: :func:`enabled` is False when it cannot be imported, or when the
environment variable ``DHS_NUMBA=0`` (read at import) or :data:`USE_NUMBA` = False asks
for the pure NumPy path (here and in :func:`dhs.physics.lens.image_position`, whose
Newton loop also has a kernel). Kernels are compiled lazily on first use and cached on disk;
per-stamp parameters travel as float64 tables to keep the number of signatures small
(templates: float32 or float64).
"""

from __future__ import annotations

import math
import os

import numpy as np

USE_NUMBA = os.environ.get("DHS_NUMBA", "1").strip().lower() not in ("0", "false", "no", "off")

try:  # pragma: no cover - exercised by whichever path the environment provides
    from numba import njit

    HAVE_NUMBA = True
except Exception:  # noqa: BLE001 - any import failure means: use NumPy
    HAVE_NUMBA = False

    def njit(*args, **kwargs):  # type: ignore[no-redef]  # noqa: ANN002, ANN003, ANN201
        def wrap(fn):  # noqa: ANN001, ANN202
            return fn
        return wrap

# Lens table columns (see raytrace._tables): q, f, b, cos, sin, center_x, center_y,
# gamma1, gamma2. Frame table: x0, y0, m11, m12, m21, m22, half_u, half_v.
# Sersic table: r_sersic, amp, bn, inv_n, r_core, i_core, c_core (r_core 0: no core).
R_FLOOR = 1e-15
#: Rays closer than this (arcsec) to the singular lens centre carry no light (the central image
#: of an isothermal lens has zero flux); they map to OFF_SOURCE, outside every source.
SINGULAR_R = 1e-9
OFF_SOURCE = 1e30
SERSIC_SMOOTHING = 1e-4
SERSIC_MAX_R_FRAC = 1000.0


def enabled() -> bool:
    """True when the compiled kernels will be used."""
    return HAVE_NUMBA and USE_NUMBA


@njit(cache=True, nogil=True)
def _log1p(w):  # noqa: ANN001, ANN202
    """log(1 + w) to a few ulp from the fast ``log`` (libm's log1p is ~3x slower)."""
    u = 1.0 + w
    if u == 1.0:
        return w
    return math.log(u) * (w / (u - 1.0))


@njit(cache=True, nogil=True)
def _to_frame(x, y, p):  # noqa: ANN001, ANN202
    """Source-frame coordinates (u, v) of the image-plane ray (x, y); ``p`` is the
    tuple from :func:`_params` (lens geometry, then the source frame)."""
    q, f, bf, c, s, cx, cy, g1, g2, x0, y0, m11, m12, m21, m22 = p
    dx = x - cx
    dy = y - cy
    if dx * dx + dy * dy < SINGULAR_R * SINGULAR_R:
        return OFF_SOURCE, OFF_SOURCE
    xr = c * dx + s * dy
    yr = -s * dx + c * dy
    psi = max(math.sqrt(q * q * xr * xr + yr * yr), R_FLOOR)
    ax_r = bf * math.atan(f * xr / psi)
    z = f * yr / psi
    ay_r = (0.5 * bf) * _log1p(2.0 * z / (1.0 - z))
    ax = c * ax_r - s * ay_r + g1 * dx + g2 * dy
    ay = s * ax_r + c * ay_r + g2 * dx - g1 * dy
    sx = x - ax - x0
    sy = y - ay - y0
    return m11 * sx + m12 * sy, m21 * sx + m22 * sy


@njit(cache=True, nogil=True)
def _params(lp, fp):  # noqa: ANN001, ANN202
    return (lp[0], lp[1], lp[2] / lp[1], lp[3], lp[4], lp[5], lp[6], lp[7], lp[8],
            fp[0], fp[1], fp[2], fp[3], fp[4], fp[5])


@njit(cache=True, nogil=True)
def _grid_rays(px, py, xo, yo, p, us, vs):  # noqa: ANN001, ANN202
    """Source-frame (u, v) of the rays ``(px + xo[b], py + yo[a])``, row-major, into
    ``us``, ``vs``: the operations of :func:`_to_frame`, staged so that independent
    rays overlap in the pipeline."""
    q, f, bf, c, s, cx, cy, g1, g2, x0, y0, m11, m12, m21, m22 = p
    nx, ny = xo.size, yo.size
    m = 0
    for a in range(ny):
        for b in range(nx):
            dx = (px + xo[b]) - cx
            dy = (py + yo[a]) - cy
            xr = c * dx + s * dy
            yr = -s * dx + c * dy
            psi = max(math.sqrt(q * q * xr * xr + yr * yr), R_FLOOR)
            us[m] = f * xr / psi
            z = f * yr / psi
            vs[m] = 2.0 * z / (1.0 - z)
            m += 1
    for m in range(nx * ny):
        us[m] = math.atan(us[m])
    for m in range(nx * ny):
        vs[m] = _log1p(vs[m])
    m = 0
    for a in range(ny):
        for b in range(nx):
            x = px + xo[b]
            y = py + yo[a]
            dx = x - cx
            dy = y - cy
            ax_r = bf * us[m]
            ay_r = (0.5 * bf) * vs[m]
            ax = c * ax_r - s * ay_r + g1 * dx + g2 * dy
            ay = s * ax_r + c * ay_r + g2 * dx - g1 * dy
            sx = x - ax - x0
            sy = y - ay - y0
            if dx * dx + dy * dy < SINGULAR_R * SINGULAR_R:
                us[m] = OFF_SOURCE
                vs[m] = OFF_SOURCE
            else:
                us[m] = m11 * sx + m12 * sy
                vs[m] = m21 * sx + m22 * sy
            m += 1


@njit(cache=True, nogil=True)
def _flags(flags, p, hu, hv, xk, xc, guard, margin, cu, cv):  # noqa: ANN001, ANN202
    """Supersampling flags (N, N) of one stamp from its (N+1)^2 corner rays."""
    n = xc.size
    cx, cy = p[5], p[6]
    zero = np.zeros(1)
    for i in range(n + 1):
        _grid_rays(0.0, xk[i], xk, zero, p, cu[i], cv[i])
    count = 0
    for i in range(n):
        near_y = abs(xc[i] - cy) <= guard
        for j in range(n):
            a, b2, c, d = cu[i, j], cu[i, j + 1], cu[i + 1, j], cu[i + 1, j + 1]
            lo = min(min(a, b2), min(c, d))
            hi = max(max(a, b2), max(c, d))
            m = margin * (hi - lo) + 1e-9
            ok = (hi + m >= -hu) and (lo - m <= hu)
            a, b2, c, d = cv[i, j], cv[i, j + 1], cv[i + 1, j], cv[i + 1, j + 1]
            lo = min(min(a, b2), min(c, d))
            hi = max(max(a, b2), max(c, d))
            m = margin * (hi - lo) + 1e-9
            ok = ok and (hi + m >= -hv) and (lo - m <= hv)
            if not ok and near_y and abs(xc[j] - cx) <= guard:
                ok = True
            flags[i, j] = ok
            count += ok
    return count


@njit(cache=True, nogil=True)
def _bilinear(tpl, u, v):  # noqa: ANN001, ANN202
    """Bilinear value of the zero-bordered (H+2, W+2) grid around ``tpl`` (H, W) at
    template coordinates (u, v); exactly 0 off the grid."""
    h, w = tpl.shape
    wp, hp = w + 2, h + 2
    cc = u + 0.5 * (wp - 1)
    rc = v + 0.5 * (hp - 1)
    if not (cc > 0.0 and cc < wp - 1.0 and rc > 0.0 and rc < hp - 1.0):
        return 0.0
    c0 = min(int(cc), wp - 2)
    r0 = min(int(rc), hp - 2)
    t = cc - c0
    s = rc - r0
    if r0 >= 1 and c0 >= 1 and r0 < h and c0 < w:
        p00, p01 = float(tpl[r0 - 1, c0 - 1]), float(tpl[r0 - 1, c0])
        p10, p11 = float(tpl[r0, c0 - 1]), float(tpl[r0, c0])
    else:
        p00 = float(tpl[r0 - 1, c0 - 1]) if r0 >= 1 and c0 >= 1 else 0.0
        p01 = float(tpl[r0 - 1, c0]) if r0 >= 1 and c0 < w else 0.0
        p10 = float(tpl[r0, c0 - 1]) if r0 < h and c0 >= 1 else 0.0
        p11 = float(tpl[r0, c0]) if r0 < h and c0 < w else 0.0
    top = p00 + t * (p01 - p00)
    bot = p10 + t * (p11 - p10)
    return top + s * (bot - top)


@njit(cache=True, nogil=True)
def _sersic(u, v, sp):  # noqa: ANN001, ANN202
    r_ell = math.hypot(u, v)
    rs = max(sp[0], SERSIC_SMOOTHING)
    frac = max(r_ell, SERSIC_SMOOTHING) / rs
    val = sp[1] * math.exp(sp[2] * (1.0 - math.exp(sp[3] * math.log(frac))))
    if not frac <= SERSIC_MAX_R_FRAC:
        val = 0.0
    if sp[4] > 0.0 and r_ell < sp[4]:
        val = sp[5] + sp[6] * (1.0 - (r_ell * r_ell) / (sp[4] * sp[4]))
    return val


@njit(cache=True, nogil=True)
def render_templates(out, nss, lens, frame, tpl, norm, xk, xc, offs, pixscale, guard,  # noqa: ANN001, ANN201
                     margin, uniform):
    """Template morphologies into ``out`` (n, N, N) float64; ``nss`` (n,) gets the number
    of supersampled pixels. ``norm`` (n,): template sum times pixscale^2 (arcsec^2).
    ``uniform``: supersample every pixel (no flags)."""
    n_st, n = out.shape[0], out.shape[1]
    k = offs.size
    flags = np.ones((n, n), dtype=np.bool_)
    cu = np.empty((n + 1, n + 1))
    cv = np.empty((n + 1, n + 1))
    area = pixscale * pixscale / (k * k)
    us = np.empty(k * k)
    vs = np.empty(k * k)
    for st in range(n_st):
        p = _params(lens[st], frame[st])
        t = tpl[st]
        if uniform:
            nss[st] = n * n
        else:
            nss[st] = _flags(flags, p, frame[st, 6], frame[st, 7], xk, xc, guard, margin,
                             cu, cv)
        scale = area / norm[st]
        for i in range(n):
            for j in range(n):
                if not flags[i, j]:
                    out[st, i, j] = 0.0
                    continue
                _grid_rays(xc[j], xc[i], offs, offs, p, us, vs)
                acc = 0.0
                for m in range(k * k):
                    acc += _bilinear(t, us[m], vs[m])
                out[st, i, j] = acc * scale
    return out


@njit(cache=True, nogil=True)
def render_sersics(out, nss, lens, frame, sersic, xk, xc, offs, pixscale, guard,  # noqa: ANN001, ANN201
                   margin, uniform):
    """Sersic morphologies into ``out`` (n, N, N) float64: flagged pixels take the
    ``len(offs)``^2 sub-pixel samples, the others one sample at the pixel centre."""
    n_st, n = out.shape[0], out.shape[1]
    k = offs.size
    flags = np.ones((n, n), dtype=np.bool_)
    cu = np.empty((n + 1, n + 1))
    cv = np.empty((n + 1, n + 1))
    area1 = pixscale * pixscale
    area = pixscale * pixscale / (k * k)
    us = np.empty(k * k)
    vs = np.empty(k * k)
    for st in range(n_st):
        p = _params(lens[st], frame[st])
        sp = (sersic[st, 0], sersic[st, 1], sersic[st, 2], sersic[st, 3], sersic[st, 4],
              sersic[st, 5], sersic[st, 6])
        if uniform:
            nss[st] = n * n if k > 1 else 0
        else:
            nss[st] = _flags(flags, p, frame[st, 6], frame[st, 7], xk, xc, guard, margin,
                             cu, cv)
        for i in range(n):
            for j in range(n):
                if not flags[i, j]:
                    u, v = _to_frame(xc[j] + 0.0, xc[i] + 0.0, p)
                    out[st, i, j] = 0.0 + _sersic(u, v, sp) * area1
                    continue
                _grid_rays(xc[j], xc[i], offs, offs, p, us, vs)
                acc = 0.0
                for m in range(k * k):
                    acc += _sersic(us[m], vs[m], sp)
                out[st, i, j] = acc * area
    return out


@njit(cache=True, nogil=True)
def _hessian(x, y, lp):  # noqa: ANN001, ANN202
    q, b, c, s = lp[0], lp[2], lp[3], lp[4]
    dx = x - lp[5]
    dy = y - lp[6]
    xr = c * dx + s * dy
    yr = -s * dx + c * dy
    psi = max(math.sqrt(q * q * xr * xr + yr * yr), R_FLOOR)
    r2 = max(xr * xr + yr * yr, R_FLOOR**2)
    k = b / (psi * r2)
    hxx_r = k * yr * yr
    hyy_r = k * xr * xr
    hxy_r = -k * xr * yr
    c2, s2, cs = c * c, s * s, c * s
    fxx = c2 * hxx_r - 2.0 * cs * hxy_r + s2 * hyy_r + lp[7]
    fyy = s2 * hxx_r + 2.0 * cs * hxy_r + c2 * hyy_r - lp[7]
    fxy = cs * (hxx_r - hyy_r) + (c2 - s2) * hxy_r + lp[8]
    return fxx, fxy, fyy


@njit(cache=True, nogil=True)
def _shoot(x, y, lp):  # noqa: ANN001, ANN202
    """Source-plane position of (x, y): libm ``log1p``, as in the NumPy deflection."""
    q, f, b, c, s = lp[0], lp[1], lp[2], lp[3], lp[4]
    dx = x - lp[5]
    dy = y - lp[6]
    xr = c * dx + s * dy
    yr = -s * dx + c * dy
    psi = max(math.sqrt(q * q * xr * xr + yr * yr), R_FLOOR)
    bf = b / f
    ax_r = bf * math.atan(f * xr / psi)
    z = f * yr / psi
    ay_r = (0.5 * bf) * math.log1p(2.0 * z / (1.0 - z))
    ax = c * ax_r - s * ay_r + lp[7] * dx + lp[8] * dy
    ay = s * ax_r + c * ay_r + lp[8] * dx - lp[7] * dy
    return x - ax, y - ay


@njit(cache=True, nogil=True)
def image_positions(lens, theta_e, bx, by, n_iter, out):  # noqa: ANN001, ANN201
    """Damped Newton for the primary image of each source-plane point (bx, by) arcsec;
    ``out`` (n, 3) gets x, y and the residual (arcsec). Mirrors
    :func:`dhs.physics.lens.image_position`."""
    for st in range(bx.size):
        lp = lens[st]
        rx = bx[st] - lp[5]
        ry = by[st] - lp[6]
        rr = math.hypot(rx, ry)
        if rr < 1e-12:
            ux, uy = 1.0, 0.0
        else:
            ux, uy = rx / rr, ry / rr
        x = bx[st] + theta_e[st] * ux
        y = by[st] + theta_e[st] * uy
        max_step = 0.25 * max(theta_e[st], 1e-3)
        for _ in range(n_iter):
            sx, sy = _shoot(x, y, lp)
            ex, ey = bx[st] - sx, by[st] - sy
            fxx, fxy, fyy = _hessian(x, y, lp)
            a11, a12, a22 = 1.0 - fxx, -fxy, 1.0 - fyy
            det = a11 * a22 - a12 * a12
            if abs(det) < 1e-12:
                det = math.copysign(1e-12, det)
            dx = (a22 * ex - a12 * ey) / det
            dy = (-a12 * ex + a11 * ey) / det
            step = math.hypot(dx, dy)
            scale = min(1.0, max_step / max(step, 1e-300))
            x = x + scale * dx
            y = y + scale * dy
        sx, sy = _shoot(x, y, lp)
        out[st, 0] = x
        out[st, 1] = y
        out[st, 2] = math.hypot(bx[st] - sx, by[st] - sy)
    return out
