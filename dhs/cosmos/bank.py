"""The COSMOS source bank on disk (HDF5, h5py): writing it and loading it once per process.

Layout of a bank file::

    images       (N, S, S) float32  clean unit-sum templates, flux per pixel at src_pixscale_arcsec;
                                    chunked one template per chunk, gzip + shuffle (lossless)
    ident        (N,) int64         catalog IDENT
    catalog_row  (N,) int64         row of the galaxy in the input catalog
    mag          (N,) float64       catalog MAG (AB)
    hlr_arcsec   (N,) float64       circular half-light radius of the template (arcsec)
    template_snr (N,) float64       template flux over the (correlated) noise left in it
    negative_structure (N,) int8    1 where real negative structure was kept (see cosmos.galaxy)
    flux_radius, zphot, hsc_g, hsc_r, hsc_i, hsc_z, hsc_y   (N,) float64, when the input's
                                    companion table has them (flux_radius in input pixels)
    attrs: format, src_pixscale_arcsec, n_sources, stamp_size, hlr_method, config (JSON),
           input_sha256 (JSON), counts (JSON), psf_handling (JSON: deconvolve_psf, the target
           Gaussian FWHM in arcsec and the method's constants; see dhs.cosmos.hstpsf)

``load_bank(uri)`` is a pure read (file opened read-only, closed after loading) cached per
process by (path, size, modification time), so every worker loads a bank once.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Iterable, Mapping

import numpy as np

from dhs.errors import DhsError

from dhs.io import storage

BANK_FORMAT = "dhs-cosmos-bank/2"

#: Per-galaxy columns: name -> (numpy dtype, unit, meaning).
COLUMNS: dict[str, tuple[str, str, str]] = {
    "ident": ("int64", "", "IDENT of the galaxy in the input RealGalaxyCatalog"),
    "catalog_row": ("int64", "", "row of the galaxy in the input catalog (0-based)"),
    "mag": ("float64", "mag", "catalog MAG (AB) in the catalog's band"),
    "hlr_arcsec": ("float64", "arcsec", "circular half-light radius of the template"),
    "flux_radius": ("float64", "pixel", "companion-table flux_radius (input pixels)"),
    "zphot": ("float64", "", "companion-table photometric redshift ZPHOT"),
    "hsc_g": ("float64", "mag", "companion-table HSC g magnitude"),
    "hsc_r": ("float64", "mag", "companion-table HSC r magnitude"),
    "hsc_i": ("float64", "mag", "companion-table HSC i magnitude"),
    "hsc_z": ("float64", "mag", "companion-table HSC z magnitude"),
    "hsc_y": ("float64", "mag", "companion-table HSC y magnitude"),
    "template_snr": ("float64", "", "template flux over the noise that stays in it (correlated)"),
    "negative_structure": ("int8", "", "1: real negative structure kept in the template"),
}
REQUIRED = ("ident", "catalog_row", "mag", "hlr_arcsec")


class BankError(DhsError, ValueError):
    """A bank file is missing or malformed; the message names the file and the fix."""


@dataclass(frozen=True)
class Bank:
    """A loaded bank: read-only arrays, indexable by template number."""

    images: np.ndarray                 #: (N, S, S) float32 unit-sum templates
    ident: np.ndarray                  #: (N,) int64
    hlr_arcsec: np.ndarray             #: (N,) float64 half-light radius (arcsec)
    pixscale: float                    #: template pixel scale (arcsec/pixel)
    columns: Mapping[str, np.ndarray] = field(default_factory=dict)  #: every 1-d column
    attrs: Mapping[str, Any] = field(default_factory=dict)           #: file attributes
    path: str = ""

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def stamp_size(self) -> int:
        return int(self.images.shape[1])


# ----------------------------------------------------------------------------- writing
def write_bank(path: str, parts: Iterable[Mapping[str, np.ndarray]], *, stamp_size: int,
               attrs: Mapping[str, Any], limit: int | None = None) -> int:
    """Write a bank to the local file ``path`` from parts (dicts with ``images`` and columns),
    appending each part to resizable datasets; at most ``limit`` galaxies. Returns N.

    The file holds no timestamps (``track_times=False``), so equal inputs give equal bytes.
    """
    import h5py

    n = 0
    with h5py.File(path, "w", track_order=False) as h5:
        images = h5.create_dataset(
            "images", shape=(0, stamp_size, stamp_size), maxshape=(None, stamp_size, stamp_size),
            dtype="float32", chunks=(1, stamp_size, stamp_size), compression="gzip",
            compression_opts=4, shuffle=True, track_times=False)
        images.attrs["unit"] = "fraction of total flux per pixel (unit sum)"
        cols: dict[str, Any] = {}
        for part in parts:
            k = len(part["images"])
            if limit is not None:
                k = min(k, limit - n)
            if k <= 0:
                break
            if not cols:
                for name, (dtype, unit, doc) in COLUMNS.items():
                    if name in part:
                        cols[name] = h5.create_dataset(
                            name, shape=(0,), maxshape=(None,), dtype=dtype, chunks=(4096,),
                            compression="gzip", compression_opts=4, track_times=False)
                        cols[name].attrs["unit"] = unit
                        cols[name].attrs["doc"] = doc
            images.resize(n + k, axis=0)
            images[n:n + k] = np.asarray(part["images"][:k], dtype=np.float32)
            for name, ds in cols.items():
                ds.resize(n + k, axis=0)
                ds[n:n + k] = np.asarray(part[name][:k], dtype=ds.dtype)
            n += k
        for name in REQUIRED:
            if name not in h5:
                h5.create_dataset(name, shape=(0,), dtype=COLUMNS[name][0], track_times=False)
        for key, value in attrs.items():
            h5.attrs[key] = value
        h5.attrs["n_sources"] = n
        h5.attrs["stamp_size"] = stamp_size
        h5.attrs["format"] = BANK_FORMAT
    return n


# ----------------------------------------------------------------------------- reading
_LOCK = threading.Lock()


def _local_path(uri: str) -> tuple[str, tuple]:
    """A local path for ``uri`` (s3:// objects are downloaded once) and its cache key."""
    uri = storage.normalize(uri)
    if not storage.exists(uri):
        raise BankError(f"COSMOS bank {uri} does not exist; build it with "
                        f"`dhs stage=cosmos_bank` (paths.cosmos_bank={uri}).")
    if not storage.is_s3(uri):
        st = os.stat(uri)
        return os.path.abspath(uri), (os.path.abspath(uri), st.st_size, st.st_mtime_ns)
    fs, inner = storage.filesystem(uri)
    info = fs.get_file_info(inner)
    size, mtime = int(info.size or 0), int(info.mtime_ns or 0)
    tag = hashlib.blake2b(f"{uri}:{size}:{mtime}".encode(), digest_size=10).hexdigest()
    folder = os.path.join(tempfile.gettempdir(), "dhs-bank-cache")
    local = os.path.join(folder, f"{tag}.h5")
    if not (os.path.exists(local) and os.path.getsize(local) == size):
        os.makedirs(folder, exist_ok=True)
        tmp = f"{local}.{os.getpid()}.{threading.get_ident()}.tmp"
        with storage.open_input(uri) as src, open(tmp, "wb") as dst:
            while True:
                block = src.read(8 * 1024 * 1024)
                if not block:
                    break
                dst.write(block)
        os.replace(tmp, local)
    return local, (uri, size, mtime)


def _attr(value: Any) -> Any:
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, np.generic):
        value = value.item()
    return value


