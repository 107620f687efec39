"""DR10 sweep-format catalogs of the mock survey (``sweep-<ramin><decmin>-<ramax><decmax>.fits``).

Every object of a mock brick becomes one row with DR10 sweep column names, types and units
(fluxes in nanomaggies, inverse variances in 1/nmgy^2, PSFSIZE in arcsec FWHM, PSFDEPTH in
1/nmgy^2, MW_TRANSMISSION = 10**(-0.4 R EBV) with the DR10 coefficients), grouped into files by
the 10 x 5 deg sweep box holding the object (RA 0-10, Dec -10 to -5 is ``000m010-010m005``).

Objects
    - the mock galaxies (TYPE DEV, SERSIC 4, OBJID as in the mock's parent catalog);
    - the mock's stars, which are in the images: bright stars (Gaia G 12.6-15.5) and the PSF star;
    - catalog-only objects (they are **not** in the images), drawn per brick from the salt
      ``sweep_extras`` so the selection has something to reject: faint stars (G 18.5-20.5,
      stellar colours, z - W1 < -1), blue galaxies (r - z < 0.25, z - W1 < 0.45), faint red
      galaxies (z 21.7-22.5), one red galaxy in the zero-invvar patch (NOBS 0) and one inside the
      first star's BRIGHT mask.
Values
    noise-free model fluxes (as the mock's own parent catalog), so a selection on MW-corrected
    magnitudes reproduces the mock's flags up to float32 rounding. PSFSIZE_X, MASKBITS and NOBS_X
    (3 where invvar > 0, else 0) are read from the brick's maps at the object's pixel;
    PSFDEPTH_X = invvar x sum(K^2) there (K the unit-sum Moffat kernel, as the mock's depth).
    FIBERFLUX_Z is the flux of the circularised model (r_e sqrt(q)) convolved with a 1 arcsec FWHM
    Gaussian inside a 1.5 arcsec diameter fibre (the Tractor definition), computed by radial
    integration; FIBERTOTFLUX_X = FIBERFLUX_X (isolated objects). FLUX_IVAR_X approximates the
    galaxy's flux inverse variance as PSFDEPTH_X s^2 / (s^2 + r_e^2), s = FWHM / 2.3548; W1 has a
    5-sigma depth of 20.5 AB. SHAPE_E1/E2 follow the mock's parent catalog.
"""

from __future__ import annotations

import io
import math
from functools import lru_cache

import numpy as np

from dhs.mock_survey.plan import MOCK_BANDS, R_W1, psf_sum_sq, rng_for, sky_pa
from dhs.physics.photometry import EXTINCTION_R

RELEASE = 10000
NOBS_COVERED = 3
W1_DEPTH_AB = 20.5
FIBER_RADIUS_ARCSEC = 0.75
FIBER_SEEING_FWHM = 1.0
STAR_ZW1 = -1.9  # z - W1 (AB) of the mock's stars
#: (name, numpy type) in the order of the file; DR10 sweep names and types.
COLUMNS = (
    [("RELEASE", ">i2"), ("BRICKID", ">i4"), ("BRICKNAME", "S8"), ("OBJID", ">i4"), ("TYPE", "S3"),
     ("RA", ">f8"), ("DEC", ">f8"), ("EBV", ">f4")]
    + [(f"FLUX_{b}", ">f4") for b in ("G", "R", "Z", "W1")]
    + [(f"FLUX_IVAR_{b}", ">f4") for b in ("G", "R", "Z", "W1")]
    + [(f"MW_TRANSMISSION_{b}", ">f4") for b in ("G", "R", "Z", "W1")]
    + [(f"NOBS_{b}", ">i2") for b in ("G", "R", "Z")]
    + [(f"FIBERFLUX_{b}", ">f4") for b in ("G", "R", "Z")]
    + [(f"FIBERTOTFLUX_{b}", ">f4") for b in ("G", "R", "Z")]
    + [(f"PSFSIZE_{b}", ">f4") for b in ("G", "R", "Z")]
    + [(f"PSFDEPTH_{b}", ">f4") for b in ("G", "R", "Z")]
    + [("SHAPE_R", ">f4"), ("SHAPE_E1", ">f4"), ("SHAPE_E2", ">f4"), ("SERSIC", ">f4"),
       ("MASKBITS", ">i4"), ("GAIA_PHOT_G_MEAN_MAG", ">f4")]
)
DEV_B = 7.669


