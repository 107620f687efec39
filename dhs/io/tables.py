"""Reading input tables (Parquet, CSV or FITS; a file or a folder of files; local or s3://).

Every reader checks the columns it needs before reading data and names the missing column, the
file and the columns present.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dhs.errors import InputTableError  # noqa: F401  (raised here; defined with the other errors)
from dhs.io import storage

PARQUET_EXT = (".parquet", ".pq", ".parq")
CSV_EXT = (".csv", ".csv.gz")
FITS_EXT = (".fits", ".fit", ".fits.gz", ".fit.gz")


def table_format(uri: str) -> str:
    """'parquet', 'csv' or 'fits' from the name of a file, or of the files in a folder."""
    name = storage.normalize(uri).lower()
    for fmt, exts in (("parquet", PARQUET_EXT), ("csv", CSV_EXT), ("fits", FITS_EXT)):
        if name.endswith(exts):
            return fmt
    if storage.isdir(uri):
        for f in _data_files(uri):
            return table_format(f)
        raise InputTableError(f"{uri}: folder holds no .parquet, .csv or .fits files")
    raise InputTableError(f"{uri}: unknown table format; use .parquet, .csv or .fits")


def _data_files(uri: str) -> list[str]:
    base = storage.normalize(uri).rstrip("/")
    out = []
    for f in storage.walk_files(uri):
        rel = f[len(base):].lstrip("/")
        if any(p.startswith((".", "_")) for p in rel.split("/")):
            continue
        if f.lower().endswith(PARQUET_EXT + CSV_EXT + FITS_EXT):
            out.append(f)
    return out


def missing_columns_error(uri: str, what: str, missing: Sequence[str], present: Sequence[str]) -> InputTableError:
    return InputTableError(
        f"{what} table {uri} lacks column(s) {', '.join(map(repr, missing))}; columns present: "
        f"{', '.join(present)}. Fix the table or point cfg.manifest at the right file."
    )


def read_table(uri: str, columns: Sequence[str], *, what: str, optional: Sequence[str] = (),
               true_filter: str | None = None, numeric: Sequence[str] = ()) -> tuple[pa.Table, int]:
    """Read ``columns`` (all required) plus whichever ``optional`` columns exist.

    ``true_filter`` names a boolean column: only rows where it is true come back (pushed into the
    Parquet scan). ``numeric`` columns must hold numbers (text that parses as numbers is cast to
    float64; anything else raises InputTableError naming the file, column and a bad value).
    Returns (table, number of rows before that filter).
    """
    table, n = _read_any(uri, columns, what, optional, true_filter)
    return check_numeric(table, [c for c in numeric if c in table.column_names], uri, what), n


def check_numeric(table: pa.Table, columns: Sequence[str], uri: str, what: str,
                  row_offset: int = 0) -> pa.Table:
    """``table`` with ``columns`` numeric; text columns that parse as numbers are cast to float64
    (``row_offset``: the row number of the table's first row, for the error message)."""
    for name in columns:
        col = table.column(name)
        typ = col.type
        if pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_null(typ):
            continue
        if pa.types.is_dictionary(typ):
            col = col.cast(typ.value_type)
        try:
            cast = col.cast(pa.float64()) if (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)
                                             or pa.types.is_boolean(col.type)) else None
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            cast = None
        if cast is None:
            bad = _first_non_number(col)
            raise InputTableError(f"{what} table {uri}: column {name!r} must hold numbers but is "
                                  f"{typ}" + (f" (e.g. row {bad[0] + row_offset}: {bad[1]!r})" if bad else "")
                                  + "; fix those values in the table")
        table = table.set_column(table.column_names.index(name), name, cast)
    return table


def _first_non_number(col: pa.ChunkedArray) -> tuple[int, Any] | None:
    for i, v in enumerate(col.to_pylist()):
        if v is None:
            continue
        try:
            float(v)
        except (TypeError, ValueError):
            return i, v
    return None