@lru_cache(maxsize=4)
def _load(path: str, key: tuple) -> Bank:
    import h5py

    try:
        h5 = h5py.File(path, "r")
    except OSError as exc:
        raise BankError(f"{key[0]} is not a readable HDF5 file ({exc}); rebuild it with "
                        f"`dhs stage=cosmos_bank force=true`.") from exc
    with h5:
        missing = [n for n in ("images",) + REQUIRED if n not in h5]
        if missing or "src_pixscale_arcsec" not in h5.attrs:
            raise BankError(f"{key[0]} is not a COSMOS bank (missing "
                            f"{', '.join(missing) or 'attribute src_pixscale_arcsec'}); rebuild "
                            f"it with `dhs stage=cosmos_bank force=true`.")
        images = h5["images"][...]
        columns = {name: h5[name][...] for name in h5 if name != "images"
                   and isinstance(h5[name], h5py.Dataset) and h5[name].ndim == 1}
        attrs = {k: _attr(v) for k, v in h5.attrs.items()}
    bad = [n for n, c in columns.items() if len(c) != len(images)]
    if images.ndim == 3 and len(images) == 0:
        raise BankError(f"{key[0]} holds no galaxies; rebuild it with `dhs stage=cosmos_bank "
                        "force=true` (check cosmos_bank.hlr_min_arcsec/hlr_max_arcsec and the input).")
    if images.ndim != 3 or bad:
        raise BankError(f"{key[0]}: images {images.shape} and columns {bad} disagree in length; "
                        f"rebuild it with `dhs stage=cosmos_bank force=true`.")
    for arr in [images, *columns.values()]:
        arr.setflags(write=False)
    return Bank(images=images, ident=columns["ident"], hlr_arcsec=columns["hlr_arcsec"],
                pixscale=float(attrs["src_pixscale_arcsec"]), columns=columns, attrs=attrs,
                path=key[0])


