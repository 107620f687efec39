"""Reading a GalSim RealGalaxyCatalog (the COSMOS 25.2 training-sample format) from a folder
or an ``s3://`` prefix through dhs.io.storage.

A RealGalaxyCatalog folder holds the catalog (a FITS table with IDENT, GAL_FILENAME, GAL_HDU,
PIXEL_SCALE, NOISE_MEAN, NOISE_VARIANCE, NOISE_FILENAME, ...), the image files it names (one
HDU per galaxy), PSF and noise files, and usually a companion ``<catalog>_fits.fits`` table
(flux_radius in pixels, ZPHOT, HSC magnitudes). The catalog, the companion, the image files and
the noise correlation-function images named by NOISE_FILENAME are read, and the PSF images named
by PSF_FILENAME / PSF_HDU when the HST PSF is removed (``cosmos_bank.deconvolve_psf``).
Image files are opened lazily (one HDU at a time), a few at a time, and hashed (sha256) once.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tempfile
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from dhs.errors import ConfigError
from dhs.cosmos.galaxy import GalaxyRejected
from dhs.io import storage
from dhs.cosmos.settings import EMBEDDED, embedded_root  # noqa: F401  (part of this module's interface)

REQUIRED_COLUMNS = ("IDENT", "GAL_FILENAME", "GAL_HDU", "PIXEL_SCALE", "NOISE_MEAN")
OPTIONAL_COLUMNS = ("MAG", "NOISE_VARIANCE", "NOISE_FILENAME", "PSF_FILENAME", "PSF_HDU")
#: Companion-table columns copied into the bank: companion name -> bank column name.
COMPANION_COLUMNS = {"flux_radius": "flux_radius", "ZPHOT": "zphot", "HSC_g": "hsc_g",
                     "HSC_r": "hsc_r", "HSC_i": "hsc_i", "HSC_z": "hsc_z", "HSC_y": "hsc_y"}
_HEAD_BYTES = 256 * 1024


class CatalogError(ConfigError):
    """The input catalog cannot be used as configured; the message names file, value and fix."""


def _has_catalog_columns(uri: str) -> bool:
    """True if extension 1 of the FITS file is a table with GAL_FILENAME and GAL_HDU."""
    from astropy.io import fits

    try:
        with storage.open_input(uri) as f:
            head = f.read(_HEAD_BYTES)  # the primary and first extension headers
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with fits.open(io.BytesIO(head), lazy_load_hdus=True) as hdul:
                names = {c.upper() for c in hdul[1].columns.names}
    except Exception:
        return False
    return {"GAL_FILENAME", "GAL_HDU"} <= names


def find_catalog(root: str, name: Optional[str] = None) -> str:
    """URI of the RealGalaxyCatalog in ``root``: ``name`` if given, else the one FITS table
    with GAL_FILENAME/GAL_HDU columns (``*_fits.fits`` companions and image files excluded)."""
    if name:
        uri = storage.join(root, name)
        if not storage.exists(uri):
            raise CatalogError(f"cosmos_bank.catalog_name={name!r}: {uri} does not exist. "
                               f"FITS files there: {_fits_names(root) or 'none'}.")
        return uri
    names = [n for n in _fits_names(root) if not n.endswith("_fits.fits")]
    likely = [n for n in names if "catalog" in n.lower()] or names
    found = [n for n in likely if _has_catalog_columns(storage.join(root, n))]
    if len(found) == 1:
        return storage.join(root, found[0])
    if not found:
        raise CatalogError(f"no RealGalaxyCatalog (FITS table with GAL_FILENAME and GAL_HDU) in "
                           f"{root}; set cosmos_bank.input to the catalog's folder.")
    raise CatalogError(f"{root} holds {len(found)} RealGalaxyCatalogs ({', '.join(found)}); "
                       f"choose one with cosmos_bank.catalog_name=<file name>.")


def _fits_names(root: str) -> list[str]:
    return [n for n in storage.listdir(root) if n.lower().endswith((".fits", ".fits.gz"))]


def _columns(table) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for name in table.columns.names:
        col = np.asarray(table[name])
        if col.dtype.kind in "SU":
            col = np.char.strip(col.astype(str))
        elif col.dtype.kind in "iuf":
            col = col.astype(col.dtype.newbyteorder("="))
        out[name] = col
    return out


def _read_table(uri: str) -> tuple[dict[str, np.ndarray], str]:
    """Columns of extension 1 and the file's sha256."""
    from astropy.io import fits

    data = storage.read_bytes(uri)
    try:
        with fits.open(io.BytesIO(data)) as hdul:
            cols = _columns(hdul[1].data)
    except Exception as exc:
        raise CatalogError(f"{uri}: cannot read a FITS table from extension 1 ({exc}).") from exc
    return cols, hashlib.sha256(data).hexdigest()


