"""Data-quality report of a 4c dataset (metrics, stamps) with automatic checks.

Sections: rows per split, cutout_ok rate, error codes, control/injection balance, arc SNR
percentiles and fractions above 1, 10, 50 per split, theta_E / PSF / depth distributions, COSMOS
unique indices, intrinsic vs lensed half-light radius. Checks (each {name, ok, detail}) follow
the earlier system's smoke-test criteria: COSMOS columns present, controls null where a quantity
does not apply (and injections not), one source_mode matching the
run, cosmos_index inside the bank, HLR inside the bank's range, stamp shapes (bands, size, size).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import pandas as pd

from dhs.errors import MissingInputError
from dhs.io import storage
from dhs.schema import (ERROR_CODES, MANIFEST, MANIFEST_CONTROL_NULL, METRICS_INJECTION_SET, control_null_columns,
                        metrics_columns)

SMOKE_COLUMNS = ("source_mode", "cosmos_index", "cosmos_hlr_arcsec")
PERCENTILES = (5, 25, 50, 75, 95)
SNR_LEVELS = (1, 10, 50)
STAMP_SAMPLE = 256
HLR_TOL_ARCSEC = 1e-6


@dataclass(frozen=True)
class BankInfo:
    path: str
    n_sources: int
    hlr_min: float
    hlr_max: float


def bank_info(uri: str) -> BankInfo:
    """Size and half-light-radius range (arcsec) of a COSMOS bank (HDF5, via h5py)."""
    import h5py

    from dhs.cosmos.bank import BankError

    uri = storage.normalize(str(uri))
    if not storage.exists(uri):
        raise MissingInputError(f"COSMOS bank {uri} does not exist; build it with `dhs stage=cosmos_bank` "
                                f"or point source.bank_path (or paths.cosmos_bank) at it")
    tmp = None
    path = uri
    if storage.is_s3(uri):
        fd, tmp = tempfile.mkstemp(suffix=".h5")
        with os.fdopen(fd, "wb") as f:
            f.write(storage.read_bytes(uri))
        path = tmp
    try:
        with h5py.File(path, "r") as h5:
            if "n_sources" in h5.attrs:
                n = int(h5.attrs["n_sources"])
            elif "images" in h5:
                n = int(h5["images"].shape[0])
            else:
                raise BankError(f"{uri}: no n_sources attribute and no images dataset; not a COSMOS bank: "
                                f"rebuild it with `dhs stage=cosmos_bank force=true`")
            if "hlr_arcsec" not in h5:
                raise BankError(f"{uri}: no hlr_arcsec dataset; rebuild with `dhs stage=cosmos_bank force=true`")
            hlr = np.asarray(h5["hlr_arcsec"][...], dtype=float)
    finally:
        if tmp:
            os.unlink(tmp)
    hlr = hlr[np.isfinite(hlr)]
    return BankInfo(uri, n, float(hlr.min()) if hlr.size else np.nan, float(hlr.max()) if hlr.size else np.nan)


def _f(x: Any) -> Any:
    """JSON-friendly scalar (NaN -> None)."""
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return None if not np.isfinite(x) else round(float(x), 6)
    return x


def _pcts(v: np.ndarray) -> dict:
    v = np.asarray(v, dtype=float)
    v = v[np.isfinite(v)]
    if not v.size:
        return {f"p{p}": None for p in PERCENTILES} | {"n": 0}
    return {f"p{p}": _f(q) for p, q in zip(PERCENTILES, np.percentile(v, PERCENTILES))} | {"n": int(v.size)}


def _col(df: pd.DataFrame, name: str, default: Any = np.nan) -> pd.Series:
    return df[name] if name in df.columns else pd.Series(default, index=df.index)


def _injections(df: pd.DataFrame) -> pd.DataFrame:
    return df[_col(df, "is_control", 0).fillna(0).to_numpy() == 0]


def sections(df: pd.DataFrame) -> dict:
    """The descriptive part of the report (per split and overall)."""
    from dhs.completeness.surfaces import depth_mag

    out: dict[str, Any] = {"rows": int(len(df))}
    split = _col(df, "region_split", "unknown").astype(str)
    per: dict[str, Any] = {}
    for s in sorted(set(split)) + ["all"]:
        d = df if s == "all" else df[split.to_numpy() == s]
        ok = _col(d, "cutout_ok", 0).fillna(0).to_numpy() == 1
        ctl = _col(d, "is_control", 0).fillna(0).to_numpy() == 1
        inj = d[~ctl]
        good = (_col(inj, "metrics_ok", 0).fillna(0).to_numpy() == 1)
        snr = _col(inj, "arc_snr").to_numpy(dtype=float)[good]
        errs = _col(d, "error_code", "").fillna("").astype(str)
        per[s] = {
            "rows": int(len(d)),
            "cutout_ok_rate": _f(ok.mean()) if len(d) else None,
            "error_codes": {k or "(none)": int(v) for k, v in errs.value_counts().sort_index().items()},
            "n_controls": int(ctl.sum()), "n_injections": int((~ctl).sum()),
            "control_fraction": _f(ctl.mean()) if len(d) else None,
            "arc_snr_percentiles": _pcts(snr),
            "arc_snr_frac_above": {str(t): _f(np.mean(snr[np.isfinite(snr)] > t)) if np.isfinite(snr).any()
                                   else None for t in SNR_LEVELS},
        }
    out["per_split"] = per
    inj = _injections(df)
    theta = _col(inj, "theta_e_arcsec").to_numpy(dtype=float)
    out["theta_e_counts"] = {f"{v:g}": int(c) for v, c in zip(*np.unique(theta[np.isfinite(theta)],
                                                                          return_counts=True))}
    out["psfsize_r_arcsec"] = _pcts(_col(df, "psfsize_r").to_numpy(dtype=float))
    out["depth_r_mag"] = _pcts(depth_mag(_col(df, "psfdepth_r").to_numpy(dtype=float)))
    idx = _col(inj, "cosmos_index", -1).fillna(-1).to_numpy(dtype=np.int64)
    out["cosmos_unique_indices"] = int(np.unique(idx[idx >= 0]).size)
    intr = _col(inj, "cosmos_hlr_arcsec").to_numpy(dtype=float)
    lens = _col(inj, "lensed_hlr_arcsec").to_numpy(dtype=float)
    both = np.isfinite(intr) & np.isfinite(lens) & (intr > 0)
    out["hlr"] = {"intrinsic_arcsec": _pcts(intr), "lensed_arcsec": _pcts(lens),
                  "median_lensed_over_intrinsic": _f(np.median(lens[both] / intr[both])) if both.any() else None}
    return out


# ----------------------------------------------------------------------------- checks
def _check(name: str, ok: Optional[bool], detail: str) -> dict:
    """ok None: not applicable (skipped)."""
    return {"name": name, "ok": ok, "status": "skipped" if ok is None else ("pass" if ok else "FAIL"),
            "detail": detail}


def check_schema(df: pd.DataFrame, bands: list[str]) -> list[dict]:
    smoke = [c for c in SMOKE_COLUMNS if c not in df.columns]
    expected = [c.name for c in MANIFEST] + [c.name for c in metrics_columns(bands)]
    rest = [c for c in expected if c not in df.columns and c not in SMOKE_COLUMNS]
    return [
        _check("schema_cosmos_columns", not smoke,
               "source_mode, cosmos_index, cosmos_hlr_arcsec present" if not smoke else f"missing {smoke}"),
        _check("schema_all_columns", not rest,
               f"all {len(expected)} manifest + metrics columns present" if not rest
               else f"missing {len(rest)} column(s): {rest[:10]}"),
    ]


def check_rows(df: pd.DataFrame) -> list[dict]:
    ok = _col(df, "cutout_ok", 0).fillna(0).to_numpy() == 1
    codes = _col(df, "error_code", "").fillna("").astype(str).to_numpy()
    unknown = sorted(set(codes) - set(ERROR_CODES))
    inconsistent = int(np.sum(ok == (codes != "")))
    return [
        _check("rows_present", len(df) > 0, f"{len(df)} rows"),
        _check("cutout_ok_any", bool(ok.any()), f"{int(ok.sum())} of {len(df)} rows have cutout_ok = 1"),
        _check("error_codes_known", not unknown, "all error codes known" if not unknown
               else f"unknown error codes {unknown[:10]}; known: {[c for c in ERROR_CODES if c]}"),
        _check("error_codes_consistent", inconsistent == 0,
               "error_code is empty exactly when cutout_ok = 1" if not inconsistent
               else f"{inconsistent} row(s) with cutout_ok and error_code disagreeing"),
    ]


def check_control_nulls(df: pd.DataFrame, bands: list[str]) -> list[dict]:
    """Controls carry nulls in every arc, source and lens-model column; injections carry their
    manifest values, valid injections (metrics_ok = 1) their arc metrics."""
    ctl = _col(df, "is_control", 0).fillna(0).to_numpy() == 1
    valid = _col(df, "metrics_ok", 0).fillna(0).to_numpy() == 1
    cols = [c for c in control_null_columns(bands) if c in df.columns]
    set_ctl = {c: int(df[c][ctl].notna().sum()) for c in cols}
    set_ctl = {c: n for c, n in set_ctl.items() if n}
    need = [(c, ~ctl) for c in MANIFEST_CONTROL_NULL] + [(c, ~ctl & valid) for c in METRICS_INJECTION_SET]
    null_inj = {c: int(df[c][m].isna().sum()) for c, m in need if c in df.columns}
    null_inj = {c: n for c, n in null_inj.items() if n}
    return [
        _check("controls_null", not set_ctl,
               f"{int(ctl.sum())} control(s): {len(cols)} arc/source/lens columns null" if not set_ctl
               else "controls with a value where none applies: "
                    + ", ".join(f"{c} ({n})" for c, n in list(set_ctl.items())[:8])),
        _check("injections_not_null", not null_inj,
               f"{int((~ctl).sum())} injection(s): lens, source and (valid ones) arc columns set" if not null_inj
               else "injections with nulls: " + ", ".join(f"{c} ({n})" for c, n in list(null_inj.items())[:8])),
    ]


def check_source(df: pd.DataFrame, expected_mode: str, bank: Optional[BankInfo],
                 bank_error: Optional[str]) -> list[dict]:
    """source_mode single and as configured; cosmos_index inside the bank; HLR inside its range."""
    if "source_mode" not in df.columns:
        return [_check("source_mode_single", False, "no source_mode column")]
    inj = _injections(df)
    modes = sorted(set(inj["source_mode"].dropna().astype(str)))
    out = [_check("source_mode_single", len(modes) == 1, f"source_mode values {modes}"),
           _check("source_mode_matches_run", modes == [expected_mode],
                  f"expected {expected_mode!r} (the run's source), found {modes}")]
    if expected_mode != "cosmos":
        idx = _col(inj, "cosmos_index", -1).fillna(-1).to_numpy(dtype=np.int64)
        out.append(_check("cosmos_index_unused", bool(np.all(idx == -1)),
                          f"{int(np.sum(idx != -1))} {expected_mode} injection(s) carry a cosmos_index"))
        return out
    if bank is None:
        out.append(_check("cosmos_bank_readable", False, bank_error or "bank not found"))
        return out
    if "cosmos_index" in inj.columns:
        idx = inj["cosmos_index"].fillna(-1).to_numpy(dtype=np.int64)
        bad = (idx < 0) | (idx >= bank.n_sources)
        out.append(_check("cosmos_index_in_bank", not bad.any(),
                          f"cosmos_index in [0, {bank.n_sources}) ({bank.path})" if not bad.any()
                          else f"{int(bad.sum())} injection(s) with cosmos_index outside [0, {bank.n_sources}),"
                               f" e.g. {int(idx[bad][0])} ({bank.path})"))
    if "cosmos_hlr_arcsec" in inj.columns:
        hlr = inj["cosmos_hlr_arcsec"].to_numpy(dtype=float)
        bad = ~np.isfinite(hlr) | (hlr < bank.hlr_min - HLR_TOL_ARCSEC) | (hlr > bank.hlr_max + HLR_TOL_ARCSEC)
        fin = hlr[np.isfinite(hlr)]
        rng = f"{fin.min():.3f}-{fin.max():.3f}" if fin.size else "none"
        out.append(_check("cosmos_hlr_in_bank_range", not bad.any(),
                          f"HLR {rng} arcsec within the bank's {bank.hlr_min:.3f}-{bank.hlr_max:.3f}"
                          if not bad.any() else f"{int(bad.sum())} injection(s) with HLR missing or outside "
                          f"the bank's {bank.hlr_min:.3f}-{bank.hlr_max:.3f} arcsec (data: {rng})"))
    return out


def check_stamps(stamps_uri: str, expected: tuple[int, int, int], metrics_only: bool) -> list[dict]:
    """Arrays of a sample of valid stamps have shape (bands, size, size); maskbits (size, size)."""
    from dhs.io import datasets as dsets
    from dhs.io.stamps import read_stamps, to_numpy

    if not dsets.data_files(stamps_uri):
        if metrics_only:
            return [_check("stamp_shape", None, f"inject.metrics_only=true: no stamps at {stamps_uri}")]
        return [_check("stamp_shape", False, f"no stamps dataset at {stamps_uri}")]
    try:
        t = read_stamps(stamps_uri, limit=STAMP_SAMPLE)
        import pyarrow.compute as pc

        t = t.filter(pc.equal(t.column("cutout_ok"), 1))
        if t.num_rows == 0:
            return [_check("stamp_shape", False, f"no valid stamps among the first {STAMP_SAMPLE} rows")]
        img = to_numpy(t, "image", bands=expected[0], size=expected[1])
        ivar = to_numpy(t, "invvar", bands=expected[0], size=expected[1])
        mb = to_numpy(t, "maskbits", size=expected[1])
        labels = set(t.column("bandset").to_pylist()) | {None}
        sizes = set(t.column("stamp_size").to_pylist())
        meta_ok = len(labels - {None}) == 1 and len(next(iter(labels - {None}))) == expected[0] \
            and sizes == {expected[1]}
        ok = img.shape[1:] == expected and ivar.shape[1:] == expected and mb.shape[1:] == expected[1:] and meta_ok
        return [_check("stamp_shape", bool(ok),
                       f"{t.num_rows} sampled stamps: image {img.shape[1:]}, maskbits {mb.shape[1:]}, "
                       f"bandset {sorted(labels - {None})}, stamp_size {sorted(sizes)}; expected {expected}")]
    except (ValueError, KeyError) as exc:
        return [_check("stamp_shape", False, f"{exc} (expected {expected})")]


# ----------------------------------------------------------------------------- report
def expected_stamp_shape(df: pd.DataFrame) -> Optional[tuple[int, int, int]]:
    """(bands, size, size) from the metrics' bandset and stamp_size (most common values)."""
    if "bandset" not in df.columns or "stamp_size" not in df.columns or df.empty:
        return None
    bandset = str(df["bandset"].mode().iloc[0])
    size = int(df["stamp_size"].mode().iloc[0])
    return (len(bandset), size, size)