def coordinate_problems(ra: np.ndarray, dec: np.ndarray) -> dict[str, np.ndarray]:
    """Masks of rows whose (ra, dec) in degrees cannot be a sky position, by reason."""
    with np.errstate(invalid="ignore"):
        return {"ra or dec not finite": ~(np.isfinite(ra) & np.isfinite(dec)),
                "|dec| > 90": np.isfinite(dec) & (np.abs(dec) > 90.0),
                "ra outside [0, 360)": np.isfinite(ra) & ((ra < 0.0) | (ra >= 360.0))}


def _read_any(uri: str, columns: Sequence[str], what: str, optional: Sequence[str],
              true_filter: str | None) -> tuple[pa.Table, int]:
    if not storage.exists(uri):
        raise InputTableError(f"{what} table {uri} does not exist; point manifest.{what} at it or set "
                              "paths.data_root, or build the embedded survey's tables with "
                              "`dhs stage=mock_survey`")
    fmt = table_format(uri)
    if fmt == "parquet":
        return _read_parquet(uri, columns, what, optional, true_filter)
    files = _data_files(uri) if storage.isdir(uri) else [uri]
    tables = [(_read_csv if fmt == "csv" else _read_fits)(f, columns, what, optional) for f in files]
    table = pa.concat_tables(tables, promote_options="permissive") if len(tables) > 1 else tables[0]
    n = table.num_rows
    if true_filter:
        table = table.filter(as_bool(table.column(true_filter)))
    return table, n


def as_bool(col: pa.ChunkedArray | pa.Array) -> pa.Array:
    """A flag column as booleans (numbers: nonzero; strings: true/1/t/yes), nulls as false."""
    typ = col.type
    if pa.types.is_boolean(typ):
        out = col
    elif pa.types.is_integer(typ) or pa.types.is_floating(typ):
        out = pc.not_equal(col, 0)
    else:
        out = pc.is_in(pc.utf8_lower(pc.utf8_trim_whitespace(col.cast(pa.string()))),
                       value_set=pa.array(["true", "1", "t", "yes", "y"]))
    return out.fill_null(False)


def _select(present: Sequence[str], columns: Sequence[str], optional: Sequence[str], uri: str,
            what: str) -> list[str]:
    missing = [c for c in columns if c not in present]
    if missing:
        raise missing_columns_error(uri, what, missing, present)
    return list(columns) + [c for c in optional if c in present and c not in columns]


def _read_parquet(uri: str, columns, what, optional, true_filter) -> tuple[pa.Table, int]:
    import pyarrow.dataset as ds

    dset = _parquet_dataset(uri, what)
    cols = _select(dset.schema.names, columns, optional, uri, what)
    n = dset.count_rows()
    flt = None
    if true_filter:
        field = dset.schema.field(true_filter)
        flt = ds.field(true_filter) if pa.types.is_boolean(field.type) else None
    table = dset.to_table(columns=cols, filter=flt, use_threads=True)
    if true_filter and flt is None:
        table = table.filter(as_bool(table.column(true_filter)))
    return _normalize(table), n


def _parquet_dataset(uri: str, what: str) -> Any:
    import pyarrow.dataset as ds

    fsys, path = storage.filesystem(uri)
    try:
        if storage.isdir(uri):
            return ds.dataset(path, filesystem=fsys, format="parquet", partitioning="hive")
        return ds.dataset(path, filesystem=fsys, format="parquet")
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputTableError(f"{what} table {uri} is not readable as Parquet: {exc}") from exc


def _read_csv(uri: str, columns, what, optional) -> pa.Table:
    from pyarrow import csv

    data = storage.read_bytes(uri)
    if uri.lower().endswith(".gz"):
        import gzip

        data = gzip.decompress(data)
    names = data.split(b"\n", 1)[0].decode("utf-8-sig").strip().split(",")
    names = [n.strip().strip('"') for n in names]
    cols = _select(names, columns, optional, uri, what)
    strings = {c: pa.string() for c in cols if c in _STRING_COLUMNS}
    try:
        table = csv.read_csv(io.BytesIO(data), convert_options=csv.ConvertOptions(
            include_columns=cols, column_types=strings))
    except pa.ArrowInvalid as exc:
        raise InputTableError(f"{what} table {uri} is not readable as CSV: {exc}") from exc
    return _normalize(table)