@dataclass
class RealGalaxyCatalog:
    """A catalog's columns (catalog order), companion columns aligned by IDENT, and checksums."""

    root: str
    catalog_uri: str
    columns: dict[str, np.ndarray]
    companion_uri: Optional[str] = None
    companion: dict[str, np.ndarray] = field(default_factory=dict)
    sha256: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.columns["IDENT"])


def read_catalog(root: str, name: Optional[str] = None) -> RealGalaxyCatalog:
    """Read the catalog (and its ``_fits`` companion, if present) from ``root``."""
    uri = find_catalog(root, name)
    cols, sha = _read_table(uri)
    upper = {k.upper(): k for k in cols}
    missing = [c for c in REQUIRED_COLUMNS if c not in upper]
    if missing:
        raise CatalogError(f"{uri}: missing column(s) {', '.join(missing)}; a RealGalaxyCatalog "
                           f"needs {', '.join(REQUIRED_COLUMNS)}.")
    cols = {c: cols[upper[c]] for c in upper if c in REQUIRED_COLUMNS + OPTIONAL_COLUMNS}
    cat = RealGalaxyCatalog(root=root, catalog_uri=uri, columns=cols,
                            sha256={storage.basename(uri): sha})
    base = storage.basename(uri)
    comp_name = base[: -len(".fits")] + "_fits.fits" if base.endswith(".fits") else None
    if comp_name and storage.exists(storage.join(root, comp_name)):
        comp_uri = storage.join(root, comp_name)
        comp, comp_sha = _read_table(comp_uri)
        cat.companion_uri = comp_uri
        cat.sha256[comp_name] = comp_sha
        cat.companion = _align_companion(cat.columns["IDENT"], comp)
    return cat


