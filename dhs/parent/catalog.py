"""One catalog file -> its parent-sample rows and per-brick partial statistics (a shard of stage parent).

A DR10 sweep (or tractor) file is read in chunks of ``chunk_rows`` rows (``dhs.parent.fitstable``).
Per chunk: the depth and PSF-size columns pass the unit checks (``dhs.parent.units``; the
unit found must be the same in every chunk of a file), the selection runs (``dhs.parent.lrg``),
rows that pass the quality cuts and carry at least one flag are kept with their region
(``dhs.parent.regions``, from the brick centre), and every object adds to its brick's sums
(objects, PSF FWHM and depth per band where NOBS_X > 0, E(B-V), parent rows, flagged rows).
Writes ``part-<shard>.parquet`` of the parent catalog (one atomic commit per file, with the
funnel in its marker) and the brick sums of the file for the driver (``dhs.parent.tables``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import pyarrow as pa

from dhs import schema
from dhs.io import datasets as dio
from dhs.io import storage
from dhs.parent import lrg, regions, units
from dhs.parent.fitstable import CatalogFile
from dhs.parent.names import BRICKSTATS_DIR, PARENT_DIR

BANDS = ("g", "r", "z")
#: Columns read besides the selection's (lower case; DR10 sweeps and tractor catalogs have them).
ID_COLUMNS = ("brickname", "objid", "ra", "dec", "type", "ebv", "shape_r", "shape_e1", "shape_e2")
CONDITION_COLUMNS = tuple(f"psfsize_{b}" for b in BANDS) + tuple(f"psfdepth_{b}" for b in BANDS)
OPTIONAL_COLUMNS = ("brick_primary", "release", "sersic")
STAT_COLUMNS = ("n_objects", "n_parent", "n_lrg", "ebv_sum",
                *(f"{k}_{b}" for k in ("psfsize_n", "psfsize_sum", "psfdepth_n", "psfdepth_sum") for b in BANDS))


@dataclass(frozen=True)
class ParentSettings:
    """Everything a parent shard needs (paths, selection, regions, units, remote reads)."""

    out_root: str
    footprint: str = "south"
    region_nside: int = regions.DEFAULT_NSIDE
    split_fractions: tuple[float, float, float] = regions.DEFAULT_FRACTIONS
    split_seed: int = 13
    chunk_rows: int = 100_000
    pixscale_arcsec: float = 0.262
    depth_units: str = "auto"
    psfsize_units: str = "auto"
    rank_flag: str = lrg.DESI_FLAG
    ranking_modes: tuple[str, ...] = regions.RANKING_MODES
    topk_frac: float = 2.0 / 3.0
    bricks_summary: str | None = None
    retries: int = 5
    backoff_s: float = 0.5
    timeout_s: float = 60.0

    @property
    def parent_dir(self) -> str:
        return storage.join(self.out_root, PARENT_DIR)

    @property
    def brickstats_dir(self) -> str:
        return storage.join(self.out_root, BRICKSTATS_DIR)


@dataclass
class _UnitsSeen:
    """Units found per column across the chunks of one file (they must agree)."""

    uri: str
    found: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, check: units.UnitCheck, rows: str) -> None:
        if not check.n_values:
            return
        prev = self.found.setdefault(check.column, check.unit)
        if prev != check.unit:
            raise units.InputUnitError(
                f"catalog {self.uri}: column {check.column.upper()!r} is in {prev} in earlier rows "
                f"and in {check.unit} in rows {rows}; write the column in one unit")
        note = check.note(f"catalog {self.uri}")
        if note and note not in self.notes:
            self.notes.append(note)


@lru_cache(maxsize=65536)
def _brick_centre(name: str) -> tuple[int, float, float]:
    from dhs.survey.bricks import brick_from_name

    b = brick_from_name(name)
    return b.brickid, b.ra, b.dec


def brick_geometry(names: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(brickid, ra, dec) of the centres of DR10 bricks given by name."""
    out = np.array([_brick_centre(str(n)) for n in names], dtype=np.float64).reshape(-1, 3)
    return out[:, 0].astype(np.int64), out[:, 1], out[:, 2]


