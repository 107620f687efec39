"""The brick and region tables of stage parent, from the per-file brick sums of its shards.

Brick table (``bricks_with_region.parquet``, schema.PARENT_BRICKS): one row per brick with
catalog objects. Geometry (BRICKID, centre) from ``dhs.survey.bricks``; region and split from the
centre (``dhs.parent.regions``). ``psfsize_X`` and ``psfdepth_X`` are means over the brick's
objects with NOBS_X > 0 (the catalogs give both at each object's position), ``ebv`` the mean
E(B-V). With a DR10 per-brick summary table (``survey-bricks-dr10-south.fits.gz``, whose depths
are 5-sigma AB magnitudes: converted by the unit checks), its psfsize/psfdepth/ebv replace the
means for the bricks it lists. Region tables: ``region_metrics.parquet`` and
``region_selections.parquet`` (``dhs.parent.regions``).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dhs import schema
from dhs.io import datasets as dio
from dhs.io import storage
from dhs.parent import regions, units
from dhs.parent.catalog import BANDS, STAT_COLUMNS, ParentSettings, brick_geometry
from dhs.parent.names import BRICKS_FILE, METRICS_FILE, SELECTIONS_FILE  # noqa: F401  (ptables.BRICKS_FILE)


def combined_sums(s: ParentSettings, shard_names: list[str]) -> pa.Table:
    """Brick sums over the given shards, one row per brick (sorted by name)."""
    import pyarrow.parquet as pq

    parts = []
    for name in shard_names:
        uri = storage.join(s.brickstats_dir, f"part-{name}.parquet")
        with storage.open_input(uri) as f:
            parts.append(pq.read_table(f))
    if not parts:
        return pa.table({"brickname": pa.array([], pa.string()),
                         **{k: pa.array([], pa.float64()) for k in STAT_COLUMNS}})
    table = pa.concat_tables(parts)
    grouped = table.group_by("brickname").aggregate([(k, "sum") for k in STAT_COLUMNS])
    grouped = grouped.rename_columns([c[:-4] if c.endswith("_sum") and c[:-4] in STAT_COLUMNS else c
                                      for c in grouped.column_names])
    return grouped.sort_by("brickname")


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.maximum(den, 1e-300), np.nan)


def _summary(s: ParentSettings) -> dict[str, dict[str, np.ndarray]] | None:
    """{brickname: column values} from the optional DR10 per-brick summary table."""
    if not s.bricks_summary:
        return None
    from dhs.io.tables import column_numpy, read_table

    cols = ("brickname",) + tuple(f"psfsize_{b}" for b in BANDS) + tuple(f"psfdepth_{b}" for b in BANDS)
    table, _ = read_table(s.bricks_summary, cols, what="bricks summary", optional=("ebv",))
    where = f"bricks summary {s.bricks_summary}"
    depth, _ = units.check_depth_columns({f"psfdepth_{b}": column_numpy(table, f"psfdepth_{b}")
                                          for b in BANDS}, where, s.depth_units)
    vals = dict(depth)
    for b in BANDS:
        vals[f"psfsize_{b}"], _ = units.psfsize_to_arcsec(column_numpy(table, f"psfsize_{b}"),
                                                          f"psfsize_{b}", where, s.pixscale_arcsec,
                                                          s.psfsize_units)
    if "ebv" in table.column_names:
        vals["ebv"] = column_numpy(table, "ebv")
    names = table.column("brickname").to_pylist()
    return {"names": np.asarray(names, dtype=str), **vals}


def brick_table(s: ParentSettings, sums: pa.Table) -> pa.Table:
    """The brick table (schema.PARENT_BRICKS) from the combined brick sums."""
    names = sums.column("brickname").to_numpy(zero_copy_only=False).astype(str)
    get = {k: sums.column(k).to_numpy() for k in STAT_COLUMNS}
    bid, ra, dec = brick_geometry(names)
    rid = regions.region_ids(ra, dec, s.region_nside)
    vals: dict[str, np.ndarray] = {
        "brickname": names, "brickid": bid, "ra": ra, "dec": dec, "region_id": rid,
        "region_split": regions.split_names(rid, s.region_nside, s.split_fractions, s.split_seed),
        "ebv": _ratio(get["ebv_sum"], get["n_objects"]),
        "n_objects": get["n_objects"].astype(np.int64), "n_parent": get["n_parent"].astype(np.int64),
        "n_lrg": get["n_lrg"].astype(np.int64),
    }
    for b in BANDS:
        for kind in ("psfsize", "psfdepth"):
            vals[f"{kind}_{b}"] = _ratio(get[f"{kind}_sum_{b}"], get[f"{kind}_n_{b}"])
    summary = _summary(s)
    if summary is not None:
        pos = {n: i for i, n in enumerate(summary["names"])}
        idx = np.array([pos.get(n, -1) for n in names], dtype=np.int64)
        hit = idx >= 0
        for k, v in summary.items():
            if k != "names":
                vals[k] = np.where(hit, v[np.maximum(idx, 0)] if len(v) else np.nan, vals[k])
    sch = schema.arrow_schema(schema.PARENT_BRICKS)
    return pa.Table.from_arrays([pa.array(np.asarray(vals[f.name]), type=f.type) for f in sch], schema=sch)


def write_tables(s: ParentSettings, shard_names: list[str]) -> dict[str, pa.Table]:
    """Write the brick table and the region tables; returns them."""
    bricks = brick_table(s, combined_sums(s, shard_names))
    metrics = regions.region_metrics(bricks, s.region_nside)
    selections = regions.region_selections(metrics, s.ranking_modes, s.topk_frac)
    out = {BRICKS_FILE: bricks, METRICS_FILE: metrics, SELECTIONS_FILE: selections}
    for fname, table in out.items():
        storage.write_bytes_atomic(storage.join(s.out_root, fname), dio.table_to_parquet_bytes(table))
    return out


def split_counts(table: pa.Table) -> dict[str, int]:
    """Rows per region_split (every split named, zeros included)."""
    counts = {v["values"]: v["counts"] for v in pc.value_counts(table.column("region_split")).to_pylist()} \
        if table.num_rows else {}
    return {k: int(counts.get(k, 0)) for k in regions.SPLITS}
