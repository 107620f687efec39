"""Candidate galaxies for the task manifests: filters (with a funnel), PSF/depth strata and joins.

The parent catalog is read once; each selection set keeps an index array into it (a galaxy whose
region belongs to several selection sets is not copied). Strata are the 4 x 4 quartile bins of the
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
from dhs.io.tables import InputTableError, column_numpy, coordinate_problems, read_table

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
    bad = {str(v["values"]): v["counts"] for v in counts.to_pylist() if v["values"] not in SPLITS}
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


def _drop_bad_coordinates(parent: pa.Table, uri: str, funnel: list, warnings: list) -> pa.Table:
    """Rows whose (ra, dec) cannot be a sky position are dropped, with a count by reason."""
    problems = coordinate_problems(column_numpy(parent, "ra"), column_numpy(parent, "dec"))
    bad = np.logical_or.reduce(list(problems.values()))
    if not bad.any():
        return parent
    counts = ", ".join(f"{int(m.sum())} {why}" for why, m in problems.items() if m.any())
    warnings.append(f"parent {uri}: dropped {int(bad.sum())} row(s) with impossible coordinates ({counts})")
    funnel.append(("ra in [0, 360), dec in [-90, 90]", int((~bad).sum())))
    return parent.filter(pa.array(~bad))


def load_candidates(inputs: ManifestInputs, split_seed: int) -> Candidates:
    """Read, filter and join the three input tables; the brick table's PSF sizes and depths
    pass the unit checks of ``dhs.parent.units``."""
    flag = inputs.require_lrg_flag or None
    funnel: list[tuple[str, int]] = []
    warnings: list[str] = []
    sets = read_selections(inputs.region_selections, inputs.selection_set_ids)

    parent, n_read = read_table(inputs.parent, PARENT_COLUMNS + ((flag,) if flag else ()),
                                what="parent", optional=PARENT_OPTIONAL + SHAPE_COLUMNS, true_filter=flag,
                                numeric=PARENT_NUMERIC)
    funnel.append(("parent catalog rows", n_read))
    if flag:
        funnel.append((f"{flag} set", parent.num_rows))
    parent = _drop_bad_coordinates(parent, inputs.parent, funnel, warnings)
    for c in PARENT_OPTIONAL[1:]:
        if c not in parent.column_names:
            parent = parent.append_column(c, pa.array(np.full(parent.num_rows, np.nan)))
    _check_splits(parent.column("region_split"), inputs.parent, "parent")

    parent, n_dup, by = _dedupe(parent)
    if n_dup:
        warnings.append(f"parent: dropped {n_dup} duplicate rows (same {by}); kept the first of each")
    funnel.append((f"unique ({by})", parent.num_rows))

    bricks = read_brick_table(inputs.bricks_with_region, BRICK_COLUMNS, inputs.pixscale_arcsec)
    uniq = pc.unique(bricks.column("brickname"))
    if len(uniq) < bricks.num_rows:
        warnings.append(f"bricks_with_region: {bricks.num_rows - len(uniq)} duplicate bricknames; "
                        "kept the first row of each")
    edges = {c: quartile_edges(column_numpy(bricks, c), c, inputs.bricks_with_region)
             for c in ("psfsize_r", "psfdepth_r")}

    # selection-set membership (by region_id)
    region = column_numpy(parent, "region_id", np.int64)
    sel_table, _ = read_table(inputs.region_selections, SELECTION_COLUMNS, what="region_selections")
    member = []
    for s in sets:
        regions = sel_table.filter(pc.equal(sel_table.column("selection_set_id"), s.selection_set_id))
        member.append(np.isin(region, column_numpy(regions, "region_id", np.int64)))
    in_any = np.logical_or.reduce(member) if member else np.zeros(parent.num_rows, bool)
    funnel.append(("in a selected selection set (galaxies)", int(in_any.sum())))
    funnel.append(("  galaxy x selection-set rows", int(sum(int(m.sum()) for m in member))))

    # brick join and the PSF/depth filter
    bidx = pc.index_in(parent.column("brickname"), value_set=bricks.column("brickname"))
    found = bidx.is_valid().to_numpy(zero_copy_only=False)
    bidx = bidx.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    brick_vals = {c: column_numpy(bricks, c)[bidx] for c in BRICK_COLUMNS[1:]}
    for c in brick_vals:
        brick_vals[c][~found] = np.nan
    ok = (in_any & np.isfinite(brick_vals["psfsize_r"]) & np.isfinite(brick_vals["psfdepth_r"])
          & np.isfinite(column_numpy(parent, "rmag")))
    funnel.append(("with psfsize_r, psfdepth_r (brick join) and rmag", int(ok.sum())))
    funnel.append(("  galaxy x selection-set rows", int(sum(int((m & ok).sum()) for m in member))))

    keep = np.flatnonzero(ok)
    parent = parent.take(pa.array(keep))
    for c, v in brick_vals.items():
        parent = parent.append_column(c, pa.array(v[keep]))
    new_index = np.full(len(ok), -1, dtype=np.int64)
    new_index[keep] = np.arange(len(keep))
    set_rows = [new_index[np.flatnonzero(m & ok)] for m in member]
    return finish_candidates(parent, sets, set_rows, edges, funnel, warnings)


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
