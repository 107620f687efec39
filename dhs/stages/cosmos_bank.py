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

from dhs.cosmos import build as builder
from dhs.io import storage
from dhs.stages import settings as stage_settings
from dhs.console import summary_table


def datasets(cfg: Any) -> dict:
    root, _ = builder.input_root(stage_settings.bank_settings(cfg))
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


def run(cfg: Any, ctx: Any) -> dict:
    bank_uri = storage.normalize(str(cfg.paths.cosmos_bank))
    if storage.exists(bank_uri) and cfg.skip_if_exists and not cfg.force:
        ctx.print(f"[yellow]cosmos_bank: {bank_uri} exists; skipped (skip_if_exists=true; "
                  f"force=true rebuilds it)[/yellow]")
        return {"stage": "cosmos_bank", "bank": bank_uri, "skipped_existing": True,
                **_stored_counts(bank_uri)}
    summary = builder.build_bank(stage_settings.bank_settings(cfg), bank_uri, console=ctx.console,
                                 force=bool(cfg.force))
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
                              "hlr_method": builder.HLR_METHOD,
                              "psf_handling": summary["psf_handling"],
                              "wall_s": summary["wall_s"]})
    return {"stage": "cosmos_bank", **summary}
