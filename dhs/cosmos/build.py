"""Build the COSMOS source bank: RealGalaxyCatalog -> clean unit-sum templates -> HDF5.

The catalog is processed in chunks of ``chunk`` rows, in catalog order. Each finished chunk is
committed atomically as a part file (``part-NNNNNN.npz``: its templates, columns, counts and
the checksums of the image files it read) in the hidden folder ``.<bank name>.parts`` beside the
bank, so at most one chunk of templates is in memory. A killed build restarts from the first
missing part; parts are reused only if ``_build.json`` there holds the same build key (the
bank's fingerprint, dhs.cosmos.fingerprint: settings plus the checksums of the catalog and the
files it names), otherwise they are discarded. When every chunk is done the parts are
streamed into the bank (a temporary name, renamed at the end; uploaded for s3://) and the
parts folder is removed. Equal inputs and settings give a byte-identical bank.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import time
from dataclasses import asdict
from typing import Any, Iterator, Mapping

import numpy as np

from dhs.errors import ConfigError
from dhs.cosmos.catalog import CatalogError, ImageFiles, RealGalaxyCatalog, check_pixel_scale, read_catalog
from dhs.cosmos import hstpsf
from dhs.cosmos.fingerprint import ATTR as FINGERPRINT_ATTR
from dhs.cosmos.fingerprint import bank_fingerprint
from dhs.cosmos.galaxy import REASONS, GalaxyRejected, prepare_template
from dhs.io import storage
from dhs.io.shards import Fingerprint
from dhs.cosmos.bank import BANK_FORMAT, write_bank
from dhs.cosmos.settings import BankSettings, input_root  # noqa: F401  (numpy-free, read by stage=plan)

HLR_METHOD = ("circular half-light radius about the light centroid of the clean template "
              "(central photutils segment of the stamp smoothed by smooth_sigma_pix above "
              "detect_nsigma times its correlated noise, dilated, neighbours and noise pixels "
              "zeroed, denoised, or with deconvolve_psf the HST PSF replaced by a Gaussian of "
              "psf_target_fwhm_arcsec; see dhs.cosmos.galaxy): radius enclosing half of its "
              "flux, linearly interpolated between pixel-centre radii")
BUILD_FILE = "_build.json"
#: The bank format and the half-light-radius method (the ``schema`` of the bank's fingerprint).
FORMAT = f"{BANK_FORMAT};hlr-" + hashlib.blake2b(HLR_METHOD.encode(), digest_size=4).hexdigest()


def parts_dir(bank_uri: str) -> str:
    """Hidden folder beside the bank that holds committed chunks of an unfinished build."""
    return storage.join(storage.dirname(bank_uri), f".{storage.basename(bank_uri)}.parts")


def check_settings(s: Mapping[str, Any]) -> None:
    """Reject unusable cosmos_bank settings before any work."""
    def bad(key: str, reason: str) -> None:
        raise ConfigError(f"cosmos_bank.{key}={s.get(key)!r} is invalid: {reason}. "
                          f"Fix it in conf/config.yaml or override it, e.g. "
                          f"`dhs stage=cosmos_bank cosmos_bank.{key}=...`.")

    if not (isinstance(s["stamp_size"], int) and s["stamp_size"] >= 8):
        bad("stamp_size", "must be an integer >= 8 (pixels)")
    if not s["chunk"] >= 1:
        bad("chunk", "must be >= 1 (galaxies per chunk)")
    if not 0 <= s["hlr_min_arcsec"] < s["hlr_max_arcsec"]:
        bad("hlr_min_arcsec", f"need 0 <= hlr_min_arcsec < hlr_max_arcsec={s['hlr_max_arcsec']}")
    if s.get("max_galaxies") is not None and not s["max_galaxies"] >= 1:
        bad("max_galaxies", "must be >= 1 or null (no limit)")
    for key in ("smooth_sigma_pix", "detect_nsigma", "pixscale_arcsec"):
        if not s[key] > 0:
            bad(key, "must be > 0")
    if not s["min_template_snr"] >= 0:
        bad("min_template_snr", "must be >= 0 (0 keeps every detected galaxy)")
    if not isinstance(s["deconvolve_psf"], bool):
        bad("deconvolve_psf", "must be true or false")
    if not 0 < s["psf_target_fwhm_arcsec"] <= 1.0:
        bad("psf_target_fwhm_arcsec", "must be in (0, 1] arcsec (default 0.07)")


def check_psf_columns(cat: RealGalaxyCatalog, s: Mapping[str, Any]) -> None:
    """With deconvolve_psf the catalog must name each galaxy's PSF image."""
    missing = [k for k in ("PSF_FILENAME", "PSF_HDU") if k not in cat.columns]
    if s["deconvolve_psf"] and missing:
        raise CatalogError(f"{cat.catalog_uri}: no {' or '.join(missing)} column, so the HST PSF "
                           f"cannot be removed; add the PSF columns or set "
                           f"cosmos_bank.deconvolve_psf=false (the HST PSF stays in the templates).")