def build_report(df: pd.DataFrame, *, experiment: str, expected_mode: str, bank_uri: Optional[str],
                 stamps_uri: Optional[str], bands: list[str], metrics_only: bool = False) -> dict:
    """The report dict: sections plus checks; ``passed`` is False when any check failed."""
    bank, bank_error = None, None
    if expected_mode == "cosmos":
        try:
            bank = bank_info(str(bank_uri))
        except (OSError, ValueError) as exc:
            bank_error = f"cannot read the COSMOS bank {bank_uri}: {exc}"
    checks = (check_schema(df, bands) + check_rows(df) + check_control_nulls(df, bands)
              + check_source(df, expected_mode, bank, bank_error))
    shape = expected_stamp_shape(df)
    if stamps_uri and shape:
        checks += check_stamps(stamps_uri, shape, metrics_only)
    elif stamps_uri:
        checks.append(_check("stamp_shape", False, "metrics lack bandset/stamp_size: no expected shape"))
    failed = [c["name"] for c in checks if c["ok"] is False]
    return {"experiment": experiment, "source_mode_expected": expected_mode,
            "bank": None if bank is None else {"path": bank.path, "n_sources": bank.n_sources,
                                               "hlr_min_arcsec": bank.hlr_min, "hlr_max_arcsec": bank.hlr_max},
            "expected_stamp_shape": list(shape) if shape else None,
            **sections(df), "checks": checks, "failed": failed, "passed": not failed}


