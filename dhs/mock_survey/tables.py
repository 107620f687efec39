"""The three tables stage 4a reads, built from the mock survey's plans (column names of the
earlier system; every column is documented in ``dhs.schema``: MOCK_PARENT, MOCK_BRICKS,
MOCK_REGION_SELECTIONS).

Conventions: ``gmag, rmag, zmag, w1mag`` are observed AB magnitudes (what the images show, MW
extinction included); ``*_mw`` are MW-corrected (``mag - R * ebv``, DR10 coefficients); the colours
``rz = rmag_mw - zmag_mw`` and ``zw1 = zmag_mw - w1mag_mw``. LRG variant flags apply the cuts below
to MW-corrected magnitudes (``is_v5_very_relaxed`` holds for every row: the parent catalog is
the v5 superset). ``gmag_valid`` is false for g > 23.3 (then ``gmag_mw`` is NaN).

Region selection sets: for each ranking mode (``density``: galaxies per brick, ``psf_weighted``:
smallest mean psfsize_r, ``n_lrg``: most v3 galaxies) the top ``ceil(2/3 n)`` regions of each
split (``selection_strategy = topk_per_split``); ties break by region id.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa

from dhs import schema
from dhs.mock_survey.plan import MOCK_BANDS, SPLITS, sky_pa

GMAG_VALID_MAX = 23.3
#: name: (zmag_mw max, rz min, zw1 min)
VARIANT_CUTS = {
    "is_v1_pure_massive": (20.0, 0.5, 1.6),
    "is_v2_baseline_dr10": (20.4, 0.4, 1.6),
    "is_v3_color_relaxed": (20.4, 0.4, 0.8),
    "is_v4_mag_relaxed": (21.0, 0.4, 0.8),
    "is_v5_very_relaxed": (21.5, 0.3, 0.5),
}
RANKING_MODES = ("density", "psf_weighted", "n_lrg")


def _table(rows: dict[str, list], columns: tuple[schema.Column, ...]) -> pa.Table:
    return pa.Table.from_pydict({c.name: rows[c.name] for c in columns},
                                schema=schema.arrow_schema(columns))


def parent_catalog(plans: list[dict], splits: dict[int, str]) -> pa.Table:
    """One row per mock galaxy (brick order, then objid)."""
    rows: dict[str, list] = {c.name: [] for c in schema.MOCK_PARENT}
    for plan in plans:
        cond = plan["conditions"]
        for g in plan["galaxies"]:
            m = g["mags"]
            rz, zw1 = m["r_mw"] - m["z_mw"], m["z_mw"] - m["w1_mw"]
            valid = m["g"] <= GMAG_VALID_MAX
            e = (1 - g["q"]) / (1 + g["q"])
            vals = {
                "brickname": plan["brickname"], "objid": g["objid"], "ra": g["ra"], "dec": g["dec"],
                "region_id": plan["region_id"], "region_split": splits[plan["region_id"]],
                "gmag": m["g"], "rmag": m["r"], "zmag": m["z"], "w1mag": m["w1"], "rz": rz, "zw1": zw1,
                "gmag_mw": m["g_mw"] if valid else float("nan"), "rmag_mw": m["r_mw"],
                "zmag_mw": m["z_mw"], "w1mag_mw": m["w1_mw"], "gmag_valid": bool(valid),
                "type": "DEV", "sersic": 4.0, "shape_r": g["re_arcsec"],
                "shape_e1": e * math.cos(2 * sky_pa(g["phi"])), "shape_e2": e * math.sin(2 * sky_pa(g["phi"])),
                "ebv": cond["ebv"],
            }
            for b in MOCK_BANDS:
                vals[f"flux_{b}"] = 10 ** (-0.4 * (m[b] - 22.5))
            for flag, (zmax, rzmin, zw1min) in VARIANT_CUTS.items():
                vals[flag] = bool(m["z_mw"] < zmax and rz > rzmin and zw1 > zw1min)
            for k, v in vals.items():
                rows[k].append(v)
    return _table(rows, schema.MOCK_PARENT)


def bricks_with_region(plans: list[dict], splits: dict[int, str]) -> pa.Table:
    """One row per brick: geometry, region, PSF FWHM and point-source depth at the brick centre."""
    rows: dict[str, list] = {c.name: [] for c in schema.MOCK_BRICKS}
    for plan in plans:
        bands = plan["conditions"]["bands"]
        vals = {k: plan[k] for k in ("brickname", "brickid", "region_id", "ra", "dec", "ra1", "ra2",
                                     "dec1", "dec2")}
        vals.update(region_split=splits[plan["region_id"]], ebv=plan["conditions"]["ebv"],
                    n_lrg=len(plan["galaxies"]), brick_size_pix=plan["size"])
        for b in MOCK_BANDS:
            vals[f"psfsize_{b}"] = bands[b]["fwhm"]
            vals[f"psfdepth_{b}"] = bands[b]["psfdepth"]
        for k, v in vals.items():
            rows[k].append(v)
    return _table(rows, schema.MOCK_BRICKS)


def region_selections(plans: list[dict], splits: dict[int, str], parent: pa.Table) -> pa.Table:
    """Selection sets (one per ranking mode) of the top regions of each split."""
    regions = sorted(splits)
    n_bricks = {r: sum(1 for p in plans if p["region_id"] == r) for r in regions}
    n_gal = {r: sum(len(p["galaxies"]) for p in plans if p["region_id"] == r) for r in regions}
    psf = {r: float(np.mean([p["conditions"]["bands"]["r"]["fwhm"] for p in plans
                             if p["region_id"] == r])) for r in regions}
    rid = parent.column("region_id").to_numpy()
    v3 = parent.column("is_v3_color_relaxed").to_numpy(zero_copy_only=False)
    n_v3 = {r: int(np.sum(v3[rid == r])) for r in regions}
    score = {"density": lambda r: -n_gal[r] / n_bricks[r], "psf_weighted": lambda r: psf[r],
             "n_lrg": lambda r: -n_v3[r]}
    rows: dict[str, list] = {c.name: [] for c in schema.MOCK_REGION_SELECTIONS}
    for mode in RANKING_MODES:
        for split in SPLITS:
            members = sorted((r for r in regions if splits[r] == split), key=lambda r: (score[mode](r), r))
            k = max(1, math.ceil(2 * len(members) / 3))
            for rank, r in enumerate(members[:k]):
                vals = {"selection_set_id": f"topk_{mode}", "selection_strategy": "topk_per_split",
                        "ranking_mode": mode, "region_id": r, "region_split": split, "rank": rank}
                for key, v in vals.items():
                    rows[key].append(v)
    return _table(rows, schema.MOCK_REGION_SELECTIONS)
