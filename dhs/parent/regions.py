"""Regions and region-level train/val/test splits, derived deterministically from the sky.

Region
    the nested HEALPix cell (``astropy_healpix``, order "nested") at ``nside`` that holds the
    *brick centre* (deg), so every galaxy of a brick, and every stamp cut from its coadds, shares
    one region. nside 32 (the default) gives cells of 3.36 deg^2 (about 1.8 deg across, about 54
    DR10 bricks); region_id is the nested pixel index, unique for a given nside.
Split
    a pure function of (nside, region_id, split seed)::

        key = splitmix64(blake2b64(f"healpix_nested/{nside}") XOR region_id)
        u   = dhs.draws.uniform(key, "region_split", split_seed)            # in [0, 1)
        split = train if u < f_train, val if u < f_train + f_val, else test

    A region's split never depends on which other regions are present, so adding catalogs never
    moves a region between splits (no leakage between runs over different areas). With few
    regions a split can be empty; the stage says so.
Selection sets (``region_selections``)
    ``all_regions`` (every region, strategy ``all``) and, per ranking mode, ``topk_<mode>``: the
    ``ceil(topk_frac * n)`` best of the ``n`` regions of each split (strategy ``topk_per_split``;
    ties broken by region id). Modes: ``density`` (most parent galaxies per brick), ``psf_weighted``
    (smallest mean r-band PSF FWHM), ``n_lrg`` (most galaxies with the ranking flag).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from dhs import draws, schema

SPLITS = ("train", "val", "test")
DEFAULT_NSIDE = 32
DEFAULT_FRACTIONS = (0.7, 0.15, 0.15)
RANKING_MODES = ("density", "psf_weighted", "n_lrg")
SALT = "region_split"


def check_nside(nside: int) -> int:
    n = int(nside)
    if n < 1 or n > 8192 or n & (n - 1):
        raise ValueError(f"HEALPix nside={nside!r}: must be a power of 2 between 1 and 8192")
    return n


def check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    f = tuple(float(x) for x in fractions)
    if len(f) != 3 or min(f) < 0 or abs(sum(f) - 1.0) > 1e-9:
        raise ValueError(f"split fractions {list(fractions)}: need three non-negative values "
                         "(train, val, test) that sum to 1")
    return f  # type: ignore[return-value]


def region_ids(ra: np.ndarray, dec: np.ndarray, nside: int = DEFAULT_NSIDE) -> np.ndarray:
    """Nested HEALPix index (int64) of each position (deg)."""
    import astropy.units as u
    from astropy_healpix import lonlat_to_healpix

    ra = np.mod(np.asarray(ra, dtype=np.float64), 360.0)
    dec = np.asarray(dec, dtype=np.float64)
    if ra.size == 0:
        return np.zeros(0, dtype=np.int64)
    return np.asarray(lonlat_to_healpix(ra * u.deg, dec * u.deg, check_nside(nside), order="nested"),
                      dtype=np.int64)


def region_centres(ids: np.ndarray, nside: int = DEFAULT_NSIDE) -> tuple[np.ndarray, np.ndarray]:
    """(ra, dec) in deg of the centres of nested HEALPix cells."""
    from astropy_healpix import healpix_to_lonlat

    ids = np.asarray(ids, dtype=np.int64)
    if ids.size == 0:
        return np.zeros(0), np.zeros(0)
    lon, lat = healpix_to_lonlat(ids, check_nside(nside), order="nested")
    return np.asarray(lon.deg, dtype=np.float64), np.asarray(lat.deg, dtype=np.float64)


def split_codes(ids: np.ndarray, nside: int = DEFAULT_NSIDE,
                fractions: Sequence[float] = DEFAULT_FRACTIONS, seed: int = 13) -> np.ndarray:
    """Index into SPLITS (int8) of each region id (see the module docstring)."""
    f = check_fractions(fractions)
    base = np.uint64(draws.hash_str(f"healpix_nested/{check_nside(nside)}"))
    key = draws.combine(base, np.asarray(ids, dtype=np.int64).view(np.uint64))
    u = draws.uniform(key, SALT, int(seed))
    edges = np.array([f[0], f[0] + f[1]])
    return np.searchsorted(edges, u, side="right").astype(np.int8)


def split_names(ids: np.ndarray, nside: int = DEFAULT_NSIDE,
                fractions: Sequence[float] = DEFAULT_FRACTIONS, seed: int = 13) -> np.ndarray:
    """'train', 'val' or 'test' of each region id."""
    return np.asarray(SPLITS, dtype=object)[split_codes(ids, nside, fractions, seed)].astype(str)


def region_metrics(bricks: pa.Table, nside: int) -> pa.Table:
    """One row per region from the brick table (schema.REGION_METRICS)."""
    rid = bricks.column("region_id").to_numpy()
    uniq, inv = np.unique(rid, return_inverse=True)
    n = len(uniq)

    def total(name: str) -> np.ndarray:
        return np.bincount(inv, weights=bricks.column(name).to_numpy().astype(np.float64), minlength=n)

    def mean(name: str) -> np.ndarray:
        v = bricks.column(name).to_numpy(zero_copy_only=False).astype(np.float64)
        ok = np.isfinite(v)
        s = np.bincount(inv[ok], weights=v[ok], minlength=n)
        c = np.bincount(inv[ok], minlength=n)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(c > 0, s / np.maximum(c, 1), np.nan)

    first = np.zeros(n, dtype=np.int64)
    first[inv[::-1]] = np.arange(len(rid))[::-1]
    split = bricks.column("region_split").to_numpy(zero_copy_only=False)[first]
    ra_c, dec_c = region_centres(uniq, nside)
    cols = {"region_id": uniq, "region_split": split, "ra": ra_c, "dec": dec_c,
            "n_bricks": np.bincount(inv, minlength=n), "n_parent": total("n_parent").astype(np.int64),
            "n_lrg": total("n_lrg").astype(np.int64), "psfsize_r": mean("psfsize_r"),
            "psfdepth_r": mean("psfdepth_r"), "ebv": mean("ebv")}
    sch = schema.arrow_schema(schema.REGION_METRICS)
    return pa.Table.from_pydict({f.name: cols[f.name] for f in sch}, schema=sch)


def region_selections(metrics: pa.Table, modes: Sequence[str] = RANKING_MODES,
                      topk_frac: float = 2.0 / 3.0) -> pa.Table:
    """Selection sets over the regions of ``metrics`` (schema.REGION_SELECTIONS)."""
    rid = metrics.column("region_id").to_numpy()
    split = metrics.column("region_split").to_numpy(zero_copy_only=False).astype(str)
    with np.errstate(invalid="ignore", divide="ignore"):
        density = metrics.column("n_parent").to_numpy() / np.maximum(metrics.column("n_bricks").to_numpy(), 1)
    psf = np.nan_to_num(metrics.column("psfsize_r").to_numpy(zero_copy_only=False), nan=np.inf)
    score = {"density": -density, "psf_weighted": psf,
             "n_lrg": -metrics.column("n_lrg").to_numpy().astype(np.float64)}
    unknown = [m for m in modes if m not in score]
    if unknown:
        raise ValueError(f"ranking modes {unknown}: known modes are {list(RANKING_MODES)}")
    rows: dict[str, list] = {c.name: [] for c in schema.REGION_SELECTIONS}

    def add(set_id: str, strategy: str, mode: str, members: np.ndarray, s: str) -> None:
        for rank, i in enumerate(members):
            for k, v in (("selection_set_id", set_id), ("selection_strategy", strategy),
                         ("ranking_mode", mode), ("region_id", int(rid[i])), ("region_split", s),
                         ("rank", rank)):
                rows[k].append(v)

    for s in SPLITS:
        idx = np.flatnonzero(split == s)
        add("all_regions", "all", "none", idx[np.argsort(rid[idx], kind="stable")], s)
    for mode in modes:
        for s in SPLITS:
            idx = np.flatnonzero(split == s)
            order = idx[np.lexsort((rid[idx], score[mode][idx]))]
            k = max(1, math.ceil(topk_frac * len(order))) if len(order) else 0
            add(f"topk_{mode}", "topk_per_split", mode, order[:k], s)
    return pa.Table.from_pydict(rows, schema=schema.arrow_schema(schema.REGION_SELECTIONS))
