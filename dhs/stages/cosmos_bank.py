"""stage=cosmos_bank: GalSim RealGalaxyCatalog (real HST stamps) -> COSMOS bank (HDF5).

    dhs stage=cosmos_bank                                  # the 100 embedded COSMOS galaxies
    dhs stage=cosmos_bank cosmos_bank.input=s3://bucket/COSMOS_25.2_training_sample \\
        cosmos_bank.max_galaxies=20000 paths.cosmos_bank=s3://bucket/banks/cosmos_20k.h5

The work lives in dhs.cosmos.build (build, resume), dhs.cosmos.catalog (reading) and
dhs.cosmos.galaxy (template and half-light radius); the file format in dhs.cosmos.bank.
"""

from __future__ import annotations

import json
from typing import Any

from rich.markup import escape

from dhs.cosmos.settings import input_root
from dhs.io import storage
from dhs.stages import settings as stage_settings
from dhs.console import summary_table


def datasets(cfg: Any) -> dict:
    root, _ = input_root(stage_settings.bank_settings(cfg))
    return {"reads": [root], "writes": [str(cfg.paths.cosmos_bank)]}


def _stored_counts(bank_uri: str) -> dict:
    """Counts recorded in an existing local bank (attributes only; nothing else is read)."""
    if storage.is_s3(bank_uri):
        return {}
    import h5py

    try:
        with h5py.File(bank_uri, "r") as h5:
            return {"kept": int(h5.attrs["n_sources"]), **json.loads(h5.attrs["counts"])}
    except (OSError, KeyError, ValueError):
        return {}


def _changes(old: dict | None, new: Any) -> list[dict]:
    """What differs between a bank's stored fingerprint and the current one, as table rows."""
    from dhs.io.shards import changes

    names = {"input rows": "input files (catalog, images)", "output schema": "bank format"}
    return [{"key": names.get(k, k), "old": o, "new": n} for k, o, n in changes({"fingerprint": old}, new)]


def run(cfg: Any, ctx: Any) -> dict:
    """Build the bank, or keep it when its stored fingerprint equals the one the current input
    and settings give (skip_if_exists=true, force=false); a bank made otherwise is rebuilt, and
    the table says what changed."""
    from dhs.cosmos import build as builder
    from dhs.cosmos import fingerprint

    bank_uri = storage.normalize(str(cfg.paths.cosmos_bank))
    settings = stage_settings.bank_settings(cfg)
    if storage.exists(bank_uri) and cfg.skip_if_exists and not cfg.force:
        fp = builder.current_fingerprint(settings)
        old = fingerprint.stored(bank_uri)
        if old is not None and old.get("digest") == fp.digest:
            ctx.print(f"[yellow]cosmos_bank: {escape(bank_uri)} exists, made from this input and these "
                      f"settings; skipped (skip_if_exists=true; force=true rebuilds it)[/yellow]")
            return {"stage": "cosmos_bank", "bank": bank_uri, "skipped_existing": True,
                    "fingerprint": fp.digest, **_stored_counts(bank_uri)}
        ctx.print(f"[yellow]cosmos_bank: {escape(bank_uri)} was made otherwise; it is rebuilt (to keep it, "
                  f"write the new bank elsewhere: paths.cosmos_bank=...)[/yellow]")
        ctx.print(summary_table("cosmos_bank: what changed", _changes(old, fp)))
    summary = builder.build_bank(settings, bank_uri, console=ctx.console, force=bool(cfg.force))
    rows = {
        "input": summary["input"],
        "galaxies read": summary["read"],
        "kept (written)": summary["kept"],
        "skipped (total)": summary["skipped_total"],
        **{f"  skipped: {reason}": n for reason, n in summary["skipped"].items()},
        "out of HLR range": summary["hlr_out_of_range"],
        "resumed rows": summary["resumed_rows"],
        "HST PSF": (f"replaced by a {summary['psf_handling']['target_fwhm_arcsec']:g} arcsec Gaussian"
                    if summary["psf_handling"]["deconvolve_psf"] else "left in"),
        "bytes written": summary["bytes_written"],
        "wall time (s)": summary["wall_s"],
        "bank": bank_uri,
    }
    ctx.print(summary_table("cosmos_bank summary", rows))
    counts = {k: summary[k] for k in ("read", "kept", "skipped_total", "hlr_out_of_range")}
    counts["skipped"] = summary["skipped"]
    ctx.record_dataset(bank_uri, cfg, inputs={"catalog": summary["catalog"]}, counts=counts,
                       extra={"input_sha256": summary["input_sha256"],
                              "fingerprint": summary["fingerprint"],
                              "hlr_method": builder.HLR_METHOD,
                              "psf_handling": summary["psf_handling"],
                              "wall_s": summary["wall_s"]})
    return {"stage": "cosmos_bank", **summary}
