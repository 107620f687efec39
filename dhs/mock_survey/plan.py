"""The embedded mock survey: what it contains, drawn deterministically from the config.

A mock survey is ``n_bricks`` real DR10 bricks (real names, ids and centres from
``dhs.survey.bricks``, Dec between -20 and +30 deg, inside DR10 south) grouped in ``n_regions``
regions of RA-adjacent bricks. Every random quantity is drawn from a generator seeded by
``blake2b(f"{seed}/{salt}/{id}")`` (``dhs.draws.hash_str``): a pure function of the mock seed,
a named salt and the brick or region, never of drawing order across bricks.

Per brick (``brick_size_pix`` x ``brick_size_pix`` pixels of 0.262 arcsec, legacypipe TAN WCS):

- seeing: r-band PSF FWHM level ``k % 3`` of three levels spanning ``psf_fwhm_r_range`` (brick
  index ``k``), +-0.02 arcsec jitter; g is 1.12x broader and z 0.88x narrower. The psfsize maps
  vary linearly across the brick by up to +-3 % from the brick value (its value at the centre).
- depth: r-band 5-sigma point-source magnitude ``depth_r_levels[k % n_levels]``; g is 0.5 mag
  deeper and z 0.9 mag shallower. ``psfdepth = 25 * 10**(0.8 (m5 - 22.5))`` (1/nmgy^2) and the
  pixel inverse variance at the brick centre is ``psfdepth / sum(K**2)`` with ``K`` the unit-sum
  Moffat PSF kernel (beta 3.5, the psfsize FWHM, sampled at pixel centres as stage 4c builds it):
  the point-source depth of an optimal PSF-weighted flux. invvar varies linearly by up to +-5 %.
- PSF: Moffat (beta 3.5) with the local psfsize FWHM; psfsize is the Moffat FWHM (arcsec).
- primary area: the real brick's RA1..RA2 x DEC1..DEC2 intersected with the central region that
  leaves a ``PRIMARY_BORDER_PIX`` (10) pixel border (a small mock brick lies inside the real
  brick's area, so the border alone sets NPRIMARY there).
- LRG-like galaxies following DR10 LRGs (docs/mock_survey.md): de Vaucouleurs profiles (Sersic
  n = 4, axis ratio 0.55 to 1, truncated smoothly between 4 and 5 r_e), at least
  ``EDGE_MARGIN_PIX`` (50) pixels from the brick edges and ``MIN_GALAXY_SEP_PIX`` apart.
  Observed r ~ N(21.1, 0.5) truncated to [19.5, 22.3]; semi-major half-light radius
  0.8 exp(-0.3 (r - 21.1)) arcsec with 0.25 log-normal scatter, within [0.35, 2];
  MW-corrected colours r-z 1 to 2, g-r 1.3 to 2, z-W1 0.6 to 2.3. Position angle ``phi`` is
  counter-clockwise from the brick's +x axis; the catalogs give Tractor's SHAPE_E1/E2 of it
  (East of North, ``dhs.physics.angles``).
- stars: ``stars_per_brick`` bright stars near the brick edges (the first with Gaia G 12.6 to 12.95:
  BRIGHT + MEDIUM masks; the others G 14 to 15.5: MEDIUM only; radii from legacypipe's
  ``1630 arcsec * 1.396**(-G)`` relation, BRIGHT at half of it), saturated cores (SATUR_<band>
  where the model exceeds ``SAT_LEVEL_NMGY``); one unsaturated isolated PSF star (r 17.5 to
  18.5) at an integer pixel for PSF checks; WISE W1/W2 mask circles around each bright star
  and one WISE-only circle.
- a rectangular patch with zero invvar (and zero image) in every band.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from dhs.draws import hash_str
from dhs.errors import ConfigError
from dhs.physics.angles import angle_from_stamp
from dhs.physics.photometry import EXTINCTION_R
from dhs.physics.psf import psf_kernel
from dhs.survey import bricks
from dhs.survey.wcs import brick_wcs, pixel_to_radec

FORMAT_VERSION = 1
MOCK_BANDS = ("g", "r", "z")
PRIMARY_BORDER_PIX = 10
EDGE_MARGIN_PIX = 50
MIN_GALAXY_SEP_PIX = 24
PSF_STAR_SEP_PIX = 30
MIN_BRICK_SIZE_PIX = 160
SAT_LEVEL_NMGY = 60.0
#: LRG observed r: normal, truncated (docs/mock_survey.md: DESI LRGs in DR10 have median r ~ 21.1).
LRG_R_MEDIAN, LRG_R_SIGMA, LRG_R_RANGE = 21.1, 0.5, (19.5, 22.3)
#: LRG semi-major half-light radius (arcsec) at r = 21.1, and its range.
LRG_RE_MEDIAN, LRG_RE_RANGE = 0.8, (0.35, 2.0)
MOFFAT_BETA = 3.5
FWHM_RATIO = {"g": 1.12, "r": 1.0, "z": 0.88}
DEPTH_OFFSET_MAG = {"g": 0.5, "r": 0.0, "z": -0.9}
R_W1 = 0.184
STAR_COLOR = {"g": 0.6, "r": 0.0, "z": -0.3}
SPLITS = ("train", "val", "test")


class MockConfigError(ConfigError):
    """The mock-survey settings cannot produce a valid survey; the message says which key."""


@dataclass(frozen=True)
class MockParams:
    """Everything that determines the mock survey's bytes (paths excluded)."""

    seed: int
    n_bricks: int
    brick_size_pix: int
    galaxies_per_brick: int
    stars_per_brick: int
    n_regions: int
    psf_fwhm_r_range: tuple[float, float]
    depth_r_levels: tuple[float, ...]
    split_seed: int
    pixscale: float = 0.262

    def config_hash(self) -> str:
        """Hex digest of the parameters and the format version (16 hex digits)."""
        blob = json.dumps({**asdict(self), "format": FORMAT_VERSION}, sort_keys=True)
        return hashlib.blake2b(blob.encode(), digest_size=8).hexdigest()