def check_bank(uri: str, sample: int = 64) -> int:
    """Open the bank at ``uri`` and check it without loading every image: the datasets and
    attribute a bank has, matching lengths, at least one galaxy, finite positive half-light radii
    and finite templates (the first ``sample``). Returns the number of galaxies; raises BankError."""
    import h5py

    with _LOCK:
        path, key = _local_path(str(uri))
    fix = "rebuild it with `dhs stage=cosmos_bank force=true`"
    try:
        h5 = h5py.File(path, "r")
    except OSError as exc:
        raise BankError(f"{key[0]} is not a readable HDF5 file ({exc}); {fix}.") from exc
    with h5:
        missing = [n for n in ("images",) + REQUIRED if n not in h5]
        if missing or "src_pixscale_arcsec" not in h5.attrs:
            raise BankError(f"{key[0]} is not a COSMOS bank (missing "
                            f"{', '.join(missing) or 'attribute src_pixscale_arcsec'}); {fix}.")
        images = h5["images"]
        n = int(images.shape[0]) if images.ndim == 3 else -1
        if n < 0 or any(h5[c].shape[:1] != (n,) for c in REQUIRED):
            raise BankError(f"{key[0]}: images {images.shape} and its columns disagree in length; {fix}.")
        if n == 0:
            raise BankError(f"{key[0]} holds no galaxies; {fix} (check cosmos_bank.hlr_min_arcsec/"
                            "hlr_max_arcsec and the input).")
        hlr = np.asarray(h5["hlr_arcsec"][...], float)
        head = np.asarray(images[: min(n, sample)])
    if not (np.isfinite(hlr).all() and (hlr > 0).all()):
        raise BankError(f"{key[0]}: {int((~(np.isfinite(hlr) & (hlr > 0))).sum())} galaxies have a "
                        f"non-finite or non-positive hlr_arcsec; {fix}.")
    if not np.isfinite(head).all():
        raise BankError(f"{key[0]}: templates hold non-finite pixels; {fix}.")
    return n


def read_attrs(uri: str) -> dict:
    """The file attributes of the bank at ``uri`` (no dataset is read); raises BankError."""
    import h5py

    with _LOCK:
        path, key = _local_path(str(uri))
    try:
        with h5py.File(path, "r") as h5:
            return {k: _attr(v) for k, v in h5.attrs.items()}
    except OSError as exc:
        raise BankError(f"{key[0]} is not a readable HDF5 file ({exc}); rebuild it with "
                        f"`dhs stage=cosmos_bank force=true`.") from exc


def load_bank(uri: str) -> Bank:
    """Load the bank at ``uri`` (local path or s3://) once per process; arrays are read-only."""
    with _LOCK:
        path, key = _local_path(str(uri))
        return _load(path, key)


def bank_config(bank: Bank) -> dict:
    """The builder's resolved settings stored in the bank (``config`` attribute)."""
    return json.loads(bank.attrs.get("config", "{}"))


load_bank.cache_clear = _load.cache_clear  # type: ignore[attr-defined]