def psf_record(s: Mapping[str, Any]) -> dict:
    """How the HST PSF was handled (bank attribute ``psf_handling`` and part of the build key)."""
    if not s["deconvolve_psf"]:
        return {"deconvolve_psf": False, "method": "HST PSF left in the templates"}
    return {"deconvolve_psf": True, "target_fwhm_arcsec": float(s["psf_target_fwhm_arcsec"]),
            "method": "Wiener deconvolution by the catalog PSF to a circular Gaussian target, "
                      "tapered to 0 at the mask edge, flux-conserving local positivity (dhs.cosmos.hstpsf)",
            "wiener_eps": hstpsf.WIENER_EPS, "positivity_sigma_pix": hstpsf.POSITIVITY_SIGMA_PIX,
            "edge_taper_sigma_pix": hstpsf.TAPER_SIGMA_PIX}


def _settings_record(s: Mapping[str, Any], label: str, cat: RealGalaxyCatalog) -> dict:
    rec = {k: s[k] for k in sorted(s)}
    rec["input"] = label
    rec["catalog"] = storage.basename(cat.catalog_uri)
    rec["format"] = BANK_FORMAT
    rec["psf_handling"] = psf_record(s)
    return rec


def _prepare(settings: BankSettings) -> tuple[dict, str, str, RealGalaxyCatalog, dict, Fingerprint]:
    """(settings dict, input root, its label, catalog, settings record, fingerprint), settings
    checked and the catalog read."""
    s = asdict(settings)
    check_settings(s)
    root, label = input_root(settings)
    cat = read_catalog(root, s.get("catalog_name"))
    check_pixel_scale(cat, float(s["pixscale_arcsec"]))
    check_psf_columns(cat, s)
    record = _settings_record(s, label, cat)
    return s, root, label, cat, record, bank_fingerprint(root, cat, record, FORMAT, psf=bool(s["deconvolve_psf"]))


def current_fingerprint(settings: BankSettings) -> Fingerprint:
    """The fingerprint a bank built now from ``settings`` would store (dhs.cosmos.fingerprint)."""
    return _prepare(settings)[-1]


def _empty_counts() -> dict:
    return {"read": 0, "kept": 0, "hlr_out_of_range": 0, "skipped": {r: 0 for r in REASONS}}


def _add_counts(total: dict, part: Mapping[str, Any]) -> None:
    for k in ("read", "kept", "hlr_out_of_range"):
        total[k] += int(part[k])
    for r, n in part["skipped"].items():
        total["skipped"][r] = total["skipped"].get(r, 0) + int(n)