def check_params(p: MockParams) -> None:
    def bad(key: str, value: Any, why: str) -> None:
        raise MockConfigError(f"mock_survey.{key}={value!r}: {why}")

    if p.brick_size_pix < MIN_BRICK_SIZE_PIX:
        bad("brick_size_pix", p.brick_size_pix, f"must be >= {MIN_BRICK_SIZE_PIX} so that galaxies "
            f"sit {EDGE_MARGIN_PIX} px from the edges (96-pixel stamps fit)")
    if p.n_regions < 3:
        bad("n_regions", p.n_regions, "must be >= 3 so that train, val and test all exist")
    if p.n_bricks < p.n_regions:
        bad("n_bricks", p.n_bricks, f"must be >= n_regions ({p.n_regions}): every region needs a brick")
    if p.galaxies_per_brick < 1 or p.stars_per_brick < 0:
        bad("galaxies_per_brick", p.galaxies_per_brick, "needs >= 1 galaxy and >= 0 stars per brick")
    rng_ok = len(p.psf_fwhm_r_range) == 2 and 0 < p.psf_fwhm_r_range[0] <= p.psf_fwhm_r_range[1]
    if not rng_ok:
        bad("psf_fwhm_r_range", list(p.psf_fwhm_r_range), "must be [min, max] arcsec with 0 < min <= max")
    if not p.depth_r_levels:
        bad("depth_r_levels", list(p.depth_r_levels), "needs at least one 5-sigma r magnitude")


def rng_for(seed: int, salt: str, *ids: Any) -> np.random.Generator:
    """A generator seeded by blake2b of (mock seed, named salt, ids)."""
    key = "/".join([str(int(seed)), salt, *map(str, ids)])
    return np.random.Generator(np.random.PCG64(hash_str(key)))


# ----------------------------------------------------------------------------- bricks, regions
def choose_bricks(p: MockParams) -> list[dict]:
    """Bricks of the survey: region anchors drawn in DR10 south, RA-adjacent bricks per region."""
    per_region = [p.n_bricks // p.n_regions + (1 if r < p.n_bricks % p.n_regions else 0)
                  for r in range(p.n_regions)]
    taken: set[str] = set()
    out: list[dict] = []
    for region in range(p.n_regions):
        for attempt in range(100):
            u = rng_for(p.seed, "region_anchor", region, attempt).random(2)
            row, col = bricks.radec_to_rowcol(u[:1] * 360.0, -20.0 + 50.0 * u[1:])
            ncol = int(bricks.ncol_per_row()[row[0]])
            cols = [(int(col[0]) + j) % ncol for j in range(per_region[region])]
            names = [bricks.center_to_name(*bricks.rowcol_to_center(row[0], c)) for c in cols]
            if not taken.intersection(names):
                break
        taken.update(names)
        for name in names:
            out.append({"brickname": str(name), "region_id": int(region)})
    for k, b in enumerate(out):
        b["index"] = k
    return out


