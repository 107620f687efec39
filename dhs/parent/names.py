"""Names of stage parent's outputs: its files under ``parent.out_root`` and the LRG flag columns
(a light module: ``stage=plan`` and the config checks read them without loading the catalog code)."""

#: The parent catalog (a Parquet dataset of LRG rows).
PARENT_DIR = "parent_catalog.parquet"
#: Per-catalog brick sums, merged into the brick table.
BRICKSTATS_DIR = "_brickstats"
#: The brick, region-metrics and region-selection tables.
BRICKS_FILE = "bricks_with_region.parquet"
METRICS_FILE = "region_metrics.parquet"
SELECTIONS_FILE = "region_selections.parquet"

#: The DESI LRG flag column (dhs.parent.lrg).
DESI_FLAG = "is_lrg_desi"
#: name: (zmag max, r - z min, z - W1 min), MW-corrected magnitudes (the earlier system's variants).
VARIANT_CUTS: dict[str, tuple[float, float, float]] = {
    "is_v1_pure_massive": (20.0, 0.5, 1.6),
    "is_v2_baseline_dr10": (20.4, 0.4, 1.6),
    "is_v3_color_relaxed": (20.4, 0.4, 0.8),
    "is_v4_mag_relaxed": (21.0, 0.4, 0.8),
    "is_v5_very_relaxed": (21.5, 0.3, 0.5),
}
#: Every flag column the selection writes.
FLAGS = (DESI_FLAG, *VARIANT_CUTS)