def _align_companion(ident: np.ndarray, comp: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Companion columns in catalog order (matched on IDENT; NaN where absent)."""
    lower = {k.lower(): k for k in comp}
    comp_ident = comp.get(lower.get("ident", ""))
    if comp_ident is not None:
        where = {int(v): i for i, v in enumerate(comp_ident)}
        rows = np.array([where.get(int(v), -1) for v in ident])
    elif len(next(iter(comp.values()), [])) == len(ident):
        rows = np.arange(len(ident))
    else:
        return {}
    out: dict[str, np.ndarray] = {}
    for src, dst in COMPANION_COLUMNS.items():
        key = lower.get(src.lower())
        if key is None:
            continue
        vals = np.asarray(comp[key], dtype=np.float64)
        out[dst] = np.where(rows >= 0, vals[np.clip(rows, 0, None)], np.nan)
    return out


def check_pixel_scale(cat: RealGalaxyCatalog, expected_arcsec: float) -> None:
    """Raise CatalogError if any PIXEL_SCALE differs from the configured one."""
    scales = np.asarray(cat.columns["PIXEL_SCALE"], dtype=np.float64)
    bad = ~np.isclose(scales, expected_arcsec, rtol=1e-6, atol=0.0)
    if bad.any():
        found = sorted({float(s) for s in scales[bad]})
        raise CatalogError(
            f"{cat.catalog_uri}: PIXEL_SCALE {', '.join(f'{s:g}' for s in found)} arcsec differs "
            f"from cosmos_bank.pixscale_arcsec={expected_arcsec:g} ({int(bad.sum())} of "
            f"{len(scales)} rows). Set cosmos_bank.pixscale_arcsec to the catalog's pixel scale "
            f"or use a catalog at {expected_arcsec:g} arcsec/pixel.")


class ImageFiles:
    """Open image files of one catalog (at most ``max_open`` at a time) and their sha256.

    Local files are memory-mapped; s3:// files are downloaded once into a temporary folder
    (hashed on the way) and removed when evicted or on close().
    """

    def __init__(self, root: str, max_open: int = 4) -> None:
        self.root = root
        self.max_open = max_open
        self.sha256: dict[str, str] = {}
        self._open: OrderedDict[str, tuple] = OrderedDict()
        self._tmp: Optional[str] = None
        self._cf: dict[str, np.ndarray] = {}

    def _local_copy(self, name: str, uri: str) -> str:
        if not storage.is_s3(uri):
            if name not in self.sha256:
                self.sha256[name] = storage.sha256(uri)
            return os.path.abspath(uri)
        if self._tmp is None:
            self._tmp = tempfile.mkdtemp(prefix="dhs-cosmos-")
        path = os.path.join(self._tmp, name.replace("/", "_"))
        self.sha256[name] = storage.sha256(uri, copy_to=path)
        return path

    def _hdul(self, name: str):
        from astropy.io import fits

        if name in self._open:
            self._open.move_to_end(name)
            return self._open[name][0]
        uri = storage.join(self.root, name)
        if not storage.exists(uri):
            raise GalaxyRejected("missing_file", uri)
        path = self._local_copy(name, uri)
        hdul = fits.open(path, memmap=True, lazy_load_hdus=True)
        self._open[name] = (hdul, path if storage.is_s3(uri) else None)
        while len(self._open) > self.max_open:
            self._evict(next(iter(self._open)))
        return hdul

    def _evict(self, name: str) -> None:
        hdul, tmp = self._open.pop(name)
        hdul.close()
        if tmp and os.path.exists(tmp):
            os.remove(tmp)

    def stamp(self, name: str, hdu: int) -> np.ndarray:
        """Pixels of HDU ``hdu`` of image file ``name`` (float64); raises GalaxyRejected."""
        hdul = self._hdul(name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                if hdu < 0:
                    raise IndexError(hdu)
                data = hdul[hdu].data
            except IndexError as exc:
                raise GalaxyRejected("missing_hdu", f"{name}[{hdu}]") from exc
            except Exception as exc:  # truncated or corrupted file
                raise GalaxyRejected("unreadable_hdu", f"{name}[{hdu}]: {exc}") from exc
            if data is None or np.ndim(data) != 2 or 0 in np.shape(data):
                raise GalaxyRejected("empty_stamp", f"{name}[{hdu}] holds no 2-d image")
            try:
                return np.array(data, dtype=np.float64)
            except Exception as exc:
                raise GalaxyRejected("unreadable_hdu", f"{name}[{hdu}]: {exc}") from exc

    def correlation(self, name: str) -> np.ndarray:
        """The noise correlation-function image ``name`` (NOISE_FILENAME: GalSim's format, the
        first HDU with a 2-d image), read once; raises CatalogError if it is missing."""
        if name not in self._cf:
            try:
                hdul = self._hdul(name)
            except GalaxyRejected as exc:
                raise CatalogError(f"{storage.join(self.root, name)}: the noise correlation "
                                   f"file named by NOISE_FILENAME is missing; copy it next to "
                                   f"the catalog or remove the NOISE_FILENAME column (white "
                                   f"noise is then assumed).") from exc
            data = next((h.data for h in hdul if h.data is not None and np.ndim(h.data) == 2),
                        None)
            if data is None:
                raise CatalogError(f"{storage.join(self.root, name)}: no 2-d noise correlation "
                                   f"image in the file named by NOISE_FILENAME.")
            self._cf[name] = np.array(data, dtype=np.float64)
        return self._cf[name]

    def close(self) -> None:
        for name in list(self._open):
            self._evict(name)
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __enter__(self) -> "ImageFiles":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
