"""Injection-recovery completeness: recovery, validity, binning, Wilson intervals, region aggregation.

Pure table logic (pandas / NumPy, vectorized group-bys); the stage (dhs.stages.completeness)
does the I/O. Units: theta_E and PSF FWHM in arcsec, depth in AB magnitudes, psfdepth_r as the
inverse variance of a point source's flux (1/nmgy^2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from dhs.errors import ConfigError, InputTableError
from dhs.schema import arrow_schema, surface_columns

#: Columns of the metrics dataset completeness reads.
METRIC_INPUTS = ("task_id", "region_id", "region_split", "is_control", "cutout_ok", "metrics_ok",
                 "arc_snr", "bad_pixel_frac", "wise_brightmask_frac", "theta_e_arcsec", "src_dmag",
                 "src_reff_arcsec", "psfsize_r", "psfdepth_r")

#: Surface name -> bin columns (see dhs.schema.SURFACE_KEYS).
BINNINGS: dict[str, tuple[str, ...]] = {
    "theta_e": ("theta_e_arcsec",),
    "src_dmag": ("src_dmag",),
    "src_reff": ("src_reff_arcsec",),
    "psf": ("psf_bin_arcsec",),
    "depth": ("depth_bin_mag",),
    "resolution": ("resolution_lo", "resolution_hi", "resolution_bin"),
    "theta_e_psf": ("theta_e_arcsec", "psf_bin_arcsec"),
    "theta_e_depth": ("theta_e_arcsec", "depth_bin_mag"),
}

PSF_BIN_ARCSEC = 0.1
DEPTH_BIN_MAG = 0.25
#: Source columns drawn per task from a prior (continuous) are binned at these widths
#: (mag, arcsec); a column with at most ``GRID_VALUES_MAX`` distinct values is a grid axis
#: and keeps its values.
PRIOR_BIN_WIDTHS = {"src_dmag": 0.5, "src_reff_arcsec": 0.1}
GRID_VALUES_MAX = 16
ALL_SPLITS = "all"


@dataclass(frozen=True)
class Recovery:
    """How an injection counts as recovered: its finder score >= ``threshold``.

    ``method``: 'fpr' (threshold set on the controls for the false-positive rate ``fpr``),
    'given' (``completeness.threshold``) or 'snr_proxy' (the oracle rule arc_snr >= threshold,
    from the metrics; no resolution cut). ``scores_path``: where the scores came from.
    """

    finder: str
    threshold: float
    method: str = "given"
    fpr: Optional[float] = None
    scores_path: Optional[str] = None

    def describe(self) -> str:
        if self.method == "snr_proxy":
            return f"finder=snr_proxy (oracle): arc_snr >= {self.threshold:g}, no resolution cut"
        how = f"set for FPR {self.fpr:g} on the controls" if self.method == "fpr" else "given"
        return f"finder={self.finder}: score >= {self.threshold:.4g} ({how})"


# ----------------------------------------------------------------------------- intervals
def confidence_level(z: float) -> float:
    """Two-sided confidence level of a z-sigma interval: erf(z / sqrt(2)) (0.95 for z = 1.96)."""
    return math.erf(float(z) / math.sqrt(2.0))


def wilson_interval(k: Sequence[int] | np.ndarray, n: Sequence[int] | np.ndarray,
                    z: float = 1.96) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of k successes in n trials (astropy's binom_conf_interval).

    Returns (lower, upper) arrays; NaN where n = 0.
    """
    from astropy.stats import binom_conf_interval

    k = np.atleast_1d(np.asarray(k, dtype=np.int64))
    n = np.atleast_1d(np.asarray(n, dtype=np.int64))
    if k.shape != n.shape:
        raise ValueError(f"k {k.shape} and n {n.shape} differ in shape")
    if np.any(k < 0) or np.any(k > n):
        raise ValueError("need 0 <= k <= n for every bin")
    lo = np.full(k.shape, np.nan)
    hi = np.full(k.shape, np.nan)
    ok = n > 0
    if ok.any():
        bounds = binom_conf_interval(k[ok], n[ok], confidence_level(z), interval="wilson")
        lo[ok], hi[ok] = bounds[0], bounds[1]
    return lo, hi


def rate(k: np.ndarray, n: np.ndarray) -> np.ndarray:
    """k / n as floats, NaN where n = 0."""
    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, k / np.where(n > 0, n, 1.0), np.nan)