def region_splits(p: MockParams) -> dict[int, str]:
    """Region-level holdout: regions ordered by blake2b(split_seed, region) cycle train/val/test."""
    order = sorted(range(p.n_regions), key=lambda r: hash_str(f"split/{p.split_seed}/{r}"))
    return {region: SPLITS[i % 3] for i, region in enumerate(order)}


def psf_sum_sq(fwhm_arcsec: float, pixscale: float) -> float:
    """sum(K**2) of the unit-sum Moffat kernel (pixel-centre sampled): 1 / N_eff (1/pixel)."""
    half = int(math.ceil(4.0 * fwhm_arcsec / pixscale))
    k = psf_kernel(fwhm_arcsec, pixscale, model="moffat", beta=MOFFAT_BETA, size=2 * half + 1,
                   stamp_size=2 * half + 1)
    return float(np.sum(k * k))


def brick_conditions(p: MockParams, k: int, brickname: str) -> dict:
    """Seeing, depth, gradients and E(B-V) of brick number ``k``."""
    rng = rng_for(p.seed, "conditions", brickname)
    lo, hi = p.psf_fwhm_r_range
    fwhm_r = lo + (hi - lo) * (k % 3) / 2.0 + rng.uniform(-0.02, 0.02)
    fwhm_r = float(np.clip(fwhm_r, lo, hi)) if hi > lo else float(lo)
    m5_r = p.depth_r_levels[k % len(p.depth_r_levels)]
    cond: dict[str, Any] = {"ebv": float(rng.uniform(0.01, 0.10)), "bands": {}}
    for band in MOCK_BANDS:
        fwhm = fwhm_r * FWHM_RATIO[band]
        m5 = m5_r + DEPTH_OFFSET_MAG[band]
        psfdepth = 25.0 * 10 ** (0.8 * (m5 - 22.5))
        cond["bands"][band] = {
            "fwhm": fwhm, "m5": m5, "psfdepth": psfdepth,
            "invvar": psfdepth / psf_sum_sq(fwhm, p.pixscale),
            "fwhm_grad": [float(x) for x in rng.uniform(-0.06, 0.06, 2)],
            "invvar_grad": [float(x) for x in rng.uniform(-0.10, 0.10, 2)],
        }
    return cond


# ----------------------------------------------------------------------------- objects
def medium_radius_pix(gmag: float, pixscale: float) -> float:
    """legacypipe's radius-magnitude relation, 1630 arcsec * 1.396**(-G), in pixels."""
    return 1630.0 * 1.396 ** (-gmag) / pixscale


def _place_stars(p: MockParams, name: str, w: int) -> list[dict]:
    rng = rng_for(p.seed, "bright_stars", name)
    stars = []
    for i in range(p.stars_per_brick):
        g = rng.uniform(12.6, 12.95) if i == 0 else rng.uniform(14.0, 15.5)
        side, t, d = int(rng.integers(0, 4)), rng.uniform(0, w), rng.uniform(0, 0.06 * w)
        x, y = [(d, t), (w - 1 - d, t), (t, d), (t, w - 1 - d)][side]
        rmed = medium_radius_pix(g, p.pixscale)
        stars.append({"x": float(int(x)), "y": float(int(y)), "gaia_g": float(g),
                      "mags": {b: float(g + STAR_COLOR[b]) for b in MOCK_BANDS},
                      "medium_r": rmed, "bright_r": rmed / 2 if g < 13 else 0.0,
                      "wise1_r": 0.8 * rmed, "wise2_r": 0.5 * rmed})
    return stars