def sweep_box(ra: float, dec: float) -> str:
    """``<ramin><decmin>-<ramax><decmax>`` of the 10 x 5 deg sweep box holding (ra, dec)."""
    ra0 = int(math.floor((ra % 360.0) / 10.0)) * 10
    dec0 = int(math.floor(dec / 5.0)) * 5

    def d(v: int) -> str:
        return f"{'p' if v >= 0 else 'm'}{abs(v):03d}"

    return f"{ra0:03d}{d(dec0)}-{ra0 + 10:03d}{d(dec0 + 5)}"


@lru_cache(maxsize=4096)
def fiber_fraction(re_circ_arcsec: float) -> float:
    """Fraction of a (truncated) de Vaucouleurs profile of circular half-light radius ``re``
    seen through a 1.5 arcsec fibre in 1 arcsec FWHM Gaussian seeing; ``re = 0``: a point source.

    P(inside | r) is the CDF of a non-central chi-square with 2 degrees of freedom (a point at
    radius r blurred by the Gaussian), integrated against the profile's radial flux.
    """
    from scipy.stats import ncx2

    sigma = FIBER_SEEING_FWHM / (2.0 * math.sqrt(2.0 * math.log(2.0)))
    lim = (FIBER_RADIUS_ARCSEC / sigma) ** 2
    if re_circ_arcsec <= 0:
        return float(ncx2.cdf(lim, 2, 0.0))
    r = np.linspace(0.0, 5.0 * re_circ_arcsec, 4001)[1:]
    x = r / re_circ_arcsec
    prof = np.exp(-DEV_B * (x ** 0.25 - 1.0))
    t = np.clip(x - 4.0, 0.0, 1.0)  # the mock's smooth truncation between 4 and 5 r_e
    prof *= 0.5 * (1.0 + np.cos(np.pi * t))
    w = 2.0 * np.pi * r * prof
    inside = ncx2.cdf(lim, 2, (r / sigma) ** 2)
    return float(np.trapezoid(w * inside, r) / np.trapezoid(w, r))


def _flux(mag: float) -> float:
    return 10.0 ** (-0.4 * (mag - 22.5))


def _extras(plan: dict) -> list[dict]:
    """Catalog-only objects of a brick (see the module docstring)."""
    w = plan["size"]
    rng = rng_for(plan["seed"], "sweep_extras", plan["brickname"])
    out = []

    def xy() -> tuple[float, float]:
        return float(rng.uniform(10, w - 10)), float(rng.uniform(10, w - 10))

    for _ in range(2):
        r = rng.uniform(18.6, 20.5)
        gr, rz = rng.uniform(0.4, 1.2), rng.uniform(0.2, 0.6)
        out.append({"kind": "star", "xy": xy(), "r": r, "gr": gr, "rz": rz, "zw1": rng.uniform(-1.9, -1.1),
                    "gaia_g": r + 0.1, "re": 0.0})
    for _ in range(3):
        out.append({"kind": "blue", "xy": xy(), "r": rng.uniform(19.5, 21.5), "gr": rng.uniform(0.3, 0.7),
                    "rz": rng.uniform(0.1, 0.25), "zw1": rng.uniform(0.0, 0.45), "re": rng.uniform(0.4, 1.2)})
    for _ in range(2):
        z = rng.uniform(21.7, 22.5)
        out.append({"kind": "faint", "xy": xy(), "r": z + 1.5, "gr": 1.6, "rz": 1.5, "zw1": 1.3,
                    "re": rng.uniform(0.3, 0.8)})
    p = plan["zero_patch"]
    out.append({"kind": "nodata", "xy": ((p["x0"] + p["x1"]) / 2.0, (p["y0"] + p["y1"]) / 2.0),
                "r": 19.5, "gr": 1.7, "rz": 1.5, "zw1": 1.4, "re": 0.8})
    star = plan["stars"][0] if plan["stars"] else None
    if star is not None and star["bright_r"] > 2:
        cx, cy = w / 2.0, w / 2.0
        dx, dy = cx - star["x"], cy - star["y"]
        norm = math.hypot(dx, dy) or 1.0
        f = 0.5 * star["bright_r"] / norm
        out.append({"kind": "masked", "xy": (star["x"] + f * dx, star["y"] + f * dy), "r": 19.5,
                    "gr": 1.7, "rz": 1.5, "zw1": 1.4, "re": 0.8})
    return out