def process_rows(cat: RealGalaxyCatalog, files: ImageFiles, rows: range,
                 s: Mapping[str, Any]) -> dict:
    """Templates and columns of the kept galaxies among catalog ``rows``, plus counts."""
    size, scale = int(s["stamp_size"]), float(s["pixscale_arcsec"])
    c = cat.columns
    counts = _empty_counts()
    images, kept_rows, hlrs = [], [], []
    touched: set[str] = set()
    snrs, negative = [], []
    for row in rows:
        counts["read"] += 1
        name = str(c["GAL_FILENAME"][row])
        noise_file = str(c["NOISE_FILENAME"][row]).strip() if "NOISE_FILENAME" in c else ""
        cf = files.correlation(noise_file) if noise_file else None
        psf_name = str(c["PSF_FILENAME"][row]).strip() if s["deconvolve_psf"] else ""
        try:
            psf = _psf(files, psf_name, int(c["PSF_HDU"][row])) if psf_name else None
            stamp = files.stamp(name, int(c["GAL_HDU"][row]))
            variance = float(c["NOISE_VARIANCE"][row]) if "NOISE_VARIANCE" in c else float("nan")
            t = prepare_template(stamp, float(c["NOISE_MEAN"][row]), variance, size,
                                 float(s["smooth_sigma_pix"]), float(s["detect_nsigma"]),
                                 noise_correlation=cf, min_snr=float(s["min_template_snr"]),
                                 psf=psf, target_fwhm_pix=float(s["psf_target_fwhm_arcsec"]) / scale)
        except GalaxyRejected as rej:
            counts["skipped"][rej.reason] += 1
            continue
        finally:
            touched.update(n for n in (name, noise_file, psf_name) if n in files.sha256)
        hlr = t.hlr_pix * scale
        if not s["hlr_min_arcsec"] <= hlr <= s["hlr_max_arcsec"]:
            counts["hlr_out_of_range"] += 1
            continue
        counts["kept"] += 1
        images.append(t.image)
        kept_rows.append(row)
        hlrs.append(hlr)
        snrs.append(t.snr)
        negative.append(t.negative_structure)
    idx = np.asarray(kept_rows, dtype=np.int64)
    part: dict[str, Any] = {
        "images": np.stack(images) if images else np.zeros((0, size, size), np.float32),
        "ident": np.asarray(c["IDENT"][idx], dtype=np.int64),
        "catalog_row": idx,
        "mag": np.asarray(c["MAG"][idx], dtype=np.float64) if "MAG" in c
        else np.full(len(idx), np.nan),
        "hlr_arcsec": np.asarray(hlrs, dtype=np.float64),
        "template_snr": np.asarray(snrs, dtype=np.float64),
        "negative_structure": np.asarray(negative, dtype=np.int8),
    }
    for column, values in cat.companion.items():
        part[column] = np.asarray(values[idx], dtype=np.float64)
    part["counts"] = counts
    part["sha256"] = {n: files.sha256[n] for n in sorted(touched) if n in files.sha256}
    return part


def _psf(files: ImageFiles, name: str, hdu: int) -> np.ndarray:
    """The unit-sum PSF image of one galaxy; GalaxyRejected("missing_psf") if unusable."""
    try:
        return hstpsf.unit_psf(files.stamp(name, hdu))
    except (GalaxyRejected, ValueError) as exc:
        raise GalaxyRejected("missing_psf", f"{name}[{hdu}]: {exc}") from exc


def _save_part(uri: str, part: Mapping[str, Any]) -> None:
    arrays = {k: v for k, v in part.items() if isinstance(v, np.ndarray)}
    meta = json.dumps({"counts": part["counts"], "sha256": part["sha256"]}, sort_keys=True)
    buf = io.BytesIO()
    np.savez(buf, meta=np.array(meta), **arrays)
    storage.write_bytes_atomic(uri, buf.getvalue())


def _load_part(uri: str, meta_only: bool = False) -> dict:
    """A committed part: its arrays (unless ``meta_only``), counts and checksums."""
    with np.load(io.BytesIO(storage.read_bytes(uri))) as z:
        part = {} if meta_only else {k: z[k] for k in z.files if k != "meta"}
        part.update(json.loads(str(z["meta"])))
    return part


def _prepare_parts(pdir: str, key: str, force: bool) -> None:
    """Keep the parts of an unfinished build with the same key; otherwise start afresh."""
    marker = storage.join(pdir, BUILD_FILE)
    if storage.exists(pdir) and not force and storage.exists(marker):
        if json.loads(storage.read_text(marker)).get("key") == key:
            return
    if storage.exists(pdir):
        storage.remove(pdir)
    storage.write_text_atomic(marker, json.dumps({"key": key}))


