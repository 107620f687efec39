"""Score thresholds set on the controls, false-positive rates, TPR-at-FPR curves and purity.

Pure table logic on the rows of :func:`dhs.completeness.surfaces.prepare` (``valid``,
``score``, ``score_ok``, ``is_control``, ``region_split``, resolution bins). A control the finder
could not score counts as not flagged (score -inf); an injection it could not score is not found.

Threshold for a false-positive rate ``fpr`` on ``n`` controls: with the control scores sorted
high to low, ``s_1 >= s_2 >= ...``, and ``k = floor(fpr n)``, the threshold lies between
``s_k`` and ``s_(k+1)`` (their midpoint; just above ``s_1`` when k = 0), so at most k controls
score >= threshold (fewer where scores tie). The controls the threshold is set on are those of
``splits`` (all when empty); its false-positive rate is measured on the other controls when
there are any (an honest, held-out estimate), else on the same ones.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from dhs.completeness.surfaces import rate, wilson_interval
from dhs.errors import InputTableError


def control_masks(rows: pd.DataFrame, splits: Sequence[str] = ()) -> tuple[np.ndarray, np.ndarray]:
    """(select, measure): valid controls the threshold is set on, and those its FPR is measured on."""
    ctl = (rows["is_control"].fillna(0).to_numpy() == 1) & rows["valid"].to_numpy()
    if not splits:
        return ctl, ctl
    inside = rows["region_split"].astype(str).isin([str(s) for s in splits]).to_numpy()
    select, other = ctl & inside, ctl & ~inside
    return select, (other if other.any() else select)


def control_scores(rows: pd.DataFrame, mask: np.ndarray) -> np.ndarray:
    """Scores of the controls of ``mask``, -inf where the finder gave none."""
    sc = rows["score"].to_numpy(dtype=float)[mask]
    return np.where(rows["score_ok"].to_numpy()[mask] & np.isfinite(sc), sc, -np.inf)


def threshold_for_fpr(scores: np.ndarray, fpr: float) -> float:
    """The score threshold at which at most floor(fpr n) of ``scores`` are >= it (see above)."""
    s = np.sort(np.asarray(scores, dtype=float))[::-1]
    if s.size == 0:
        raise InputTableError("no valid controls to set the score threshold on: use a tier with controls "
                              "(tier.control_frac > 0) or give completeness.threshold")
    k = int(np.floor(fpr * s.size + 1e-9))
    if k >= s.size:
        return float(s[-1])
    if k == 0 or not np.isfinite(s[k - 1]) or s[k - 1] == s[k]:
        return float(np.nextafter(s[k], np.inf)) if np.isfinite(s[k]) else float(-np.finfo(float).max)
    if not np.isfinite(s[k]):
        return float(s[k - 1])
    return float(0.5 * (s[k - 1] + s[k]))


def rate_interval(k: int, n: int, z: float, name: str) -> dict:
    """{name, name_lo, name_hi, n_<name>, k_<name>}: k / n with its Wilson interval."""
    lo, hi = wilson_interval([k], [n], z)
    return {name: float(rate([k], [n])[0]), f"{name}_lo": float(lo[0]), f"{name}_hi": float(hi[0]),
            f"{name}_k": int(k), f"{name}_n": int(n)}


def purity(prevalence: float, tpr: float | np.ndarray, fpr: float | np.ndarray) -> np.ndarray:
    """Fraction of real lenses among the flagged targets when a fraction ``prevalence`` of the
    targets are lenses: p tpr / (p tpr + (1 - p) fpr); NaN when nothing is flagged."""
    t, f = np.asarray(tpr, dtype=float), np.asarray(fpr, dtype=float)
    num, den = prevalence * t, prevalence * t + (1.0 - prevalence) * f
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _flagged(rows: pd.DataFrame, threshold: float) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return rows["score_ok"].to_numpy() & (rows["score"].to_numpy(dtype=float) >= threshold)


def _injections(rows: pd.DataFrame) -> np.ndarray:
    return (rows["is_control"].fillna(0).to_numpy() == 0) & rows["valid"].to_numpy()


def _point(flagged: np.ndarray, inj: np.ndarray, measure: np.ndarray, z: float, prevalence: float) -> dict:
    out = {**rate_interval(int((flagged & inj).sum()), int(inj.sum()), z, "tpr"),
           **rate_interval(int((flagged & measure).sum()), int(measure.sum()), z, "fpr"),
           "prevalence": float(prevalence)}
    out["purity"] = float(purity(prevalence, out["tpr"], out["fpr"]))
    out["purity_lo"] = float(purity(prevalence, out["tpr_lo"], out["fpr_hi"]))
    out["purity_hi"] = float(purity(prevalence, out["tpr_hi"], out["fpr_lo"]))
    return out


def operating_point(rows: pd.DataFrame, threshold: float, measure: np.ndarray, z: float,
                    prevalence: float) -> dict:
    """TPR (valid injections), FPR (controls of ``measure``) with Wilson intervals (``tpr``,
    ``tpr_lo``, ``tpr_hi``, ``tpr_k``, ``tpr_n``, same for fpr) and the purity at ``prevalence``
    (its interval from the TPR and FPR bounds) at ``threshold``."""
    return {"threshold": float(threshold),
            **_point(_flagged(rows, threshold), _injections(rows), measure, z, prevalence)}


def tpr_at_fpr(rows: pd.DataFrame, fpr_grid: Sequence[float], *, finder: str, z: float, prevalence: float,
               splits: Sequence[str] = ()) -> pd.DataFrame:
    """One row per requested FPR and theta_E/PSF bin (plus 'all'): the threshold set on the controls,
    the measured FPR, and TPR and purity with intervals (columns: dhs.schema.TPR_AT_FPR)."""
    select, measure = control_masks(rows, splits)
    ctl = control_scores(rows, select)
    inj = _injections(rows)
    bins = rows.loc[inj & rows["resolution_bin"].notna().to_numpy(),
                    ["resolution_bin", "resolution_lo", "resolution_hi"]].drop_duplicates().sort_values("resolution_lo")
    groups = [("all", np.nan, np.nan, inj)]
    groups += [(b.resolution_bin, b.resolution_lo, b.resolution_hi,
                inj & (rows["resolution_bin"] == b.resolution_bin).to_numpy()) for b in bins.itertuples()]
    out = []
    for target in fpr_grid:
        t = threshold_for_fpr(ctl, float(target))
        flagged = _flagged(rows, t)
        for label, lo, hi, sel in groups:
            op = _point(flagged, sel, measure, z, prevalence)
            out.append({"finder": finder, "fpr_target": float(target), "resolution_bin": label,
                        "resolution_lo": lo, "resolution_hi": hi, "threshold": t,
                        "n_controls": op["fpr_n"], "n_false_positive": op["fpr_k"], "n_valid": op["tpr_n"],
                        "n_recovered": op["tpr_k"],
                        **{k: v for k, v in op.items() if not k.endswith(("_k", "_n"))}})
    return pd.DataFrame(out)
