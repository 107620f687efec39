"""Candidate galaxies for the task manifests: filters (with a funnel), PSF/depth strata and joins.

Each selection set keeps an index array into the candidates (a galaxy whose region belongs to
several selection sets is not copied); the parent catalog itself is read by brick bucket
(``dhs.manifest.buckets``), a target list whole (``dhs.manifest.targets``). Strata are the 4 x 4 quartile bins of the
brick table's psfsize_r (arcsec) and psfdepth_r (1/nmgy^2).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dhs import draws
from dhs.errors import DhsError
from dhs.io.tables import InputTableError, column_numpy, read_table

log = logging.getLogger("dhs.manifest.candidates")

SPLITS = ("train", "val", "test")
N_STRATA = 16
PARENT_COLUMNS = ("brickname", "ra", "dec", "region_id", "region_split", "rmag")
#: Copied into the manifest when present (NaN otherwise); nothing downstream reads them.
PARENT_OPTIONAL = ("objid", "zmag", "w1mag", "rz", "zw1")
#: Parent columns that must hold numbers (those present are checked as read).
PARENT_NUMERIC = ("ra", "dec", "region_id", "rmag", "zmag", "w1mag", "rz", "zw1")
#: Optional parent columns: the Tractor shape that orients the lens with grid.lens_shape=light.
SHAPE_COLUMNS = ("shape_e1", "shape_e2")
BRICK_COLUMNS = ("brickname", "psfsize_g", "psfsize_r", "psfsize_z", "psfdepth_r", "ebv")
SELECTION_COLUMNS = ("selection_set_id", "selection_strategy", "ranking_mode", "region_id",
                     "region_split")


class EmptyManifestError(DhsError):
    """No galaxy survived the filters; the message carries the funnel."""


@dataclass
class SelectionSet:
    selection_set_id: str
    selection_strategy: str
    ranking_mode: str
    splits: tuple[str, ...]  # splits of its regions in the region_selections table


@dataclass
class Candidates:
    """Galaxies that passed every filter, with the columns the manifest copies."""

    parent: pa.Table                 # one row per galaxy (parent + brick columns)
    sets: list[SelectionSet]
    set_rows: list[np.ndarray]       # per selection set: indices into parent (int64, ascending)
    split_code: np.ndarray           # int8 index into SPLITS
    stratum: np.ndarray              # int8 psf_bin * 4 + depth_bin
    rowkey: np.ndarray               # uint64 hash of (brickname, objid) [or (brickname, ra, dec)]
    brick_code: np.ndarray           # int32 rank of brickname among the sorted distinct bricknames
    bricknames: pa.Array             # sorted distinct bricknames
    edges: dict[str, list[float]]
    funnel: list[tuple[str, int]]
    warnings: list[str] = field(default_factory=list)


def read_selections(uri: str, wanted: Any = None) -> list[SelectionSet]:
    """Selection sets of the region_selections table (optionally only ``wanted`` ids), sorted."""
    table, _ = read_table(uri, SELECTION_COLUMNS, what="region_selections")
    _check_splits(table.column("region_split"), uri, "region_selections")
    ids = sorted(set(table.column("selection_set_id").to_pylist()) - {None})
    if wanted is not None:
        wanted = [str(w) for w in wanted]
        unknown = [w for w in wanted if w not in ids]
        if unknown:
            raise InputTableError(
                f"cfg.manifest.selection_set_ids names {unknown}, not in {uri}; available: {ids}")
        ids = sorted(wanted)
    out = []
    for sid in ids:
        sub = table.filter(pc.equal(table.column("selection_set_id"), sid))
        strat = sub.column("selection_strategy").unique().to_pylist()
        rank = sub.column("ranking_mode").unique().to_pylist()
        splits = tuple(s for s in SPLITS if s in set(sub.column("region_split").to_pylist()))
        out.append(SelectionSet(sid, str(strat[0]), str(rank[0]), splits))
    return out


def _check_splits(col: pa.ChunkedArray, uri: str, what: str) -> None:
    counts = pc.value_counts(col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col)
    check_split_counts({v["values"]: v["counts"] for v in counts.to_pylist()}, uri, what)


def check_split_counts(counts: dict, uri: str, what: str) -> None:
    """Raise when a region_split value (``counts``: value -> rows) is not one of SPLITS."""
    bad = {str(v): n for v, n in counts.items() if v not in SPLITS}
    if bad:
        raise InputTableError(
            f"{what} table {uri}: column 'region_split' has values {bad} (value: rows); expected "
            f"only {', '.join(SPLITS)}. Fix the table (region-level holdouts) before stage 4a.")


def quartile_edges(values: np.ndarray, name: str, uri: str) -> list[float]:
    v = values[np.isfinite(values)]
    if v.size == 0:
        raise InputTableError(f"bricks_with_region table {uri}: column {name!r} has no finite values")
    return [float(x) for x in np.quantile(v, [0.25, 0.5, 0.75])]


def brick_conditions(uri: str, bricknames: np.ndarray, columns: Any, pixscale: float = 0.262,
                     depth_units: str = "auto", psfsize_units: str = "auto") -> dict[str, np.ndarray]:
    """Brick-table columns (psfsize_* in arcsec, psfdepth_* in 1/nmgy^2, through the unit checks
    of ``dhs.parent.units``) at each of ``bricknames``; NaN for a brick the table does not list."""
    bricks = read_brick_table(uri, ("brickname",), pixscale, depth_units, psfsize_units,
                              optional=tuple(columns))
    bidx = pc.index_in(pa.array(np.asarray(bricknames, dtype=str)), value_set=bricks.column("brickname"))
    found = bidx.is_valid().to_numpy(zero_copy_only=False)
    bidx = bidx.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    out = {}
    for c in columns:
        if c in bricks.column_names:
            v = column_numpy(bricks, c)[bidx] if bricks.num_rows else np.full(len(bidx), np.nan)
            out[c] = np.where(found, v, np.nan)
    return out


def read_brick_table(uri: str, columns: Any, pixscale: float = 0.262, depth_units: str = "auto",
                     psfsize_units: str = "auto", optional: Any = ()) -> pa.Table:
    """The brick table with its psfsize/psfdepth columns checked (and converted) for units."""
    from dhs.parent import units

    bricks, _ = read_table(uri, tuple(columns), what="bricks_with_region", optional=tuple(optional))
    where = f"bricks_with_region table {uri}"
    depth = [c for c in bricks.column_names if c.startswith("psfdepth_")]
    converted, _ = units.check_depth_columns({c: column_numpy(bricks, c) for c in depth}, where,
                                             depth_units)
    for c in bricks.column_names:
        if c.startswith("psfsize_"):
            converted[c], _ = units.psfsize_to_arcsec(column_numpy(bricks, c), c, where, pixscale,
                                                      psfsize_units)
    for c, v in converted.items():
        bricks = bricks.set_column(bricks.column_names.index(c), c, pa.array(v, pa.float64()))
    return bricks


@dataclass(frozen=True)
class ManifestInputs:
    """Stage 4a's input tables (paths or URIs), the parent-sample flag a galaxy must have (None:
    every row), the selection sets to use (None: all of them) and the survey's pixel scale
    (arcsec; PSF sizes in pixels are converted with it)."""

    parent: str
    bricks_with_region: str
    region_selections: str
    require_lrg_flag: Optional[str]
    selection_set_ids: Optional[tuple[str, ...]] = None
    pixscale_arcsec: float = 0.262


def finish_candidates(parent: pa.Table, sets: list[SelectionSet], set_rows: list[np.ndarray],
                      edges: dict[str, list[float]], funnel: list[tuple[str, int]],
                      warnings: list[str]) -> Candidates:
    """Strata, split codes and brick codes of the kept rows (which carry the brick columns)."""
    psf_bin = np.searchsorted(edges["psfsize_r"], column_numpy(parent, "psfsize_r"), side="right")
    depth_bin = np.searchsorted(edges["psfdepth_r"], column_numpy(parent, "psfdepth_r"), side="right")
    parent = parent.append_column("psf_bin", pa.array(psf_bin.astype(np.int32)))
    parent = parent.append_column("depth_bin", pa.array(depth_bin.astype(np.int32)))
    split_names = pa.array(SPLITS)
    split_code = pc.index_in(parent.column("region_split"), value_set=split_names).to_numpy(
        zero_copy_only=False).astype(np.int8)
    bricknames = pc.array_sort_indices(pc.unique(parent.column("brickname")))
    bricknames = pc.unique(parent.column("brickname")).take(bricknames)
    brick_code = pc.index_in(parent.column("brickname"), value_set=bricknames).to_numpy(
        zero_copy_only=False).astype(np.int32)
    return Candidates(
        parent=parent, sets=sets, set_rows=set_rows, split_code=split_code,
        stratum=(psf_bin * 4 + depth_bin).astype(np.int8), rowkey=row_keys(parent),
        brick_code=brick_code, bricknames=bricknames, edges=edges, funnel=funnel, warnings=warnings,
    )


def row_keys(table: pa.Table) -> np.ndarray:
    """uint64 key of a galaxy: hash(brickname) combined with objid, or with ra and dec bits."""
    h = draws.hash_strings(table.column("brickname"))
    if "objid" in table.column_names:
        return draws.combine(h, column_numpy(table, "objid", np.int64).view(np.uint64))
    h = draws.combine(h, draws.float_bits(column_numpy(table, "ra")))
    return draws.combine(h, draws.float_bits(column_numpy(table, "dec")))


def _dedupe(parent: pa.Table) -> tuple[pa.Table, int, str]:
    """Drop repeated (brickname, objid) rows (or (brickname, ra, dec) without objid)."""
    code = pc.dictionary_encode(parent.column("brickname").combine_chunks()).indices.to_numpy(
        zero_copy_only=False).astype(np.int64)
    if "objid" in parent.column_names:
        by = "brickname, objid"
        keys = [column_numpy(parent, "objid", np.int64), code]
    else:
        by = "brickname, ra, dec"
        keys = [column_numpy(parent, "dec"), column_numpy(parent, "ra"), code]
    order = np.lexsort(keys)  # stable: the first row of a repeated key comes first
    same = np.ones(len(order) - 1 if len(order) else 0, dtype=bool)
    for k in keys:
        ks = k[order]
        same &= ks[1:] == ks[:-1]
    n_dup = int(same.sum())
    if n_dup == 0:
        return parent, 0, by
    keep = np.sort(order[np.concatenate([[True], ~same])])
    return parent.take(pa.array(keep)), n_dup, by


def empty_error(funnel: list[tuple[str, int]], detail: str) -> EmptyManifestError:
    steps = " -> ".join(f"{name}: {n}" for name, n in funnel)
    return EmptyManifestError(f"stage 4a would write an empty manifest: {detail}. Funnel: {steps}")
