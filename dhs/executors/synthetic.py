"""A deterministic CPU-bound shard workload for executor checks and benchmarks.

Each row renders a small Gaussian stamp (pixels) from parameters drawn by hashing
(shard, row) with ``dhs.draws.hash_str``, smooths it ``work`` times and stores it; each shard writes one
Parquet shard through ``dhs.io.datasets.write_shard``. Same shards -> same bytes, whatever the
executor: the test of byte-identical backends and ``benchmarks/bench_backends.py`` use it.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from dhs.draws import hash_str

SPLITS = ("train", "val", "test")


def uniform(key: str, salt: str) -> float:
    """A uniform draw in [0, 1) that is a pure function of (key, salt)."""
    return hash_str(f"{salt}/{key}") / 2.0**64


def make_shards(dataset: str, n_shards: int, rows: int = 64, work: int = 20,
                size_pix: int = 48) -> list[dict]:
    """``n_shards`` shard descriptions writing into ``dataset`` (a local path or s3:// URI)."""
    return [{"name": f"s{i:04d}", "dataset": dataset, "rows": rows, "work": work,
             "size_pix": size_pix} for i in range(n_shards)]


def _stamp(key: str, size: int, work: int) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) - (size - 1) / 2.0
    sigma = 1.0 + 4.0 * uniform(key, "sigma")
    x0 = 6.0 * (uniform(key, "x0") - 0.5)
    y0 = 6.0 * (uniform(key, "y0") - 0.5)
    img = 100.0 * uniform(key, "amp") * np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * sigma**2))
    for _ in range(work):  # a 5-point smoothing: CPU work that depends on every pixel
        img = 0.5 * img + 0.125 * (np.roll(img, 1, 0) + np.roll(img, -1, 0)
                                   + np.roll(img, 1, 1) + np.roll(img, -1, 1))
    return img.astype(np.float32)


def shard_fn(shard: dict, settings: object = None) -> dict:
    """Render and write one shard; returns {shard, rows, rows_by_split, flux_sum}."""
    from dhs.io.datasets import write_shard

    name, size = shard["name"], int(shard["size_pix"])
    ids, splits, flux, stamps = [], [], [], []
    for i in range(int(shard["rows"])):
        key = f"{name}:{i:06d}"
        img = _stamp(key, size, int(shard["work"]))
        ids.append(key)
        splits.append(SPLITS[int(3 * uniform(key, "split"))])
        flux.append(float(img.sum(dtype=np.float64)))
        stamps.append(img.tobytes())
    table = pa.table({
        "task_id": pa.array(ids, pa.string()),
        "region_split": pa.array(splits, pa.string()),
        "flux": pa.array(flux, pa.float64()),
        "stamp": pa.array(stamps, pa.binary()),
    })
    counts = write_shard(table, shard["dataset"], name)
    return {"shard": name, "rows": table.num_rows, "rows_by_split": counts,
            "flux_sum": float(np.sum(flux))}
