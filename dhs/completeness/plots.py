"""PNG plots of completeness surfaces and data-quality reports (matplotlib, Agg backend).

matplotlib is imported inside the functions; each function writes one PNG through
dhs.io.storage (local or s3://) and returns its path.
"""

from __future__ import annotations

import io
from typing import Any, Optional, Sequence

import numpy as np
import pandas as pd

from dhs.io import storage

SPLIT_ORDER = ("all", "train", "val", "test")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str) -> str:
    plt = _pyplot()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    storage.write_bytes_atomic(path, buf.getvalue())
    return path


def _band(ax: Any, x: np.ndarray, df: pd.DataFrame, label: str, color: Any, prefix: str = "completeness",
          lw: float = 1.8) -> None:
    """A line with markers and its Wilson interval as a shaded band."""
    y = df[prefix].to_numpy(dtype=float)
    ax.plot(x, y, "-o", color=color, lw=lw, ms=4, label=label)
    ax.fill_between(x, df[f"{prefix}_lo"].to_numpy(dtype=float), df[f"{prefix}_hi"].to_numpy(dtype=float),
                    color=color, alpha=0.18, lw=0)


def _finish(ax: Any, title: str, xlabel: str, subtitle: str, legend_title: Optional[str] = None) -> None:
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("completeness (recovered / valid)")
    ax.set_xlabel(xlabel)
    ax.set_title(f"{title}\n{subtitle}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(title=legend_title, fontsize=8, title_fontsize=8, loc="best")


def seeing_wall(agg: pd.DataFrame, path: str, *, experiment: str, recovery: str,
                split: str = "all", cl: float = 0.95) -> str:
    """Completeness vs theta_E (arcsec), one line per r-band PSF FWHM bin, Wilson bands."""
    plt = _pyplot()
    d = agg[(agg["region_split"] == split) & agg["psf_bin_arcsec"].notna()]
    bins = sorted(d["psf_bin_arcsec"].unique())
    fig, ax = plt.subplots(figsize=(7.5, 5))
    cmap = plt.get_cmap("viridis")
    for i, b in enumerate(bins):
        sub = d[d["psf_bin_arcsec"] == b].sort_values("theta_e_arcsec")
        sub = sub[sub["n_valid"] > 0]
        if sub.empty:
            continue
        color = cmap(i / max(len(bins) - 1, 1))
        _band(ax, sub["theta_e_arcsec"].to_numpy(dtype=float), sub,
              f"{b:.1f}-{b + 0.1:.1f}\" (n={int(sub['n_valid'].sum())})", color)
    if not bins:
        ax.text(0.5, 0.5, "no valid injections", ha="center", transform=ax.transAxes)
    _finish(ax, f"Seeing wall: completeness vs Einstein radius by PSF ({experiment}, split={split})",
            "Einstein radius theta_E (arcsec)",
            f"recovered: {recovery}; bands: {cl:.0%} Wilson intervals", "r-band PSF FWHM")
    return _save(fig, path)


def completeness_by_split(agg: pd.DataFrame, x: str, path: str, *, experiment: str, recovery: str,
                          xlabel: str, title: str, labels: Optional[str] = None, cl: float = 0.95) -> str:
    """Completeness vs one binned quantity ``x``, one line per split (all, train, val, test).

    ``labels``: a string column to use as categorical tick labels (e.g. resolution_bin).
    """
    plt = _pyplot()
    d = agg[agg[x].notna() & (agg["n_valid"] > 0)]
    fig, ax = plt.subplots(figsize=(7.5, 5))
    colors = {"all": "black", "train": "tab:blue", "val": "tab:orange", "test": "tab:green"}
    splits = [s for s in SPLIT_ORDER if s in set(d["region_split"])] + \
             sorted(set(d["region_split"]) - set(SPLIT_ORDER))
    ticks = sorted(d[x].unique())
    for s in splits:
        sub = d[d["region_split"] == s].sort_values(x)
        xs = sub[x].to_numpy(dtype=float)
        if labels:
            xs = np.searchsorted(np.asarray(ticks, dtype=float), xs).astype(float)
        _band(ax, xs, sub, f"{s} (n={int(sub['n_valid'].sum())})", colors.get(s, None),
              lw=2.5 if s == "all" else 1.4)
    if labels and ticks:
        names = d.drop_duplicates(x).sort_values(x)[labels].tolist()
        ax.set_xticks(range(len(ticks)))
        ax.set_xticklabels(names)
    if d.empty:
        ax.text(0.5, 0.5, "no valid injections", ha="center", transform=ax.transAxes)
    _finish(ax, f"{title} ({experiment})", xlabel,
            f"recovered: {recovery}; bands: {cl:.0%} Wilson intervals", "region split")
    return _save(fig, path)


def arc_snr_histograms(snr_by_split: dict[str, np.ndarray], path: str, *, experiment: str) -> str:
    """Histogram of arc SNR (log axis) per split, injections with valid metrics."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 5))
    finite = [v[np.isfinite(v) & (v > 0)] for v in snr_by_split.values()]
    allv = np.concatenate(finite) if finite else np.array([])
    if allv.size:
        lo, hi = max(allv.min(), 1e-2), max(allv.max(), 1.0)
        edges = np.logspace(np.log10(lo), np.log10(hi) + 1e-6, 40)
        for (split, _), v in zip(snr_by_split.items(), finite):
            ax.hist(v, bins=edges, histtype="step", lw=1.6, label=f"{split} (n={v.size})")
        ax.set_xscale("log")
        for ref in (1, 10, 50):
            ax.axvline(ref, color="grey", ls=":", lw=1)
        ax.legend(title="region split", fontsize=8)
    else:
        ax.text(0.5, 0.5, "no positive arc SNR values", ha="center", transform=ax.transAxes)
    ax.set_xlabel("arc SNR (r band, sum over arc pixels)")
    ax.set_ylabel("injections")
    ax.set_title(f"Arc SNR per split ({experiment})\ndotted lines: SNR 1, 10, 50", fontsize=10)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def hlr_intrinsic_vs_lensed(intrinsic: np.ndarray, lensed: np.ndarray, path: str, *, experiment: str,
                            theta_e: Optional[np.ndarray] = None) -> str:
    """Scatter of lensed-arc half-light radius vs intrinsic source half-light radius (arcsec)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    ok = np.isfinite(intrinsic) & np.isfinite(lensed)
    if ok.any():
        c = theta_e[ok] if theta_e is not None else None
        sc = ax.scatter(intrinsic[ok], lensed[ok], c=c, s=8, cmap="plasma", alpha=0.7)
        if c is not None:
            fig.colorbar(sc, ax=ax, label="theta_E (arcsec)")
        top = float(max(np.nanmax(intrinsic[ok]), np.nanmax(lensed[ok]))) * 1.05
        ax.plot([0, top], [0, top], color="grey", ls="--", lw=1, label="lensed = intrinsic")
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no rows with both half-light radii", ha="center", transform=ax.transAxes)
    ax.set_xlabel("intrinsic source half-light radius (arcsec)")
    ax.set_ylabel("lensed arc half-light radius about the lens (arcsec)")
    ax.set_title(f"Half-light radius: intrinsic vs lensed ({experiment})", fontsize=10)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def completeness_plots(surf: dict, plot_dir: str, *, experiment: str, recovery: str,
                       cl: float = 0.95) -> list[str]:
    """The three standard 4d plots: seeing wall, vs theta_E/PSF, vs depth."""
    paths = [
        seeing_wall(surf["theta_e_psf"]["aggregate"], storage.join(plot_dir, "seeing_wall_theta_e_by_psf.png"),
                    experiment=experiment, recovery=recovery, cl=cl),
        completeness_by_split(surf["resolution"]["aggregate"], "resolution_lo",
                              storage.join(plot_dir, "completeness_vs_resolution.png"),
                              experiment=experiment, recovery=recovery, labels="resolution_bin",
                              xlabel="theta_E / PSF FWHM (r band)", title="Completeness vs resolution", cl=cl),
        completeness_by_split(surf["depth"]["aggregate"], "depth_bin_mag",
                              storage.join(plot_dir, "completeness_vs_depth.png"),
                              experiment=experiment, recovery=recovery,
                              xlabel="r-band 5-sigma point-source depth (AB mag, 0.25 mag bins)",
                              title="Completeness vs depth", cl=cl),
    ]
    return paths


def tpr_at_fpr_plot(curves: pd.DataFrame, path: str, *, experiment: str, recovery: str, cl: float = 0.95) -> str:
    """True-positive rate vs the false-positive rate of the controls (log axis), one line per
    theta_E/PSF bin and one for every injection; Wilson bands on the TPR."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 5))
    cmap = plt.get_cmap("viridis")
    labels = [b for b in dict.fromkeys(curves["resolution_bin"]) if b != "all"]
    for i, label in enumerate(["all"] + labels):
        sub = curves[(curves["resolution_bin"] == label) & (curves["n_valid"] > 0)].sort_values("fpr_target")
        if sub.empty:
            continue
        color = "black" if label == "all" else cmap(i / max(len(labels), 1))
        _band(ax, sub["fpr_target"].to_numpy(dtype=float), sub, f"{label} (n={int(sub['n_valid'].iloc[0])})",
              color, prefix="tpr", lw=2.5 if label == "all" else 1.4)
    ax.set_xscale("log")
    _finish(ax, f"Completeness at a false-positive rate set on the controls ({experiment})",
            "false-positive rate of the controls (threshold set for it)",
            f"finder: {recovery.split(':')[0]}; bands: {cl:.0%} Wilson intervals", "theta_E / PSF FWHM")
    ax.set_ylabel("true-positive rate (completeness)")
    return _save(fig, path)


def hist_counts(values: Sequence[float], edges: Sequence[float]) -> list[int]:
    """Histogram counts of finite values (for JSON reports)."""
    v = np.asarray(values, dtype=float)
    return np.histogram(v[np.isfinite(v)], bins=np.asarray(edges, dtype=float))[0].astype(int).tolist()