def _objects(plan: dict) -> list[dict]:
    """Every object of a brick: pixel position, observed mags (g, r, z, w1), type, shape, Gaia G."""
    ebv = plan["conditions"]["ebv"]
    ext = {b: EXTINCTION_R[b] * ebv for b in MOCK_BANDS}
    out = []
    for g in plan["galaxies"]:
        m, e = g["mags"], (1 - g["q"]) / (1 + g["q"])
        out.append({"objid": g["objid"], "x": g["x"], "y": g["y"], "type": "DEV",
                    "mags": {b: m[b] for b in (*MOCK_BANDS, "w1")}, "re": g["re_arcsec"],
                    "re_circ": g["re_arcsec"] * math.sqrt(g["q"]), "e1": e * math.cos(2 * sky_pa(g["phi"])),
                    "e2": e * math.sin(2 * sky_pa(g["phi"])), "sersic": 4.0, "gaia": 0.0})
    ps = plan["psf_star"]
    for x, y, mags, gaia in [(s["x"], s["y"], s["mags"], s["gaia_g"]) for s in plan["stars"]] + \
            [(ps["x"], ps["y"], ps["mags"], ps["mags"]["r"] + 0.1)]:
        out.append({"x": x, "y": y, "type": "PSF", "mags": {**mags, "w1": mags["z"] - STAR_ZW1},
                    "re": 0.0, "re_circ": 0.0, "e1": 0.0, "e2": 0.0, "sersic": 0.0, "gaia": gaia})
    for ex in _extras(plan):
        mw = {"g": ex["r"] + ex["gr"], "r": ex["r"], "z": ex["r"] - ex["rz"]}
        mw["w1"] = mw["z"] - ex["zw1"]
        kind = {"star": ("PSF", 0.0), "blue": ("EXP", 1.0)}.get(ex["kind"], ("DEV", 4.0))
        out.append({"x": ex["xy"][0], "y": ex["xy"][1], "type": kind[0], "sersic": kind[1],
                    "mags": {b: mw[b] + ext[b] for b in MOCK_BANDS} | {"w1": mw["w1"] + R_W1 * ebv},
                    "re": ex["re"], "re_circ": ex["re"], "e1": 0.0, "e2": 0.0,
                    "gaia": ex.get("gaia_g", 0.0)})
    nxt = max([g["objid"] for g in plan["galaxies"]], default=-1) + 1
    for obj in out:
        if "objid" not in obj:
            obj["objid"], nxt = nxt, nxt + 1
    return out