def report_plots(df: pd.DataFrame, out_dir: str, experiment: str) -> list[str]:
    """arc SNR histogram per split and intrinsic vs lensed HLR scatter (PNG)."""
    from dhs.completeness.plots import arc_snr_histograms, hlr_intrinsic_vs_lensed

    inj = _injections(df)
    good = _col(inj, "metrics_ok", 0).fillna(0).to_numpy() == 1
    split = _col(inj, "region_split", "unknown").astype(str).to_numpy()
    snr = _col(inj, "arc_snr").to_numpy(dtype=float)
    by_split = {s: snr[good & (split == s)] for s in sorted(set(split[good]))}
    return [
        arc_snr_histograms(by_split, storage.join(out_dir, "plots", "arc_snr_by_split.png"), experiment=experiment),
        hlr_intrinsic_vs_lensed(_col(inj, "cosmos_hlr_arcsec").to_numpy(dtype=float),
                                _col(inj, "lensed_hlr_arcsec").to_numpy(dtype=float),
                                storage.join(out_dir, "plots", "hlr_intrinsic_vs_lensed.png"),
                                experiment=experiment, theta_e=_col(inj, "theta_e_arcsec").to_numpy(dtype=float)),
    ]


def summary_rows(report: dict) -> list[dict]:
    """Rows for the console table: one per split, then one per check."""
    rows = []
    for s, d in report["per_split"].items():
        p = d["arc_snr_percentiles"]
        rows.append({"item": f"split {s}", "value": f"{d['rows']} rows, cutout_ok {d['cutout_ok_rate']}, "
                     f"controls {d['n_controls']} / injections {d['n_injections']}, arc SNR p5/p50/p95 "
                     f"{p['p5']}/{p['p50']}/{p['p95']}, >10: {d['arc_snr_frac_above']['10']}"})
    for c in report["checks"]:
        rows.append({"item": f"check {c['name']}", "value": f"{c['status']}: {c['detail']}"})
    return rows
