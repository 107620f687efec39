"""Synthetic stage-4a inputs (parent catalog, bricks_with_region, region_selections).

The column names are those of the mock survey stage (the earlier system's names). Values come
from a seeded NumPy generator: they are test inputs, not pipeline draws.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

FLAGS = ("is_v1_pure_massive", "is_v2_baseline", "is_v3_color_relaxed", "is_v4_mag_relaxed",
         "is_v5_very_relaxed")
SPLIT_OF_REGION = ("train", "val", "test")


def brickname(i: np.ndarray) -> list[str]:
    ra = (i % 3600).astype(int)
    dec = (i // 3600).astype(int) * 5
    return [f"{r:04d}{'p' if d % 2 == 0 else 'm'}{d % 900:03d}" for r, d in zip(ra, dec)]


def make_tables(n_galaxies: int = 2000, n_bricks: int = 40, n_regions: int = 9, seed: int = 7,
                flag_frac: float = 0.8) -> dict[str, pa.Table]:
    """Parent, bricks and region selections with every column the 4a stage expects."""
    rng = np.random.default_rng(seed)
    bidx = np.arange(n_bricks)
    names = np.array(brickname(bidx))
    region_of_brick = bidx % n_regions
    split_of_region = np.array([SPLIT_OF_REGION[r % 3] for r in range(n_regions)])
    bricks = pa.table({
        "brickname": names,
        "region_id": region_of_brick.astype(np.int64),
        "psfsize_g": rng.uniform(1.1, 2.2, n_bricks), "psfsize_r": rng.uniform(0.9, 1.9, n_bricks),
        "psfsize_z": rng.uniform(0.8, 1.7, n_bricks),
        "psfdepth_g": rng.uniform(500, 3000, n_bricks), "psfdepth_r": rng.uniform(200, 1500, n_bricks),
        "psfdepth_z": rng.uniform(20, 200, n_bricks), "ebv": rng.uniform(0.01, 0.1, n_bricks),
    })
    gb = rng.integers(0, n_bricks, n_galaxies)
    objid = np.zeros(n_galaxies, np.int64)
    order = np.argsort(gb, kind="stable")
    first = np.searchsorted(gb[order], gb[order])
    objid[order] = np.arange(n_galaxies) - first
    rmag = rng.uniform(18.5, 21.5, n_galaxies)
    rz = rng.uniform(0.8, 2.0, n_galaxies)
    zw1 = rng.uniform(0.5, 1.5, n_galaxies)
    parent = {
        "brickname": names[gb], "objid": objid,
        "ra": (gb % 3600) + rng.uniform(0, 0.25, n_galaxies),
        "dec": (gb // 3600) * 0.25 + rng.uniform(0, 0.25, n_galaxies),
        "region_id": region_of_brick[gb].astype(np.int64),
        "region_split": split_of_region[region_of_brick[gb]],
        "zmag": rmag - rz, "rmag": rmag, "w1mag": rmag - rz - zw1, "rz": rz, "zw1": zw1,
        "gmag_mw": rmag + 1.5, "rmag_mw": rmag - 0.05, "zmag_mw": rmag - rz - 0.03,
        "w1mag_mw": rmag - rz - zw1, "type": np.array(["DEV", "SER", "REX", "EXP"])[gb % 4],
    }
    v3 = rng.uniform(size=n_galaxies) < flag_frac
    for k, f in enumerate(FLAGS):
        parent[f] = v3 if k == 2 else (v3 & (rng.uniform(size=n_galaxies) < 0.5) if k < 2 else v3 | (k > 3))
    parent["gmag_valid"] = np.ones(n_galaxies, bool)
    regions = np.arange(n_regions)
    sel = {"selection_set_id": [], "selection_strategy": [], "ranking_mode": [], "region_id": [],
           "region_split": []}
    for sid, strat, mode, chosen in (("topk_density", "topk", "density", regions),
                                     ("topk_psf_weighted", "topk", "psf_weighted", regions[::2])):
        for r in chosen:
            sel["selection_set_id"].append(sid)
            sel["selection_strategy"].append(strat)
            sel["ranking_mode"].append(mode)
            sel["region_id"].append(int(r))
            sel["region_split"].append(str(split_of_region[r]))
    return {"parent": pa.table(parent), "bricks": bricks,
            "selections": pa.table({**sel, "region_id": pa.array(sel["region_id"], pa.int64())})}


def write_tables(root: Path, tables: dict[str, pa.Table], fmt: str = "parquet") -> dict[str, str]:
    """Write the tables under ``root``; returns the cfg.manifest overrides pointing at them."""
    root.mkdir(parents=True, exist_ok=True)
    out = {}
    for key, name in (("parent", "parent"), ("bricks", "bricks_with_region"),
                      ("selections", "region_selections")):
        path = root / f"{name}.{fmt}"
        write_table(tables[key], path, fmt)
        out[name] = str(path)
    return out


def write_table(table: pa.Table, path: Path, fmt: str) -> None:
    if fmt == "parquet":
        pq.write_table(table, path)
    elif fmt == "csv":
        from pyarrow import csv

        csv.write_csv(table, path)
    elif fmt == "fits":
        from astropy.table import Table

        cols = {}
        for c in table.column_names:
            a = table.column(c).to_numpy(zero_copy_only=False)
            cols[c] = a.astype(str) if a.dtype == object else a
        Table(cols).write(path, format="fits", overwrite=True)
    else:
        raise ValueError(fmt)


def overrides(paths: dict[str, str], data_root: Path, *extra: str) -> list[str]:
    """Stage 4a on the synthetic tables; the allocation tests count with the earlier system's
    grid_small (48 configs) unless ``extra`` picks a grid."""
    grid = [] if any(e.startswith("grid=") for e in extra) else ["grid=grid_small"]
    return ["stage=4a", f"paths.data_root={data_root}", *grid,
            *(f"manifest.{k}={v}" for k, v in paths.items()), *extra]