def brick_rows(plan: dict, maps: dict[str, np.ndarray]) -> np.ndarray:
    """Sweep rows (a record array of dtype COLUMNS) of one brick, in OBJID order.

    ``maps``: the brick's ``maskbits``, ``psfsize-<b>`` and ``invvar-<b>`` arrays
    (``dhs.mock_survey.images``), indexed [y, x].
    """
    from dhs.survey.wcs import brick_wcs, pixel_to_radec

    objs = _objects(plan)
    n, size = len(objs), plan["size"]
    rec = np.zeros(n, dtype=COLUMNS)
    x = np.array([o["x"] for o in objs])
    y = np.array([o["y"] for o in objs])
    ra, dec = pixel_to_radec(brick_wcs(plan["ra"], plan["dec"], size, pixscale=plan["pixscale"]), x, y)
    ix = np.clip(np.floor(x + 0.5).astype(int), 0, size - 1)
    iy = np.clip(np.floor(y + 0.5).astype(int), 0, size - 1)
    ebv = plan["conditions"]["ebv"]
    rec["RELEASE"], rec["BRICKID"], rec["BRICKNAME"] = RELEASE, plan["brickid"], plan["brickname"]
    rec["OBJID"] = [o["objid"] for o in objs]
    rec["TYPE"] = [o["type"] for o in objs]
    rec["RA"], rec["DEC"], rec["EBV"] = np.mod(ra, 360.0), dec, ebv
    re = np.array([o["re"] for o in objs])
    fib = np.array([fiber_fraction(round(o["re_circ"], 6)) for o in objs])
    for b in MOCK_BANDS:
        B = b.upper()
        flux = np.array([_flux(o["mags"][b]) for o in objs])
        fwhm = maps[f"psfsize-{b}"][iy, ix].astype(np.float64)
        iv = maps[f"invvar-{b}"][iy, ix].astype(np.float64)
        depth = np.array([v * psf_sum_sq(f, plan["pixscale"]) if v > 0 else 0.0 for v, f in zip(iv, fwhm)])
        s2 = (fwhm / 2.3548) ** 2
        rec[f"FLUX_{B}"] = flux
        rec[f"FLUX_IVAR_{B}"] = depth * s2 / (s2 + re ** 2)
        rec[f"MW_TRANSMISSION_{B}"] = 10.0 ** (-0.4 * EXTINCTION_R[b] * ebv)
        rec[f"NOBS_{B}"] = np.where(iv > 0, NOBS_COVERED, 0)
        rec[f"FIBERFLUX_{B}"] = rec[f"FIBERTOTFLUX_{B}"] = flux * fib
        rec[f"PSFSIZE_{B}"] = np.where(iv > 0, fwhm, 0.0)
        rec[f"PSFDEPTH_{B}"] = depth
    rec["FLUX_W1"] = [_flux(o["mags"]["w1"]) for o in objs]
    rec["FLUX_IVAR_W1"] = 25.0 * 10.0 ** (0.8 * (W1_DEPTH_AB - 22.5))
    rec["MW_TRANSMISSION_W1"] = 10.0 ** (-0.4 * R_W1 * ebv)
    rec["SHAPE_R"] = re
    rec["SHAPE_E1"] = [o["e1"] for o in objs]
    rec["SHAPE_E2"] = [o["e2"] for o in objs]
    rec["SERSIC"] = [o["sersic"] for o in objs]
    rec["MASKBITS"] = maps["maskbits"][iy, ix]
    rec["GAIA_PHOT_G_MEAN_MAG"] = [o["gaia"] for o in objs]
    return rec


def brick_maps(plan: dict) -> dict[str, np.ndarray]:
    """The maps ``brick_rows`` reads, computed from a plan (noise-free: no image is drawn)."""
    from dhs.mock_survey import images

    psf = images.psfsize_maps(plan)
    iv = images.invvar_maps(plan)
    model, _ = images.model_images(plan, psf)
    mask, _, _ = images.maskbits_maps(plan, model)
    return {"maskbits": mask, **{f"psfsize-{b}": psf[b] for b in MOCK_BANDS},
            **{f"invvar-{b}": iv[b] for b in MOCK_BANDS}}


def sweep_files(rows: list[np.ndarray]) -> dict[str, bytes]:
    """{file name: FITS bytes} of the sweeps holding the rows of every brick (given in brick order).

    Rows are grouped by the sweep box of their position and sorted by (BRICKID, OBJID) in each
    file; the bytes carry no date, so the same rows give the same files.
    """
    from astropy.io import fits

    allrows = np.concatenate(rows) if rows else np.zeros(0, dtype=COLUMNS)
    boxes = np.array([sweep_box(float(r), float(d)) for r, d in zip(allrows["RA"], allrows["DEC"])])
    out = {}
    for box in sorted(set(boxes.tolist())):
        sub = allrows[boxes == box]
        sub = sub[np.lexsort((sub["OBJID"], sub["BRICKID"]))]
        hdu = fits.BinTableHDU(sub, name="SWEEP")
        hdu.header["SURVEY"] = ("dhs-mock", "Synthetic survey in DR10 format")
        hdu.header["DRVERSIO"] = (10, "Survey data release number")
        buf = io.BytesIO()
        fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(buf)
        out[f"sweep-{box}.fits"] = buf.getvalue()
    return out

