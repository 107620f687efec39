"""Stamp rows -> NumPy arrays.

The 4c stamps dataset stores each stamp's arrays flattened as Parquet lists (schema:
dhs.schema.stamp_columns): ``image`` and ``invvar`` (float32, bands x size x size, band order
of ``bandset``; nanomaggies and 1/nmgy^2) and ``maskbits`` (int32, size x size)::

    from dhs.io.stamps import read_stamps, to_numpy

    table = read_stamps("outputs/data/phase4c/v3_color_relaxed/cosmos_moffat/stamps/<experiment_id>",
                        task_ids=["..."])
    images = to_numpy(table)                       # (n, bands, size, size) float32
    masks = to_numpy(table, column="maskbits")     # (n, size, size) int32

``to_numpy`` also takes a pandas DataFrame (e.g. from ``pd.read_parquet``) or a dataset path.

Stamps written with ``output.quantize`` hold image and arc as int32 with ``quant_step`` and
``quant_seed`` (``dhs.io.quantize``: lossy below the noise); ``read_stamps`` brings those two
columns along with them and ``to_numpy`` gives back float32 nanomaggies either way.
For training a finder, :func:`iter_batches` streams a whole dataset as NumPy batches with their
labels (``is_control``), file by file, optionally shuffled (deterministic for a seed).
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Optional, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dhs.errors import InputTableError, MissingInputError
from dhs.io import datasets as dsets
from dhs.io import storage
from dhs.schema import QUANTIZED_ARRAYS, STAMP_ARRAYS

DEFAULT_COLUMNS = ("task_id", "experiment_id", "brickname", "is_control", "bandset", "stamp_size",
                   "cutout_ok", "image", "invvar", "maskbits")
#: Columns that come along with quantized arrays (their scale and dither).
QUANT_COLUMNS = ("quant_step", "quant_seed")


def read_stamps(dataset: str, task_ids: Optional[Iterable[str]] = None,
                columns: Optional[Sequence[str]] = DEFAULT_COLUMNS, *, limit: Optional[int] = None) -> pa.Table:
    """Rows of a stamps dataset (files in sorted path order, plus region_split).

    task_ids: keep only these tasks; columns: None for every column; limit: stop after this many
    rows (reads only as many files as needed).
    """
    import pyarrow.parquet as pq

    files = dsets.data_files(dataset)
    if not files:
        raise MissingInputError(f"no stamps under {dataset}; run `dhs stage=4c` (with inject.metrics_only=false)")
    wanted = set(map(str, task_ids)) if task_ids is not None else None
    cols = list(columns) if columns is not None else None
    pieces: list[pa.Table] = []
    n = 0
    base = storage.normalize(dataset).rstrip("/")
    for uri in files:
        rel = uri[len(base):].lstrip("/").split("/")
        split = next((p.split("=", 1)[1] for p in rel[:-1] if p.startswith(f"{dsets.PARTITION_COL}=")), None)
        file_cols = None if cols is None else [c for c in cols if c != dsets.PARTITION_COL]
        with storage.open_input(uri) as f:
            have = pq.read_schema(f).names
            if file_cols is not None:
                if any(c in QUANTIZED_ARRAYS for c in file_cols):
                    file_cols += [c for c in QUANT_COLUMNS if c in have and c not in file_cols]
                absent = [c for c in file_cols if c not in have]
                if absent:
                    raise InputTableError(f"stamps file {uri} lacks column(s) {absent}; columns: {have}")
            t = pq.read_table(f, columns=file_cols)
        if wanted is not None:
            t = t.filter(pc.is_in(t.column("task_id"), value_set=pa.array(sorted(wanted), pa.string())))
        if split is not None and (cols is None or dsets.PARTITION_COL in cols):
            t = t.append_column(dsets.PARTITION_COL, pa.array([split] * t.num_rows, pa.string()))
        if limit is not None and n + t.num_rows > limit:
            t = t.slice(0, limit - n)
        pieces.append(t)
        n += t.num_rows
        if limit is not None and n >= limit:
            break
    return pa.concat_tables(pieces, promote_options="default") if pieces else pa.table({})


def _as_arrow(table: Any, column: str) -> pa.Table:
    if isinstance(table, (str, bytes)) or hasattr(table, "__fspath__"):
        return read_stamps(str(table), columns=None)
    if isinstance(table, pa.Table):
        return table
    if isinstance(table, pa.RecordBatch):
        return pa.Table.from_batches([table])
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover
        pd = None
    if pd is not None and isinstance(table, pd.Series):
        table = table.to_frame().T
    if pd is not None and isinstance(table, pd.DataFrame):
        keep = [c for c in (column, "bandset", "stamp_size", "task_id") + QUANT_COLUMNS if c in table.columns]
        return pa.table({c: pa.array(list(table[c])) if c in (column, "quant_step") else pa.array(table[c].tolist())
                         for c in keep})
    raise TypeError(f"to_numpy takes a pyarrow Table, a pandas DataFrame/row or a dataset path, "
                    f"not {type(table).__name__}")


def _shape(t: pa.Table, column: str, bands: Optional[int], size: Optional[int]) -> tuple[int, ...]:
    """(bands, size, size) for image-like columns, (size, size) for maskbits, from the row metadata."""
    def single(name: str) -> Any:
        values = set(v for v in t.column(name).to_pylist() if v is not None)
        if len(values) != 1:
            raise ValueError(f"rows have {len(values)} different {name} values {sorted(values)[:5]}; "
                             f"convert rows of one {name} at a time (or pass {name} explicitly)")
        return values.pop()

    if size is None:
        if "stamp_size" not in t.column_names:
            raise ValueError("no stamp_size column: pass size=<pixels>")
        size = int(single("stamp_size"))
    if column == "maskbits":
        return (size, size)
    if bands is None:
        if "bandset" not in t.column_names:
            raise ValueError("no bandset column: pass bands=<number of bands>")
        bands = len(str(single("bandset")))
    return (int(bands), size, size)


def to_numpy(table: Any, column: str = "image", *, bands: Optional[int] = None,
             size: Optional[int] = None, fill: Optional[float] = None) -> np.ndarray:
    """Stack one array column of stamp rows into (n, bands, size, size) (maskbits: (n, size, size)).

    Band order is the rows' ``bandset``. Rows whose array is null or empty (failed cutouts) are
    filled with ``fill`` (default NaN for float arrays, 0 for maskbits); any other length raises
    ValueError naming the task.
    """
    if column not in STAMP_ARRAYS and column != "arc":
        raise ValueError(f"column must be one of {STAMP_ARRAYS + ('arc',)}, not {column!r}")
    t = _as_arrow(table, column)
    if column not in t.column_names:
        raise ValueError(f"no column {column!r} in the stamp rows (columns: {t.column_names})")
    shape = _shape(t, column, bands, size)
    per_row = int(np.prod(shape))
    arr = t.column(column).combine_chunks()
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.chunk(0) if arr.num_chunks else pa.array([], pa.list_(pa.float32()))
    dtype = np.int32 if column == "maskbits" else np.float32
    fill_value = fill if fill is not None else (0 if column == "maskbits" else np.nan)
    n = len(arr)
    lengths = pc.fill_null(pc.list_value_length(arr), 0).to_numpy(zero_copy_only=False)
    bad = np.flatnonzero((lengths != per_row) & (lengths != 0))
    if bad.size:
        i = int(bad[0])
        who = t.column("task_id")[i].as_py() if "task_id" in t.column_names else f"row {i}"
        raise ValueError(f"stamp {who}: column {column!r} has {int(lengths[i])} values, expected "
                         f"{per_row} for shape {shape}; {bad.size} row(s) have a wrong shape")
    out = np.full((n,) + shape, fill_value, dtype=dtype)
    full = lengths == per_row
    quantized = column in QUANTIZED_ARRAYS and pa.types.is_integer(arr.type.value_type)
    if full.all() and not quantized:
        values = pc.list_flatten(arr).to_numpy(zero_copy_only=False)
        return values.astype(dtype, copy=False).reshape((n,) + shape)
    if full.any():
        sub = arr.filter(pa.array(full))
        values = pc.list_flatten(sub).to_numpy(zero_copy_only=False)
        if quantized:
            out[full] = _dequantize(t, full, column, values.astype(np.int32).reshape((-1,) + shape))
        else:
            out[full] = values.astype(dtype).reshape((-1,) + shape)
    return out


def _dequantize(t: pa.Table, rows: np.ndarray, column: str, ints: np.ndarray) -> np.ndarray:
    """Floats of quantized ``column`` values of the selected rows (their quant_step, quant_seed)."""
    from dhs.io import quantize

    absent = [c for c in QUANT_COLUMNS if c not in t.column_names]
    if absent:
        raise ValueError(f"column {column!r} is quantized (integers) but the rows lack {absent}: "
                         f"read them too (read_stamps brings them with {column!r})")
    sel = pa.array(rows)
    step = pc.list_flatten(t.column("quant_step").combine_chunks().filter(sel)).to_numpy(zero_copy_only=False)
    seed = t.column("quant_seed").combine_chunks().filter(sel).to_numpy(zero_copy_only=False)
    return quantize.decode(ints, step.astype(np.float32).reshape(len(seed), -1), seed, column)


def iter_batches(path: str, batch_size: int = 256, columns: Sequence[str] = ("image",), shuffle: bool = False,
                 seed: int = 0) -> Iterator[tuple[dict[str, np.ndarray], np.ndarray]]:
    """Stream a stamps dataset as ``(arrays, labels)`` batches of ``batch_size`` rows (the last may
    be smaller): ``arrays`` maps each of ``columns`` (image, invvar, maskbits, arc, or a scalar
    column such as task_id) to a NumPy array ((n, bands, size, size) float32, (n, size, size) int32
    for maskbits, (n,) otherwise); ``labels`` is ``is_control`` as (n,) int64 (1 = control, no arc).

    Rows whose cutout failed (``cutout_ok`` 0) are left out. Memory holds one file at a time.
    ``shuffle``: the files in a random order and the rows of each file shuffled, both drawn from
    ``seed`` (the same seed gives the same batches; not a global shuffle across files). The
    dataset must hold one bandset and stamp size (one experiment).
    """
    import pyarrow.parquet as pq

    if int(batch_size) < 1:
        raise ValueError(f"batch_size={batch_size!r}: must be >= 1")
    batch_size = int(batch_size)
    files = dsets.data_files(path)
    if not files:
        raise MissingInputError(f"no stamps under {path}; run `dhs stage=4c` (with inject.metrics_only=false)")
    rng = np.random.default_rng(seed)
    if shuffle:
        files = [files[i] for i in rng.permutation(len(files))]
    wanted = list(dict.fromkeys(columns))
    read = list(dict.fromkeys([*wanted, "is_control", "cutout_ok", "bandset", "stamp_size"]))
    rest: Optional[tuple[dict[str, np.ndarray], np.ndarray]] = None
    for uri in files:
        with storage.open_input(uri) as f:
            have = pq.read_schema(f).names
            absent = [c for c in read if c not in have]
            if absent:
                raise InputTableError(f"stamps file {uri} lacks column(s) {absent}; columns: {have}")
            t = pq.read_table(f, columns=read + [c for c in QUANT_COLUMNS if c in have and c not in read])
        t = t.filter(pc.equal(t.column("cutout_ok"), 1))
        if shuffle and t.num_rows:
            t = t.take(pa.array(rng.permutation(t.num_rows)))
        arrays = {c: (to_numpy(t, c) if c in STAMP_ARRAYS + ("arc",) else
                      t.column(c).to_numpy(zero_copy_only=False)) for c in wanted}
        labels = t.column("is_control").to_numpy(zero_copy_only=False).astype(np.int64)
        if rest is not None:  # the rows left over from the previous file come first
            arrays = {c: np.concatenate([rest[0][c], v]) for c, v in arrays.items()}
            labels = np.concatenate([rest[1], labels])
        n = len(labels) - len(labels) % batch_size
        for a in range(0, n, batch_size):
            yield {c: v[a:a + batch_size] for c, v in arrays.items()}, labels[a:a + batch_size]
        rest = ({c: v[n:] for c, v in arrays.items()}, labels[n:]) if n < len(labels) else None
    if rest is not None:
        yield rest