def _read_fits(uri: str, columns, what, optional) -> pa.Table:
    from astropy.io import fits

    try:
        with fits.open(io.BytesIO(storage.read_bytes(uri)), memmap=False) as hdul:
            hdu = next((h for h in hdul if isinstance(h, (fits.BinTableHDU, fits.TableHDU))), None)
            if hdu is None:
                raise InputTableError(f"{what} table {uri} has no table extension")
            present = list(hdu.columns.names)
            cols = _select(present, columns, optional, uri, what)
            arrays = {}
            for c in cols:
                a = np.asarray(hdu.data[c])
                if a.dtype.kind == "S":
                    a = np.char.strip(np.char.decode(a, "utf-8"))
                elif a.dtype.byteorder not in ("=", "|"):
                    a = a.astype(a.dtype.newbyteorder("="))
                arrays[c] = pa.array(a)
    except OSError as exc:
        raise InputTableError(f"{what} table {uri} is not readable as FITS: {exc}") from exc
    return _normalize(pa.table(arrays))


_STRING_COLUMNS = {"brickname", "region_split", "selection_set_id", "selection_strategy",
                   "ranking_mode", "type"}


def _normalize(table: pa.Table) -> pa.Table:
    """Plain string (not dictionary/large) columns for the string-valued inputs."""
    for i, name in enumerate(table.column_names):
        col = table.column(i)
        if name in _STRING_COLUMNS and not pa.types.is_string(col.type):
            if pa.types.is_dictionary(col.type):
                col = col.cast(col.type.value_type)
            table = table.set_column(i, name, col.cast(pa.string()))
    return table


def column_numpy(table: pa.Table, name: str, dtype: Any = np.float64) -> np.ndarray:
    """A column as a NumPy array; nulls become NaN (floats) or raise for integers."""
    col = table.column(name)
    if np.issubdtype(np.dtype(dtype), np.floating):
        return col.cast(pa.float64()).fill_null(np.nan).to_numpy().astype(dtype, copy=False)
    return col.cast(pa.from_numpy_dtype(np.dtype(dtype))).to_numpy()