def _place_galaxies(p: MockParams, name: str, w: int, stars: list[dict], psf_star: dict,
                    patch: dict) -> list[dict]:
    rng = rng_for(p.seed, "galaxy_positions", name)
    lo, hi = EDGE_MARGIN_PIX, w - 1 - EDGE_MARGIN_PIX
    xy: list[tuple[float, float]] = []
    for _ in range(400 * p.galaxies_per_brick):
        if len(xy) == p.galaxies_per_brick:
            break
        x, y = rng.uniform(lo, hi, 2)
        if any((x - a) ** 2 + (y - b) ** 2 < MIN_GALAXY_SEP_PIX ** 2 for a, b in xy):
            continue
        if (x - psf_star["x"]) ** 2 + (y - psf_star["y"]) ** 2 < PSF_STAR_SEP_PIX ** 2:
            continue
        if any((x - s["x"]) ** 2 + (y - s["y"]) ** 2 < (max(s["bright_r"], 12.0) + 8) ** 2 for s in stars):
            continue
        if patch["x0"] - 4 <= x < patch["x1"] + 4 and patch["y0"] - 4 <= y < patch["y1"] + 4:
            continue
        xy.append((float(x), float(y)))
    n = len(xy)
    rng = rng_for(p.seed, "galaxy_properties", name)
    rmag = np.clip(rng.normal(LRG_R_MEDIAN, LRG_R_SIGMA, n), *LRG_R_RANGE)
    rz = np.clip(rng.normal(1.5, 0.25, n), 1.0, 2.0)
    gr = np.clip(rng.normal(1.65, 0.18, n), 1.3, 2.0)
    zw1 = np.clip(rng.normal(1.3, 0.35, n), 0.6, 2.3)
    re = np.clip(np.exp(-0.3 * (rmag - 21.1) + rng.normal(0.0, 0.25, n)) * LRG_RE_MEDIAN, *LRG_RE_RANGE)
    q = rng.uniform(0.55, 1.0, n)
    phi = rng.uniform(0.0, np.pi, n)
    return [{"objid": i, "x": xy[i][0], "y": xy[i][1], "rmag": float(rmag[i]), "rz": float(rz[i]),
             "gr": float(gr[i]), "zw1": float(zw1[i]), "re_arcsec": float(re[i]), "q": float(q[i]),
             "phi": float(phi[i])} for i in range(n)]


def sky_pa(phi_pix: float) -> float:
    """Position angle East of North (rad) of a brick-frame angle (rad from +x, which is West)."""
    return float(angle_from_stamp(phi_pix) % math.pi)


def galaxy_mags(gal: dict, ebv: float) -> dict[str, float]:
    """Observed (with MW extinction) and MW-corrected magnitudes of a mock galaxy."""
    a = {b: EXTINCTION_R[b] * ebv for b in MOCK_BANDS}
    r_mw = gal["rmag"] - a["r"]
    z_mw = r_mw - gal["rz"]
    g_mw = r_mw + gal["gr"]
    w1_mw = z_mw - gal["zw1"]
    return {"g": g_mw + a["g"], "r": gal["rmag"], "z": z_mw + a["z"], "w1": w1_mw + R_W1 * ebv,
            "g_mw": g_mw, "r_mw": r_mw, "z_mw": z_mw, "w1_mw": w1_mw}


def plan_brick(p: MockParams, info: dict) -> dict:
    """The full content of one brick (plain Python values: picklable, JSON-able)."""
    name, w = info["brickname"], p.brick_size_pix
    b = bricks.brick_from_name(name)
    cond = brick_conditions(p, info["index"], name)
    rng = rng_for(p.seed, "layout", name)
    pw, ph = max(8, w // 12), max(6, w // 16)
    px, py = int(rng.integers(0, w - pw)), int(rng.integers(0, w - ph))
    patch = {"x0": px, "x1": px + pw, "y0": py, "y1": py + ph}
    stars = _place_stars(p, name, w)
    psf_xy = rng.integers(EDGE_MARGIN_PIX, w - EDGE_MARGIN_PIX, 2)
    psf_star = {"x": float(psf_xy[0]), "y": float(psf_xy[1]),
                "mags": {bd: float(m) for bd, m in zip(MOCK_BANDS, rng.uniform(17.5, 18.5) +
                                                       np.array([STAR_COLOR[x] for x in MOCK_BANDS]))}}
    wise_only = {"x": float(rng.uniform(0, w)), "y": float(rng.uniform(0, w)),
                 "wise1_r": float(rng.uniform(12, 24))}
    wise_only["wise2_r"] = 0.6 * wise_only["wise1_r"]
    gals = _place_galaxies(p, name, w, stars, psf_star, patch)
    wcs = brick_wcs(b.ra, b.dec, w, pixscale=p.pixscale)
    for obj in gals + stars + [psf_star]:
        ra, dec = pixel_to_radec(wcs, obj["x"], obj["y"])
        obj["ra"], obj["dec"] = float(ra), float(dec)
    for g in gals:
        g["mags"] = galaxy_mags(g, cond["ebv"])
    return {"brickname": name, "brickid": b.brickid, "region_id": info["region_id"],
            "index": info["index"], "ra": b.ra, "dec": b.dec, "ra1": b.ra1, "ra2": b.ra2,
            "dec1": b.dec1, "dec2": b.dec2, "size": w, "pixscale": p.pixscale, "seed": p.seed,
            "conditions": cond, "zero_patch": patch, "stars": stars, "psf_star": psf_star,
            "wise_only": wise_only, "galaxies": gals}


def plan_survey(p: MockParams) -> list[dict]:
    """Plans of every brick, in brick order (region, then RA)."""
    return [plan_brick(p, info) for info in choose_bricks(p)]
