"""Synthetic 4c outputs (metrics and stamps datasets, COSMOS bank) with the real schemas, and the
fixtures of the tests that read them (4d, 4p5, validate, stamps)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from dhs.stages import layout
from dhs.context import make_context
from dhs.io.datasets import mark_success, write_shard
from dhs.io.shards import Fingerprint, rows_digest
from dhs.schema import MANIFEST, arrow_schema, control_null_columns, metrics_columns, stamp_columns
from tests.helpers import compose_config

EXP = "debug_stamp16_bandsgrz_gridgrid_small"
BANDS = ["g", "r", "z"]
SPLITS = {1: "train", 2: "train", 3: "val", 4: "test"}
THETAS = (0.3, 0.6, 1.0, 1.5)
BANK_SIZE = 50


def make_bank(path: Path, n: int = BANK_SIZE) -> Path:
    """A small COSMOS-bank-shaped HDF5 file: images (n, 8, 8), hlr_arcsec 0.1-1.0, n_sources."""
    import h5py

    with h5py.File(path, "w") as h5:
        h5.create_dataset("images", data=np.full((n, 8, 8), 1 / 64, dtype=np.float32))
        h5.create_dataset("hlr_arcsec", data=np.linspace(0.1, 1.0, n))
        h5.attrs["n_sources"] = n
        h5.attrs["src_pixscale_arcsec"] = 0.03
    return path


def metrics_frame(n_per: int = 6, seed: int = 3, source_mode: str = "cosmos",
                  stamp_size: int = 16, bandset: str = "grz") -> pd.DataFrame:
    """Rows of every MANIFEST + metrics column: per region and theta_E, n_per injections, plus
    controls; arc_snr rises with theta_E / PSF; a few cutout_ok = 0 rows with error codes."""
    rng = np.random.default_rng(seed)
    recs = []
    for region, split in SPLITS.items():
        for theta in THETAS + (0.0,):
            for i in range(n_per if theta else 2 * n_per):
                recs.append({"region_id": region, "region_split": split, "theta_e_arcsec": theta,
                             "is_control": int(theta == 0.0), "replicate": i % 2})
    df = pd.DataFrame(recs)
    n = len(df)
    cols = MANIFEST + metrics_columns(BANDS)
    for c in cols:
        if c.name in df.columns:
            continue
        if pa.types.is_string(c.type):
            df[c.name] = ""
        elif pa.types.is_integer(c.type):
            df[c.name] = 0
        else:
            df[c.name] = rng.uniform(0.0, 1.0, n)
    df["task_id"] = [hashlib.blake2b(f"task{i}".encode(), digest_size=8).hexdigest() for i in range(n)]
    df["experiment_id"] = EXP
    df["brickname"] = [f"0001p00{r}" for r in df["region_id"]]
    df["psfsize_r"] = rng.uniform(1.0, 1.6, n)
    df["psfdepth_r"] = 25.0 / (10 ** ((22.5 - rng.uniform(23.4, 24.4, n)) / 2.5)) ** 2
    ctl = df["is_control"].to_numpy() == 1
    df["lens_model"] = np.where(ctl, "CONTROL", "SIE")
    df["config_id"] = np.where(ctl, "CONTROL", "grid_small_0000")
    df["src_dmag"] = rng.choice([1.0, 2.0], n)
    df["src_reff_arcsec"] = rng.choice([0.08, 0.15], n)
    df["stamp_size"] = stamp_size
    df["bandset"] = bandset
    res = df["theta_e_arcsec"].to_numpy() / df["psfsize_r"].to_numpy()
    df["arc_snr"] = np.where(ctl, 0.0, 12.0 * res * rng.uniform(0.5, 1.5, n))
    df["bad_pixel_frac"] = rng.uniform(0.0, 0.3, n)
    df["wise_brightmask_frac"] = rng.uniform(0.0, 0.1, n)
    df["cutout_ok"] = 1
    df["error_code"] = ""
    df["metrics_ok"] = 1
    bad = np.arange(n) % 17 == 5
    df.loc[bad, "cutout_ok"] = 0
    df.loc[bad, "metrics_ok"] = 0
    df.loc[bad, "error_code"] = np.where(np.arange(bad.sum()) % 2, "edge", "missing_file")
    df.loc[bad, "arc_snr"] = np.nan
    df["source_mode"] = source_mode
    if source_mode == "cosmos":
        df["cosmos_index"] = np.where(ctl, -1, rng.integers(0, BANK_SIZE, n))
        df["cosmos_hlr_arcsec"] = np.where(ctl, np.nan, rng.uniform(0.1, 1.0, n))
    else:
        df["cosmos_index"] = -1
        df["cosmos_hlr_arcsec"] = np.nan
    df["lensed_hlr_arcsec"] = np.where(ctl, np.nan, np.hypot(df["cosmos_hlr_arcsec"].fillna(0.1),
                                                             df["theta_e_arcsec"]))
    df["psf_model"] = "moffat"
    for name in control_null_columns(BANDS):  # controls: null where nothing applies
        col = df[name]
        col = col.astype("Int64") if pd.api.types.is_integer_dtype(col) else col
        df[name] = col.mask(ctl)
    return df[[c.name for c in cols]]


def metrics_table(df: pd.DataFrame) -> pa.Table:
    schema = arrow_schema(MANIFEST + metrics_columns(BANDS))
    present = [f for f in schema if f.name in df.columns]
    return pa.Table.from_pandas(df, schema=pa.schema(present), preserve_index=False)


#: The settings every synthetic shard records in its fingerprint (and the record repeats).
SETTINGS = {"synthetic": True, "psf": {"model": "moffat", "beta": 3.5}}


def write_dataset(table: pa.Table, uri: str, n_shards: int = 3, keys: Any = None) -> str:
    """Write ``table`` as ``n_shards`` shards (contiguous row blocks), then _SUCCESS. With
    ``keys`` (a table of the same rows) each shard's fingerprint is that of its ``keys`` rows,
    as 4c does with the manifest rows, and the record names the settings."""
    edges = np.linspace(0, table.num_rows, n_shards + 1).astype(int)
    for i in range(n_shards):
        part = table.slice(edges[i], edges[i + 1] - edges[i])
        fp = None
        if keys is not None:
            fp = Fingerprint(rows_digest(keys.slice(edges[i], edges[i + 1] - edges[i])), SETTINGS, "synthetic")
        write_shard(part, uri, f"{i:05d}", fingerprint=fp)
    mark_success(uri, {"rows": table.num_rows})
    if keys is not None:
        (Path(uri) / "_dhs_record.json").write_text(json.dumps({"shard_settings": SETTINGS}))
    return uri


def write_manifest(cfg: Any, df: pd.DataFrame) -> pa.Table:
    """The manifest of the synthetic rows (their manifest columns), as 4a writes it."""
    names = [c.name for c in MANIFEST if c.name in df.columns]
    table = pa.Table.from_pandas(df[names], preserve_index=False)
    uri = layout.manifest_dir(cfg, EXP)
    write_shard(table, uri, "00000")
    mark_success(uri, {"rows": table.num_rows})
    return table


def stamps_table(df: pd.DataFrame, size: int = 16, bands: int = 3, seed: int = 5) -> pa.Table:
    """A stamps table (dhs.schema.stamp_columns) for the metrics rows; failed rows carry null arrays."""
    rng = np.random.default_rng(seed)
    n = len(df)
    ok = df["cutout_ok"].to_numpy() == 1
    img = rng.normal(0, 1, (n, bands * size * size)).astype(np.float32)
    ivar = rng.uniform(1, 2, (n, bands * size * size)).astype(np.float32)
    mb = rng.integers(0, 4, (n, size * size)).astype(np.int32)

    def lists(a, typ):
        return pa.array([row.tolist() if good else None for row, good in zip(a, ok)], pa.list_(typ))

    data = {
        "task_id": df["task_id"].tolist(), "experiment_id": df["experiment_id"].tolist(),
        "brickname": df["brickname"].tolist(), "is_control": df["is_control"].astype("int32").tolist(),
        "bandset": df["bandset"].tolist(), "stamp_size": df["stamp_size"].astype("int32").tolist(),
        "cutout_ok": df["cutout_ok"].astype("int32").tolist(),
        "image": lists(img, pa.float32()), "invvar": lists(ivar, pa.float32()), "maskbits": lists(mb, pa.int32()),
    }
    schema = arrow_schema(stamp_columns())
    t = pa.table({f.name: pa.array(data[f.name], f.type) if not isinstance(data[f.name], pa.Array)
                  else data[f.name] for f in schema}, schema=schema)
    return t.append_column("region_split", pa.array(df["region_split"].tolist(), pa.string()))



@dataclass
class Experiment:
    cfg: Any
    frame: pd.DataFrame
    metrics: str
    stamps: str
    bank: str


def experiment_cfg(data_root, bank, stage: str, extra: list[str] | None = None):
    return compose_config([f"stage={stage}", f"paths.data_root={data_root}", f"experiment_id={EXP}",
                           "source=cosmos", f"paths.cosmos_bank={bank}", "validate.rerender_rows=0",
                           *(extra or [])])


def write_experiment(data_root, frame: pd.DataFrame, stage: str = "4d", extra: list[str] | None = None,
                     stamps: Any = None) -> Experiment:
    bank = str(make_bank(data_root / "bank.h5"))
    cfg = experiment_cfg(data_root, bank, stage, extra)
    keys = write_manifest(cfg, frame)
    metrics = layout.metrics_dir(cfg, EXP)
    write_dataset(metrics_table(frame), metrics, keys=keys)
    sdir = layout.stamps_dir(cfg, EXP)
    write_dataset(stamps if stamps is not None else stamps_table(frame), sdir, keys=keys)
    return Experiment(cfg, frame, metrics, sdir, bank)


@pytest.fixture
def frame():
    return metrics_frame()


@pytest.fixture
def experiment(data_root, frame):
    return write_experiment(data_root, frame)


@pytest.fixture
def ctx(tmp_path):
    return make_context(tmp_path / "run")