class TableStream:
    """``iter_table``'s batches: pyarrow Tables of at most ``batch_rows`` rows, in file order.

    ``names`` are the columns every batch has (the union over the files of a folder; a file
    without an optional column gives nulls); ``n_read`` counts the rows before ``true_filter``
    (complete once iterated). Parquet is streamed in record batches; a CSV or FITS file is read
    whole (one file at a time) and cut into batches.
    """

    def __init__(self, uri: str, columns: Sequence[str], batch_rows: int, what: str,
                 optional: Sequence[str], true_filter: str | None, numeric: Sequence[str]):
        if not storage.exists(uri):
            _read_any(uri, columns, what, optional, true_filter)  # raises the missing-table error
        self.uri, self.what, self.batch_rows = uri, what, max(int(batch_rows), 1)
        self.columns, self.optional = tuple(columns), tuple(optional)
        self.true_filter, self.numeric = true_filter, tuple(numeric)
        self.format = table_format(uri)
        self.n_read = 0
        if self.format == "parquet":
            self._dset = _parquet_dataset(uri, what)
            self.names = _select(self._dset.schema.names, columns, optional, uri, what)
        else:
            self.files = _data_files(uri) if storage.isdir(uri) else [uri]
            present: list[str] = []
            for f in self.files:
                for c in _select(_file_columns(f, self.format, what), columns, optional, f, what):
                    if c not in present:
                        present.append(c)
            self.names = [c for c in list(columns) + list(optional) if c in present]

    def count_rows(self) -> int:
        """Rows of the table before the filter (Parquet: from the metadata)."""
        if self.format == "parquet":
            return int(self._dset.count_rows())
        read = _read_csv if self.format == "csv" else _read_fits
        return sum(read(f, self.columns[:1], self.what, ()).num_rows for f in self.files)

    def __iter__(self):
        done = 0  # rows after the filter so far (row numbers of the numeric check)
        for batch in self._raw():
            if self.true_filter and batch.num_rows:
                batch = batch.filter(as_bool(batch.column(self.true_filter)))
            batch = check_numeric(batch, [c for c in self.numeric if c in batch.column_names],
                                  self.uri, self.what, row_offset=done)
            done += batch.num_rows
            yield batch

    def _raw(self):
        if self.format == "parquet":
            self.n_read = self._dset.count_rows()
            for rb in self._parquet_batches():
                if rb.num_rows:
                    yield _normalize(pa.Table.from_batches([rb]))
            return
        for f in self.files:
            table = (_read_csv if self.format == "csv" else _read_fits)(f, self.columns, self.what, self.optional)
            self.n_read += table.num_rows
            for c in self.names:
                if c not in table.column_names:
                    table = table.append_column(c, pa.nulls(table.num_rows))
            table = table.select(self.names)
            for lo in range(0, table.num_rows, self.batch_rows):
                yield table.slice(lo, self.batch_rows)


    def _parquet_batches(self):
        """Record batches file by file, one row group at a time (pyarrow.parquet.ParquetFile),
        with the dataset's column types; through the dataset scanner for a file that lacks a
        column (hive partition keys)."""
        import pyarrow.parquet as pq

        schema = pa.schema([self._dset.schema.field(c) for c in self.names])
        fsys = self._dset.filesystem
        for frag in self._dset.get_fragments():
            phys = frag.physical_schema.names
            if not all(c in phys for c in self.names):
                yield from (b.cast(schema) for b in frag.to_batches(schema=self._dset.schema, columns=self.names,
                                                                    batch_size=self.batch_rows))
                continue
            with fsys.open_input_file(frag.path) as f:
                pf = pq.ParquetFile(f)
                for i in range(pf.num_row_groups):  # one at a time: the reader would read ahead
                    for b in pf.iter_batches(batch_size=self.batch_rows, columns=self.names, row_groups=[i]):
                        yield b.select(self.names).cast(schema)


def iter_table(uri: str, columns: Sequence[str], batch_rows: int, *, what: str,
               optional: Sequence[str] = (), true_filter: str | None = None,
               numeric: Sequence[str] = ()) -> TableStream:
    """``read_table`` in batches of at most ``batch_rows`` rows (same checks, same filter):
    iterate the returned TableStream; its ``n_read`` is the row count before the filter."""
    return TableStream(uri, columns, batch_rows, what, optional, true_filter, numeric)


def _file_columns(uri: str, fmt: str, what: str) -> list[str]:
    """Column names of one CSV (header line) or FITS (first table extension) file."""
    if fmt == "csv":
        with storage.open_input(uri) as f:
            if uri.lower().endswith(".gz"):
                import gzip

                line = gzip.GzipFile(fileobj=f).readline()
            else:
                line = f.read(1 << 16).split(b"\n", 1)[0]
        return [n.strip().strip('"') for n in line.decode("utf-8-sig").strip().split(",")]
    from astropy.io import fits

    try:
        with fits.open(io.BytesIO(storage.read_bytes(uri)), memmap=False) as hdul:
            hdu = next((h for h in hdul if isinstance(h, (fits.BinTableHDU, fits.TableHDU))), None)
            if hdu is None:
                raise InputTableError(f"{what} table {uri} has no table extension")
            return list(hdu.columns.names)
    except OSError as exc:
        raise InputTableError(f"{what} table {uri} is not readable as FITS: {exc}") from exc
