"""What made a COSMOS bank: its fingerprint, stored in the bank (attribute ``fingerprint``).

The fingerprint (dhs.io.shards.Fingerprint) holds the identity of the input, the settings that
decide the bank's bytes, and the bank format:

- ``inputs``: a checksum over the catalog and its companion (sha256 of their bytes) and every
  image, noise and (when the build removes the HST PSF) PSF file the catalog names
  (``storage.content_id``: the sha256 of a local file's bytes; size and modification time of an
  s3:// object); a missing file counts as missing;
- ``settings``: every cosmos_bank setting, the input's location and the catalog's name (what the
  bank's ``config`` attribute records, so an equal fingerprint means a true record);
- ``schema``: the bank format (``BANK_FORMAT``) and the half-light-radius method.

stage=cosmos_bank keeps an existing bank only when its stored fingerprint equals the one the
current input and settings give; otherwise it rebuilds it (and prints what changed).
"""

from __future__ import annotations

import json
from typing import Any, Optional

from dhs.cosmos.catalog import RealGalaxyCatalog
from dhs.io import storage
from dhs.io.shards import Fingerprint, canonical_json

ATTR = "fingerprint"


def file_names(cat: RealGalaxyCatalog, psf: bool) -> list[str]:
    """The image and noise files the catalog names, and with ``psf`` its PSF files (sorted,
    without repeats)."""
    c = cat.columns
    names: set[str] = set()
    for column in ("GAL_FILENAME", "NOISE_FILENAME") + (("PSF_FILENAME",) if psf else ()):
        names |= {str(n).strip() for n in c.get(column, ())}
    return sorted(n for n in names if n)


def inputs_digest(root: str, cat: RealGalaxyCatalog, psf: bool) -> str:
    """Checksum of the catalog files' bytes and of the identity of every file they name (the PSF
    files only when ``psf``: the build reads them only to remove the HST PSF)."""
    import hashlib

    ids = {}
    for name in file_names(cat, psf):
        uri = storage.join(root, name)
        ids[name] = storage.content_id(uri) if storage.exists(uri) else "missing"
    blob = canonical_json({"catalog": dict(sorted(cat.sha256.items())), "files": ids})
    return hashlib.blake2b(blob.encode(), digest_size=16).hexdigest()


def bank_fingerprint(root: str, cat: RealGalaxyCatalog, record: dict, schema: str, *, psf: bool) -> Fingerprint:
    """The fingerprint of a bank built from ``cat`` (in folder ``root``) with the settings
    ``record`` (the bank's ``config`` attribute) in format ``schema``; ``psf``: the build reads
    the catalog's PSF files."""
    return Fingerprint(inputs_digest(root, cat, psf), settings=record, schema=schema)


def stored(bank_uri: str) -> Optional[dict]:
    """The fingerprint stored in the bank at ``bank_uri`` (None: none, or not a readable bank)."""
    from dhs.cosmos.bank import BankError, read_attrs

    try:
        value: Any = read_attrs(bank_uri).get(ATTR)
    except BankError:
        return None
    if value is None:
        return None
    try:
        fp = json.loads(str(value))
    except ValueError:
        return None
    return fp if isinstance(fp, dict) else None
