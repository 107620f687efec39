"""Candidates from a target list (``targets=PATH``: CSV, Parquet or FITS; only ra and dec required).

Column names are matched case-insensitively (DR10 FITS tables write RA, DEC). Every other
column is optional; without it the documented default applies:

brickname
    always computed from (ra, dec) with the DR10 brick grid (``dhs.survey.bricks``); a given
    brickname that disagrees is replaced (counted in the warnings).
region_id, region_split
    taken from the list when both are present, else the nested HEALPix cell (nside
    ``parent.region_nside``) of the brick centre and its hashed split (``dhs.parent.regions``,
    ``parent.split_fractions`` and ``seeds.split_seed``): the same targets always get the same
    split, and a region's split does not depend on which other targets are listed.
rmag
    ``rmag``, else ``22.5 - 2.5 log10(flux_r)``; without either, every target gets
    ``manifest.reference_rmag`` so that ``src_mag_r = reference_rmag + src_dmag``: the grid's
    source magnitudes become absolute r magnitudes, independent of the lens.
zmag, w1mag, rz, zw1
    copied when present, else NaN (nothing downstream reads them).
psfsize_g/r/z (arcsec FWHM), psfdepth_r (1/nmgy^2), ebv
    the list's columns (through the unit checks of ``dhs.parent.units``: psfdepth in 5-sigma
    magnitudes and psfsize in pixels are recognised and converted), else the brick table
    ``manifest.bricks_with_region`` when it exists and lists the brick, else ``psf.default_fwhm_arcsec``,
    the depth of ``manifest.default_depth_r_mag`` (5-sigma AB) and E(B-V) NaN. Stage 4c measures
    the PSF from the psfsize maps (or the cutout) whatever the manifest says.
LRG flag
    ``manifest.require_lrg_flag`` filters only when the list has that column (null never filters).

Rows with a non-finite ra/dec, ra outside [0, 360) or dec outside [-90, 90] are dropped and
counted; they never stop the run. One selection set, ``targets`` (strategy ``targets``, ranking
mode ``none``), holds every target; strata are the quartiles over the targets themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dhs.io.tables import InputTableError, as_bool, missing_columns_error, read_table, table_format
from dhs.manifest.candidates import (SPLITS, Candidates, SelectionSet, _check_splits, _dedupe,
                                     brick_conditions, finish_candidates, quartile_edges)

TARGET_SET_ID = "targets"
OPTIONAL = ("brickname", "objid", "region_id", "region_split", "rmag", "flux_r", "zmag", "w1mag",
            "rz", "zw1", "psfsize_g", "psfsize_r", "psfsize_z", "psfdepth_r", "ebv")


@dataclass(frozen=True)
class TargetSettings:
    """What 4a needs to turn a target list into candidates (see the module docstring)."""

    uri: str
    region_nside: int = 32
    split_fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
    split_seed: int = 13
    require_flag: Optional[str] = None
    reference_rmag: float = 19.5
    default_fwhm_arcsec: float = 1.3
    default_depth_r_mag: float = 23.9
    bricks_table: Optional[str] = None
    pixscale_arcsec: float = 0.262
    depth_units: str = "auto"
    psfsize_units: str = "auto"


def _read(s: TargetSettings) -> tuple[pa.Table, int]:
    """The target table with lower-case column names (ra, dec required)."""
    table_format(s.uri)
    extra = (s.require_flag,) if s.require_flag else ()
    names = ("ra", "dec", *OPTIONAL, *extra)
    variants = tuple(dict.fromkeys([*names, *(n.upper() for n in names)]))
    table, n = read_table(s.uri, (), what="targets", optional=variants)
    lower = [c.lower() for c in table.column_names]
    keep = [i for i, c in enumerate(lower) if lower.index(c) == i]  # 'ra' wins over 'RA'
    table = pa.Table.from_arrays([table.column(i) for i in keep], names=[lower[i] for i in keep])
    missing = [c for c in ("ra", "dec") if c not in table.column_names]
    if missing:
        raise missing_columns_error(s.uri, "targets", missing, table.column_names)
    return table, n


def _float(table: pa.Table, name: str) -> np.ndarray:
    return table.column(name).cast(pa.float64()).fill_null(np.nan).to_numpy()


def _conditions(table: pa.Table, bricknames: np.ndarray, s: TargetSettings,
                warnings: list[str]) -> dict[str, np.ndarray]:
    """psfsize_g/r/z, psfdepth_r and ebv per target: list, else brick table, else defaults."""
    from dhs.io import storage
    from dhs.parent import units

    n = table.num_rows
    out: dict[str, np.ndarray] = {}
    where = f"targets {s.uri}"
    for c in ("psfsize_g", "psfsize_r", "psfsize_z"):
        if c in table.column_names:
            out[c], _ = units.psfsize_to_arcsec(_float(table, c), c, where, s.pixscale_arcsec,
                                                s.psfsize_units)
    if "psfdepth_r" in table.column_names:
        out["psfdepth_r"], chk = units.depth_to_ivar(_float(table, "psfdepth_r"), "psfdepth_r", where,
                                                     s.depth_units)
        if chk.converted:
            warnings.append(chk.note(where))
    if "ebv" in table.column_names:
        out["ebv"] = _float(table, "ebv")
    need = [c for c in ("psfsize_g", "psfsize_r", "psfsize_z", "psfdepth_r", "ebv") if c not in out]
    brick = {}
    if need and s.bricks_table and storage.exists(s.bricks_table):
        brick = brick_conditions(s.bricks_table, bricknames, need, s.pixscale_arcsec,
                                 s.depth_units, s.psfsize_units)
    defaults = {"psfsize_g": s.default_fwhm_arcsec, "psfsize_r": s.default_fwhm_arcsec,
                "psfsize_z": s.default_fwhm_arcsec,
                "psfdepth_r": float(units.mag_to_ivar(np.array([s.default_depth_r_mag]))[0]),
                "ebv": np.nan}
    for c in need:
        v = brick.get(c, np.full(n, np.nan))
        gap = ~np.isfinite(v)
        if gap.any() and c != "ebv":
            warnings.append(f"targets: {int(gap.sum())} of {n} rows have no {c} (not in the list"
                            + (" nor in the brick table" if s.bricks_table else "")
                            + f"); used the default {defaults[c]:.4g}")
        out[c] = np.where(gap, defaults[c], v)
    return out


def load_targets(s: TargetSettings) -> Candidates:
    """Read, check and complete a target list; one selection set holds every target."""
    from dhs.parent import regions
    from dhs.survey.bricks import radec_to_brickname, radec_to_rowcol, rowcol_to_center

    table, n_read = _read(s)
    funnel: list[tuple[str, int]] = [("target rows", n_read)]
    warnings: list[str] = []
    ra, dec = _float(table, "ra"), _float(table, "dec")
    ok = np.isfinite(ra) & np.isfinite(dec) & (ra >= 0) & (ra < 360) & (dec >= -90) & (dec <= 90)
    if not ok.all():
        bad = np.flatnonzero(~ok)
        warnings.append(f"targets: dropped {bad.size} rows with ra/dec missing or out of range "
                        f"(first: row {int(bad[0])}, ra={ra[bad[0]]!r}, dec={dec[bad[0]]!r})")
    table = table.filter(pa.array(ok))
    funnel.append(("ra in [0, 360), dec in [-90, 90]", table.num_rows))
    if s.require_flag and s.require_flag in table.column_names:
        table = table.filter(as_bool(table.column(s.require_flag)))
        funnel.append((f"{s.require_flag} set", table.num_rows))
    ra, dec = _float(table, "ra"), _float(table, "dec")
    names = np.asarray(radec_to_brickname(ra, dec), dtype=str) if table.num_rows else np.zeros(0, str)
    if "brickname" in table.column_names:
        given = np.asarray(table.column("brickname").cast(pa.string()).fill_null("").to_pylist(), dtype=str)
        differ = int(np.sum(np.char.strip(given) != names))
        if differ:
            warnings.append(f"targets: {differ} rows name a brick that does not hold their ra/dec; "
                            "the brick holding the position is used")
        table = table.drop_columns(["brickname"])
    cols: dict[str, pa.Array] = {"brickname": pa.array(names, pa.string()), "ra": pa.array(ra),
                                 "dec": pa.array(dec)}
    if "objid" in table.column_names:
        cols["objid"] = table.column("objid").cast(pa.int64()).combine_chunks()
    if {"region_id", "region_split"} <= set(table.column_names):
        cols["region_id"] = table.column("region_id").cast(pa.int64()).combine_chunks()
        cols["region_split"] = table.column("region_split").cast(pa.string()).combine_chunks()
        _check_splits(cols["region_split"], s.uri, "targets")
    else:
        row, col = radec_to_rowcol(ra, dec)
        bra, bdec = rowcol_to_center(row, col)
        rid = regions.region_ids(bra, bdec, s.region_nside)
        cols["region_id"] = pa.array(rid, pa.int64())
        cols["region_split"] = pa.array(regions.split_names(rid, s.region_nside, s.split_fractions,
                                                            s.split_seed), pa.string())
    if "rmag" in table.column_names:
        rmag = _float(table, "rmag")
    elif "flux_r" in table.column_names:
        f = _float(table, "flux_r")
        with np.errstate(divide="ignore", invalid="ignore"):
            rmag = np.where(f > 0, 22.5 - 2.5 * np.log10(np.where(f > 0, f, 1.0)), np.nan)
    else:
        rmag = np.full(table.num_rows, s.reference_rmag)
        warnings.append(f"targets: no rmag or flux_r column; src_mag_r = manifest.reference_rmag "
                        f"({s.reference_rmag:g}) + src_dmag for every target")
    cols["rmag"] = pa.array(rmag)
    for c in ("zmag", "w1mag", "rz", "zw1"):
        cols[c] = pa.array(_float(table, c) if c in table.column_names else np.full(table.num_rows, np.nan))
    for c, v in _conditions(table, names, s, warnings).items():
        cols[c] = pa.array(np.asarray(v, dtype=np.float64))
    parent = pa.table(cols)
    ok = np.isfinite(rmag)
    if not ok.all():
        parent = parent.filter(pa.array(ok))
    funnel.append(("with an r magnitude", parent.num_rows))
    parent, n_dup, by = _dedupe(parent)
    if n_dup:
        warnings.append(f"targets: dropped {n_dup} duplicate rows (same {by}); kept the first of each")
    funnel.append((f"unique ({by})", parent.num_rows))
    if parent.num_rows == 0:
        raise InputTableError(f"targets {s.uri}: no usable row; funnel: "
                              + " -> ".join(f"{k}: {v}" for k, v in funnel))
    splits = tuple(x for x in SPLITS if x in set(pc.unique(parent.column("region_split")).to_pylist()))
    sets = [SelectionSet(TARGET_SET_ID, "targets", "none", splits)]
    edges = {c: quartile_edges(parent.column(c).to_numpy(), c, s.uri) for c in ("psfsize_r", "psfdepth_r")}
    rows = [np.arange(parent.num_rows, dtype=np.int64)]
    return finish_candidates(parent, sets, rows, edges, funnel, warnings)