def shard_name(index: int, uri: str) -> str:
    stem = storage.basename(uri)
    for ext in (".gz", ".fits", ".fit"):
        stem = stem[: -len(ext)] if stem.lower().endswith(ext) else stem
    return f"{index:05d}-{stem}"


def _checked_conditions(chunk: dict, s: ParentSettings, seen: _UnitsSeen, rows: str) -> None:
    """Replace the chunk's psfdepth/psfsize columns by their values in 1/nmgy^2 and arcsec."""
    where = f"catalog {seen.uri} rows {rows}"
    depth = {f"psfdepth_{b}": chunk[f"psfdepth_{b}"] for b in BANDS}
    converted, checks = units.check_depth_columns(depth, where, s.depth_units)
    chunk.update(converted)
    for b in BANDS:
        chunk[f"psfsize_{b}"], chk = units.psfsize_to_arcsec(
            chunk[f"psfsize_{b}"], f"psfsize_{b}", where, s.pixscale_arcsec, s.psfsize_units)
        checks.append(chk)
    for chk in checks:
        seen.add(chk, rows)


def _observed_mag(flux: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(flux > 0, 22.5 - 2.5 * np.log10(np.where(flux > 0, flux, 1.0)), np.nan)


def _rows(chunk: dict, sel: lrg.Selection, keep: np.ndarray, s: ParentSettings) -> pa.Table:
    """Parent-catalog rows (schema.PARENT_CATALOG) of the kept chunk rows."""
    names = chunk["brickname"][keep].astype(str)
    uniq, inv = np.unique(names, return_inverse=True)
    bid, bra, bdec = brick_geometry(uniq)
    rid = regions.region_ids(bra, bdec, s.region_nside)
    split = regions.split_names(rid, s.region_nside, s.split_fractions, s.split_seed)
    m = {k: v[keep] for k, v in sel.mags.items()}
    n = int(keep.sum())

    def col(name: str, fill: float = np.nan) -> np.ndarray:
        return chunk[name][keep] if name in chunk else np.full(n, fill)

    vals = {
        "brickname": names, "brickid": bid[inv], "objid": col("objid").astype(np.int64),
        "release": col("release", 0).astype(np.int32), "ra": col("ra").astype(np.float64),
        "dec": col("dec").astype(np.float64), "type": chunk["type"][keep].astype(str),
        "region_id": rid[inv], "region_split": split[inv],
        "rmag": _observed_mag(col("flux_r").astype(np.float64)),
        "zmag": _observed_mag(col("flux_z").astype(np.float64)),
        "w1mag": _observed_mag(col("flux_w1").astype(np.float64)),
        "rz": m["r"] - m["z"], "zw1": m["z"] - m["w1"], "gmag_mw": m["g"], "rmag_mw": m["r"],
        "zmag_mw": m["z"], "w1mag_mw": m["w1"], "zfibermag_mw": m["zfib"],
        "shape_r": col("shape_r"), "shape_e1": col("shape_e1"), "shape_e2": col("shape_e2"),
        "sersic": col("sersic"), "ebv": col("ebv"),
    }
    for flag in lrg.FLAGS:
        vals[flag] = sel.flags[flag][keep]
    sch = schema.arrow_schema(schema.PARENT_CATALOG)
    return pa.Table.from_arrays([pa.array(np.asarray(vals[f.name]), type=f.type) for f in sch], schema=sch)


def _brick_sums(chunk: dict, sel: lrg.Selection, keep: np.ndarray, flag: str) -> dict[str, dict]:
    """{brickname: {stat: value}} of one chunk (STAT_COLUMNS)."""
    names = chunk["brickname"].astype(str)
    uniq, inv = np.unique(names, return_inverse=True)
    nb = len(uniq)
    stats = {"n_objects": np.bincount(inv, minlength=nb).astype(np.float64),
             "n_parent": np.bincount(inv, weights=keep.astype(np.float64), minlength=nb),
             "n_lrg": np.bincount(inv, weights=sel.flags[flag].astype(np.float64), minlength=nb)}
    ebv = np.asarray(chunk["ebv"], dtype=np.float64)
    stats["ebv_sum"] = np.bincount(inv, weights=np.nan_to_num(ebv), minlength=nb)
    for b in BANDS:
        covered = np.asarray(chunk[f"nobs_{b}"]) > 0
        for kind in ("psfsize", "psfdepth"):
            v = np.asarray(chunk[f"{kind}_{b}"], dtype=np.float64)
            ok = covered & np.isfinite(v) & (v > 0)
            stats[f"{kind}_n_{b}"] = np.bincount(inv, weights=ok.astype(np.float64), minlength=nb)
            stats[f"{kind}_sum_{b}"] = np.bincount(inv, weights=np.where(ok, v, 0.0), minlength=nb)
    return {str(name): {k: float(v[i]) for k, v in stats.items()} for i, name in enumerate(uniq)}


def process_catalog(shard: dict, s: ParentSettings) -> dict:
    """Shard function: select the parent rows of one catalog file (``shard["uri"]``)."""
    uri, name = shard["uri"], shard["name"]
    from dhs.fetch.retry import RetryPolicy

    policy = RetryPolicy(retries=s.retries, backoff_s=s.backoff_s)
    seen = _UnitsSeen(uri)
    tables, sums = [], {}
    funnel: dict[str, int] = {}
    n_read = 0
    with CatalogFile(uri, policy=policy, timeout_s=s.timeout_s) as cat:
        present = set(cat.names)
        cols = list(dict.fromkeys(lrg.COLUMNS + ID_COLUMNS + CONDITION_COLUMNS))
        cols += [c for c in OPTIONAL_COLUMNS if c in present]
        cols += [f"nobs_{b}" for b in BANDS if f"nobs_{b}" not in cols]
        for start, chunk in cat.chunks(cols, s.chunk_rows):
            rows = f"{start}-{start + len(chunk['ra']) - 1}"
            _checked_conditions(chunk, s, seen, rows)
            sel = lrg.select(chunk, s.footprint)
            keep = sel.keep
            n_read += len(keep)
            for step, count in sel.funnel:
                funnel[step] = funnel.get(step, 0) + count
            if keep.any():
                tables.append(_rows(chunk, sel, keep, s))
            for brick, st in _brick_sums(chunk, sel, keep, s.rank_flag).items():
                acc = sums.setdefault(brick, dict.fromkeys(STAT_COLUMNS, 0.0))
                for k, v in st.items():
                    acc[k] += v
    sch = schema.arrow_schema(schema.PARENT_CATALOG)
    table = pa.concat_tables(tables) if tables else sch.empty_table()
    flag_counts = {f: int(np.sum(table.column(f).to_numpy(zero_copy_only=False))) for f in lrg.FLAGS}
    bricks = sorted(sums)
    stats = pa.table({"brickname": pa.array(bricks, pa.string()),
                      **{k: pa.array([sums[b][k] for b in bricks], pa.float64()) for k in STAT_COLUMNS}})
    storage.write_bytes_atomic(storage.join(s.brickstats_dir, f"part-{name}.parquet"),
                               dio.table_to_parquet_bytes(stats))
    marker = {"uri": uri, "rows_read": n_read, "parent_rows": table.num_rows, "flags": flag_counts,
              "funnel": [[k, v] for k, v in funnel.items()], "unit_notes": seen.notes,
              "units": seen.found}
    dio.write_shard(table, s.parent_dir, name, partition_col=None, extra=marker)
    return {"shard": name, **marker}