# ----------------------------------------------------------------------------- rows
def depth_mag(psfdepth_r: np.ndarray) -> np.ndarray:
    """r-band 5-sigma point-source depth (AB mag) from its inverse variance (1/nmgy^2).

    m = 22.5 - 2.5 log10(5 / sqrt(psfdepth_r)); NaN where psfdepth_r <= 0 or missing.
    """
    d = np.asarray(psfdepth_r, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(d > 0, 22.5 - 2.5 * np.log10(5.0 / np.sqrt(np.where(d > 0, d, 1.0))), np.nan)


def _floor_bin(x: np.ndarray, width: float) -> np.ndarray:
    """Lower bin edge (multiple of ``width``), rounded to clean decimals; NaN stays NaN."""
    # a small epsilon keeps values that sit on an edge (1.2 -> 11.999999) in the upper bin
    return np.round(np.floor(np.asarray(x, dtype=float) / width + 1e-9) * width, 6)


def add_bins(df: pd.DataFrame, resolution_edges: Sequence[float]) -> pd.DataFrame:
    """Add psf_bin_arcsec, depth_bin_mag, resolution (theta_E / psfsize_r) and its bin columns.

    src_dmag and src_reff_arcsec drawn from priors (more than ``GRID_VALUES_MAX`` distinct values
    among the injections) are replaced by the lower edges of bins ``PRIOR_BIN_WIDTHS`` wide, so
    their surfaces have one row per bin rather than one per task; grid values stay as they are.
    """
    out = df.copy()
    inj = out["is_control"].fillna(0).to_numpy() == 0 if "is_control" in out else np.ones(len(out), bool)
    for col, width in PRIOR_BIN_WIDTHS.items():
        if col not in out:
            continue
        x = out[col].to_numpy(dtype=float)
        if np.unique(x[inj & np.isfinite(x)]).size > GRID_VALUES_MAX:
            out[col] = np.where(inj, _floor_bin(x, width), x)
    psf = out["psfsize_r"].to_numpy(dtype=float)
    psf = np.where(psf > 0, psf, np.nan)
    out["psf_bin_arcsec"] = _floor_bin(psf, PSF_BIN_ARCSEC)
    out["depth_mag"] = depth_mag(out["psfdepth_r"].to_numpy(dtype=float))
    out["depth_bin_mag"] = _floor_bin(out["depth_mag"].to_numpy(), DEPTH_BIN_MAG)
    with np.errstate(invalid="ignore", divide="ignore"):
        res = out["theta_e_arcsec"].to_numpy(dtype=float) / psf
    out["resolution"] = res
    edges = np.asarray(list(resolution_edges) + [np.inf], dtype=float)
    if np.any(np.diff(edges) <= 0):
        raise ConfigError(f"completeness.resolution_edges={list(resolution_edges)} must increase")
    idx = np.searchsorted(edges, res, side="right") - 1
    inside = np.isfinite(res) & (idx >= 0) & (idx < len(edges) - 1)
    safe = np.clip(idx, 0, len(edges) - 2)
    out["resolution_lo"] = np.where(inside, edges[safe], np.nan)
    out["resolution_hi"] = np.where(inside, edges[safe + 1], np.nan)
    labels = np.array([f"[{edges[i]:g}, {edges[i + 1]:g})" for i in range(len(edges) - 1)], dtype=object)
    out["resolution_bin"] = np.where(inside, labels[safe], None)
    return out


def flag_rows(df: pd.DataFrame, *, bad_pixel_frac_max: float = 0.2,
              wise_brightmask_frac_max: float = 0.2) -> pd.DataFrame:
    """Add boolean ``valid`` (cutout_ok = 1, metrics_ok = 1, finite arc_snr for an injection;
    a control's arc_snr is null: it has no arc) and ``clean``."""
    out = df.copy()
    snr = out["arc_snr"].to_numpy(dtype=float)
    ctl = _controls(out)
    valid = ((out["cutout_ok"].fillna(0).to_numpy() == 1) & (out["metrics_ok"].fillna(0).to_numpy() == 1)
             & (ctl | np.isfinite(snr)))
    bad = out["bad_pixel_frac"].to_numpy(dtype=float)
    wise = out["wise_brightmask_frac"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        clean = valid & (bad <= bad_pixel_frac_max) & (wise <= wise_brightmask_frac_max)
    out["valid"] = valid
    out["clean"] = clean
    return out


def attach_scores(df: pd.DataFrame, scores: pd.DataFrame, source: str) -> pd.DataFrame:
    """Join lens-finder scores onto the rows: ``score`` and ``score_ok`` (1 where the finder scored
    the stamp; a scores table without it counts finite scores as scored).

    Raises InputTableError naming ``source`` for missing columns, duplicate task_ids, or valid rows
    without a scores row (the finder never saw them: score the whole experiment).
    """
    missing = [c for c in ("task_id", "score") if c not in scores.columns]
    if missing:
        raise InputTableError(f"scores file {source} lacks column(s) {missing}; it needs 'task_id' (string, "
                              f"the task ids of the 4c metrics) and 'score' (float, higher = more lens-like); "
                              f"found {list(scores.columns)}")
    sc = scores[["task_id", "score"]].astype({"score": float})
    ok = scores["score_ok"].to_numpy() == 1 if "score_ok" in scores.columns else np.ones(len(sc), bool)
    sc = sc.assign(score_ok=ok & np.isfinite(sc["score"].to_numpy()), _scored=True)
    dup = sc["task_id"].duplicated()
    if dup.any():
        raise InputTableError(f"scores file {source}: {int(dup.sum())} duplicate task_id(s), e.g. "
                              f"{sc['task_id'][dup].iloc[0]!r}; keep one score per task")
    out = df.merge(sc, on="task_id", how="left", validate="one_to_one")
    lacking = out["valid"].to_numpy() & out["_scored"].isna().to_numpy()
    if lacking.any():
        ids = out.loc[lacking, "task_id"].head(3).tolist()
        raise InputTableError(f"scores file {source}: {int(lacking.sum())} valid task(s) of the metrics have no "
                              f"score row (task_id {', '.join(map(repr, ids))} ...); score every stamp of the "
                              f"experiment (`dhs stage=score`)")
    out["score_ok"] = out["score_ok"].fillna(False).astype(bool)
    return out.drop(columns="_scored")


def _controls(df: pd.DataFrame) -> np.ndarray:
    return df["is_control"].fillna(0).to_numpy() == 1 if "is_control" in df else np.zeros(len(df), bool)


def proxy_scores(df: pd.DataFrame) -> pd.DataFrame:
    """finder=snr_proxy: the rows' own arc_snr as their score; a control (arc_snr null: no arc)
    scores 0, the SNR of an absent arc, so the oracle never flags it at a positive threshold."""
    ctl = _controls(df)
    snr = np.where(ctl, 0.0, df["arc_snr"].to_numpy(dtype=float))
    return df.assign(score=snr, score_ok=np.isfinite(snr))


def prepare(df: pd.DataFrame, *, resolution_edges: Sequence[float], bad_pixel_frac_max: float,
            wise_brightmask_frac_max: float, scores: Optional[pd.DataFrame] = None,
            scores_source: str = "scores") -> pd.DataFrame:
    """Rows with bins, ``valid``, ``clean``, ``score`` and ``score_ok`` (injections and controls);
    ``scores`` None: the snr_proxy's scores (arc_snr). :func:`mark_recovered` adds ``recovered``."""
    out = flag_rows(add_bins(df, resolution_edges), bad_pixel_frac_max=bad_pixel_frac_max,
                    wise_brightmask_frac_max=wise_brightmask_frac_max)
    return proxy_scores(out) if scores is None else attach_scores(out, scores, scores_source)


def recovered_at(df: pd.DataFrame, threshold: float) -> np.ndarray:
    """Valid, scored rows with score >= threshold (an unscored stamp is never found)."""
    with np.errstate(invalid="ignore"):
        return (df["valid"].to_numpy() & df["score_ok"].to_numpy()
                & (df["score"].to_numpy(dtype=float) >= threshold))


def mark_recovered(df: pd.DataFrame, recovery: Recovery) -> pd.DataFrame:
    return df.assign(recovered=recovered_at(df, recovery.threshold))


# ----------------------------------------------------------------------------- surfaces
def _with_rates(g: pd.DataFrame, z: float) -> pd.DataFrame:
    for name, k, n in (("completeness", "n_recovered", "n_valid"),
                       ("completeness_attempted", "n_recovered", "n_attempted"),
                       ("completeness_clean", "n_recovered_clean", "n_clean")):
        kk, nn = g[k].to_numpy(), g[n].to_numpy()
        g[name] = rate(kk, nn)
        g[f"{name}_lo"], g[f"{name}_hi"] = wilson_interval(kk, nn, z)
    return g


def region_surface(rows: pd.DataFrame, keys: Sequence[str], z: float = 1.96) -> pd.DataFrame:
    """Per-region counts and completeness of injections, grouped by region and ``keys``."""
    inj = rows[rows["is_control"].fillna(0).to_numpy() == 0]
    tmp = pd.DataFrame({
        "region_split": inj["region_split"].astype(str).to_numpy(),
        "region_id": inj["region_id"].to_numpy(dtype=np.int64),
        **{k: inj[k].to_numpy() for k in keys},
        "n_attempted": 1,
        "n_valid": inj["valid"].to_numpy().astype(np.int64),
        "n_clean": inj["clean"].to_numpy().astype(np.int64),
        "n_recovered": inj["recovered"].to_numpy().astype(np.int64),
        "n_recovered_clean": (inj["recovered"].to_numpy() & inj["clean"].to_numpy()).astype(np.int64),
    })
    group = ["region_split", "region_id", *keys]
    g = tmp.groupby(group, dropna=False, sort=True).sum().reset_index()
    return _with_rates(g, z)


def aggregate_regions(per_region: pd.DataFrame, keys: Sequence[str], z: float = 1.96,
                      *, all_splits: bool = True) -> pd.DataFrame:
    """Pool a per-region surface over regions, per split (and over every split as 'all').

    Counts are summed (pooled completeness with Wilson intervals); the per-region completeness
    (NaN for regions without valid injections, which are left out) gives n_regions, mean and
    sample std (ddof=1).
    """
    counts = ["n_attempted", "n_valid", "n_clean", "n_recovered", "n_recovered_clean"]
    frames = [per_region]
    if all_splits:
        frames.append(per_region.assign(region_split=ALL_SPLITS))
    both = pd.concat(frames, ignore_index=True)
    group = ["region_split", *keys]
    gb = both.groupby(group, dropna=False, sort=True)
    pooled = gb[counts].sum()
    across = gb["completeness"].agg(n_regions="count", completeness_region_mean="mean",
                                    completeness_region_std=lambda s: s.std(ddof=1))
    g = pooled.join(across).reset_index()
    g = _with_rates(g, z)
    cols = [c.name for c in surface_columns(tuple(keys), per_region=False, labelled=False)]
    return g[cols]


def to_arrow(df: pd.DataFrame, keys: Sequence[str], per_region: bool, recovery: Optional[Recovery] = None):
    """The surface as an Arrow table with the schema of dhs.schema.surface_columns, labelled with
    the finder and threshold of ``recovery``."""
    import pyarrow as pa

    if recovery is not None:
        df = df.assign(finder=recovery.finder, threshold=float(recovery.threshold))
    schema = arrow_schema(surface_columns(tuple(keys), per_region, labelled=recovery is not None))
    data = {}
    for field in schema:
        col = df[field.name]
        if pa.types.is_string(field.type):
            data[field.name] = pa.array([None if v is None or (isinstance(v, float) and math.isnan(v))
                                         else str(v) for v in col], type=field.type)
        else:
            data[field.name] = pa.array(col.to_numpy(), type=field.type, from_pandas=True)
    return pa.table(data, schema=schema)


def surfaces(rows: pd.DataFrame, z: float = 1.96,
             binnings: Optional[dict[str, tuple[str, ...]]] = None) -> dict[str, dict[str, pd.DataFrame]]:
    """{binning: {"regions": per-region surface, "aggregate": across-region surface}}."""
    out = {}
    for name, keys in (binnings or BINNINGS).items():
        per = region_surface(rows, keys, z)
        out[name] = {"regions": per, "aggregate": aggregate_regions(per, keys, z)}
    return out


def overall(rows: pd.DataFrame, z: float = 1.96) -> dict:
    """Counts and completeness (with Wilson intervals) of every injection, and of the controls."""
    inj = rows[rows["is_control"].fillna(0).to_numpy() == 0]
    ctl = rows[rows["is_control"].fillna(0).to_numpy() == 1]
    n_att, n_val = len(inj), int(inj["valid"].sum())
    n_rec = int(inj["recovered"].sum())
    lo, hi = wilson_interval([n_rec], [n_val], z)
    return {"n_attempted": n_att, "n_valid": n_val, "n_recovered": n_rec,
            "completeness": float(rate([n_rec], [n_val])[0]), "completeness_lo": float(lo[0]),
            "completeness_hi": float(hi[0]), "n_controls": len(ctl),
            "n_controls_valid": int(ctl["valid"].sum())}


def false_positive_rate(rows: pd.DataFrame, z: float = 1.96) -> dict:
    """Controls flagged 'recovered' (score >= threshold) over valid controls, overall and per split."""
    ctl = rows[(rows["is_control"].fillna(0).to_numpy() == 1) & rows["valid"].to_numpy()]
    out: dict = {}
    groups = [(ALL_SPLITS, ctl)] + [(str(s), g) for s, g in ctl.groupby("region_split", sort=True)]
    for split, g in groups:
        n, k = len(g), int(g["recovered"].sum())
        lo, hi = wilson_interval([k], [n], z)
        out[split] = {"n_controls_valid": n, "n_false_positive": k,
                      "false_positive_rate": float(rate([k], [n])[0]),
                      "false_positive_rate_lo": float(lo[0]), "false_positive_rate_hi": float(hi[0])}
    return out
