"""One score shard: the stamps files of one 4c shard -> a scores part, committed atomically.

A shard is ``{"experiment_id", "shard_id", "files": [(stamps file, region_split), ...],
"scores_dir", "fingerprint"}``: the files of one 4c shard (one per region_split), read file by
file and handed to the finder in batches of ``ScoreSettings.batch_size`` stamps. Only
:data:`PIXEL_COLUMNS` are read from the stamps and only the arrays, the band names and the pixel
scale reach the finder. Rows keep the stamps' order; each row's score depends on its own stamp
alone, so results are the same on every executor and for any number of workers. A committed
shard is kept only while its marker carries the shard's ``fingerprint`` (dhs.io.shards). Rows
the finder cannot score keep NaN and a flag (``score_ok`` 0, ``score_flag``): failed cutouts
(``no_cutout``), a score that is not finite (``nan_score``), a stamp without a good pixel
(``no_pixels``), a finder that raised on the stamp (``finder_failed``: a batch that raises is
scored again stamp by stamp, so one bad stamp never stops a shard).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pyarrow as pa

from dhs import schema
from dhs.errors import DhsError
from dhs.io import datasets
from dhs.io.stamps import QUANT_COLUMNS
from dhs.finders.settings import ScoreSettings  # noqa: F401  (numpy-free, read by stage=plan)

#: The stamps columns a score shard reads (pixels, the band order, and the row's ids and label).
PIXEL_COLUMNS = ("task_id", "is_control", "cutout_ok", "bandset", "stamp_size", "image", "invvar", "maskbits")


_FINDERS: dict[str, Any] = {}


def finder_for(s: ScoreSettings) -> Any:
    """The finder of ``s``, built once per process (an ONNX session opens once per worker)."""
    from dhs.finders import make_finder

    key = s.finder + ":" + s.settings_hash
    if key not in _FINDERS:
        _FINDERS[key] = make_finder(s.finder, s.finder_settings)
    return _FINDERS[key]


def score_arrays(finder: Any, images: np.ndarray, invvar: np.ndarray, maskbits: np.ndarray,
                 bands: tuple[str, ...], pixscale: float) -> tuple[np.ndarray, np.ndarray]:
    """(scores, flags) of a batch; a batch that raises (not a configuration error) is scored stamp
    by stamp and the stamps that raise alone are flagged ``finder_failed``."""
    try:
        res = finder(images, invvar, maskbits, bands=bands, pixscale=pixscale)
        return res.scores, res.reason.astype(object)
    except DhsError:
        raise
    except Exception:  # noqa: BLE001 - a stamp the finder chokes on must not stop the shard
        if images.shape[0] == 1:
            return np.full(1, np.nan), np.array(["finder_failed"], dtype=object)
    parts = [score_arrays(finder, images[i:i + 1], invvar[i:i + 1], maskbits[i:i + 1], bands, pixscale)
             for i in range(images.shape[0])]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def score_table(table: pa.Table, s: ScoreSettings, finder: Any) -> pa.Table:
    """Scores of the stamp rows of ``table`` (one bandset and stamp size) in their order."""
    from dhs.io.stamps import to_numpy

    n = table.num_rows
    scores = np.full(n, np.nan)
    flags = np.full(n, "no_cutout", dtype=object)
    ok_rows = np.flatnonzero(table.column("cutout_ok").to_numpy(zero_copy_only=False) == 1)
    bands = tuple(str(table.column("bandset")[0].as_py())) if n else ()
    for a in range(0, ok_rows.size, s.batch_size):
        idx = ok_rows[a:a + s.batch_size]
        sub = table.take(pa.array(idx))
        sc, fl = score_arrays(finder, to_numpy(sub), to_numpy(sub, "invvar"), to_numpy(sub, "maskbits"),
                              bands, s.pixscale_arcsec)
        scores[idx], flags[idx] = sc, fl
    flags = flags.astype(str)
    cols = {"task_id": table.column("task_id"), "is_control": table.column("is_control"),
            "score": pa.array(scores, pa.float64()),
            "score_ok": pa.array((flags == "").astype(np.int32), pa.int32()),
            "score_flag": pa.array(flags, pa.string()),
            "finder": pa.array([s.finder] * n, pa.string()),
            "model_checksum": pa.array([finder.checksum] * n, pa.string()),
            "settings_hash": pa.array([s.settings_hash] * n, pa.string())}
    return pa.table(cols, schema=schema.arrow_schema(schema.SCORES))


def run_score_shard(shard: dict, s: ScoreSettings) -> dict:
    """Score one shard and commit it; returns its counts (rows, flags, seconds, skipped)."""
    import pyarrow.parquet as pq

    from dhs.io import storage

    from dhs.io import shards

    sid, out, fp = shard["shard_id"], shard["scores_dir"], shard["fingerprint"]
    if s.skip_existing and shards.state(out, sid, fp) == "current":
        return {"shard": sid, "skipped": True, "rows": 0, "flags": {}, "seconds": 0.0}
    t0 = time.perf_counter()
    finder = finder_for(s)
    parts = []
    for uri, split in shard["files"]:
        with storage.open_input(uri) as f:
            have = set(pq.read_schema(f).names)
            quant = [c for c in QUANT_COLUMNS if c in have]  # quantized stamps (output.quantize)
            stamps = pq.read_table(f, columns=list(PIXEL_COLUMNS) + quant)
        t = score_table(stamps, s, finder)
        parts.append(t.append_column(datasets.PARTITION_COL, pa.array([split] * t.num_rows, pa.string())))
    table = pa.concat_tables(parts)
    flags: dict[str, int] = {}
    for f in table.column("score_flag").to_pylist():
        flags[f or "ok"] = flags.get(f or "ok", 0) + 1
    datasets.write_shard(table, out, sid, compression=s.compression, extra={"errors": flags}, fingerprint=fp)
    flags: dict[str, int] = {}
    for f in table.column("score_flag").to_pylist():
        flags[f or "ok"] = flags.get(f or "ok", 0) + 1
    return {"shard": sid, "skipped": False, "rows": table.num_rows, "flags": flags,
            "seconds": time.perf_counter() - t0}