def _publish(local: str, bank_uri: str) -> None:
    if storage.is_s3(bank_uri):
        with open(local, "rb") as src, storage.open_output(bank_uri) as dst:
            while block := src.read(8 * 1024 * 1024):
                dst.write(block)
        os.remove(local)
    else:
        os.replace(local, bank_uri)


def build_bank(settings: BankSettings, bank_uri: str, *, console: Any = None,
               force: bool = False) -> dict:
    """Build (or finish) the bank at ``bank_uri``; returns the summary (counts, bytes, time).

    ``max_galaxies`` caps the number of templates written (the first kept, in catalog order).
    """
    from dhs.console import progress

    t0 = time.time()
    s, root, label, cat, record, fp = _prepare(settings)
    pdir = parts_dir(bank_uri)
    _prepare_parts(pdir, fp.digest, force)

    n, chunk, limit = len(cat), int(s["chunk"]), s.get("max_galaxies")
    totals, sha = _empty_counts(), dict(cat.sha256)
    part_uris: list[str] = []
    resumed_rows = 0
    with ImageFiles(root) as files, progress(console) as bar:
        task = bar.add_task("cosmos bank: galaxies", total=n)
        for start in range(0, n, chunk):
            if limit is not None and totals["kept"] >= limit:
                break
            rows = range(start, min(start + chunk, n))
            uri = storage.join(pdir, f"part-{start // chunk:06d}.npz")
            if storage.exists(uri):
                part = _load_part(uri, meta_only=True)
                resumed_rows += len(rows)
            else:
                part = process_rows(cat, files, rows, s)
                _save_part(uri, part)
            _add_counts(totals, part["counts"])
            sha.update(part["sha256"])
            part_uris.append(uri)
            del part
            bar.advance(task, len(rows))

    if totals["kept"] == 0:
        raise CatalogError(f"{cat.catalog_uri}: no galaxy passed (read {totals['read']}, "
                           f"skipped {totals['skipped']}, {totals['hlr_out_of_range']} outside "
                           f"hlr {s['hlr_min_arcsec']}-{s['hlr_max_arcsec']} arcsec); check "
                           f"cosmos_bank.hlr_min_arcsec/hlr_max_arcsec and the input.")
    attrs = {
        "src_pixscale_arcsec": float(s["pixscale_arcsec"]),
        "hlr_method": HLR_METHOD,
        "psf_handling": json.dumps(psf_record(s), sort_keys=True),
        "config": json.dumps(record, sort_keys=True),
        "input_sha256": json.dumps(sha, sort_keys=True),
        "counts": json.dumps(totals, sort_keys=True),
        FINGERPRINT_ATTR: json.dumps(fp.to_json(), sort_keys=True),
    }

    def parts() -> Iterator[dict]:
        for uri in part_uris:
            yield _load_part(uri)

    if storage.is_s3(bank_uri):
        fd, local = tempfile.mkstemp(prefix="dhs-bank-", suffix=".h5")
        os.close(fd)
    else:
        local = storage.tmp_name(bank_uri)
        storage.makedirs(storage.dirname(bank_uri))
    try:
        n_written = write_bank(local, parts(), stamp_size=int(s["stamp_size"]), attrs=attrs,
                               limit=limit)
        _publish(local, bank_uri)
    finally:
        if os.path.exists(local):
            os.remove(local)
    storage.remove(pdir)
    return {
        "bank": bank_uri,
        "input": label,
        "catalog": cat.catalog_uri,
        "read": totals["read"],
        "kept": n_written,
        "skipped": {r: v for r, v in totals["skipped"].items() if v},
        "skipped_total": sum(totals["skipped"].values()),
        "hlr_out_of_range": totals["hlr_out_of_range"],
        "resumed_rows": resumed_rows,
        "bytes_written": storage.size(bank_uri),
        "psf_handling": psf_record(s),
        "wall_s": round(time.time() - t0, 3),
        "input_sha256": sha,
        "fingerprint": fp.to_json(),
    }

