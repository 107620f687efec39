"""validate target=4a: data-quality checks of the task manifests of the configured tier.

``validate_manifest(checks)`` returns ``{check name: {"ok": bool, "detail": str}}``; the
validate stage prints and stores it. Expected values (seeds, tier settings) come from the stage
record ``_stage_config.json`` written by stage 4a, so a manifest is checked against what built it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from typing import Optional

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dhs import draws, schema
from dhs.layout import Experiment
from dhs.manifest import priors
from dhs.manifest.grids import AXES, CONTROL, Grid, build_grid, grid_from_record
from dhs.io import datasets as dio
from dhs.io import storage
from dhs.manifest.rows import FROZEN, LENS_MODEL

SAMPLE = 2000
#: Tolerance of the control fraction: this many binomial standard deviations plus rounding.
Z_TOL = 4.0


def _check(out: dict, name: str, ok: bool, detail: str) -> None:
    prev = out.get(name)
    if prev is None:
        out[name] = {"ok": bool(ok), "detail": detail}
    else:
        prev["ok"] = prev["ok"] and bool(ok)
        prev["detail"] = f"{prev['detail']}; {detail}"


@dataclass(frozen=True)
class ManifestChecks:
    """What the 4a checks compare against: the stage record (``record_uri``), the manifests
    (experiment, dataset folder) of ``tier``, the configured tier settings (used when the record
    has none), the configured seeds, and whether the whole tier is checked (not one experiment)."""

    record_uri: str
    manifests: tuple[tuple[Experiment, str], ...]
    tier: str
    tier_settings: dict
    split_seed: int
    seed_base: int
    whole_tier: bool = True
    grid: Optional[Grid] = None  # the configured grid (used when the record has none)


def _record(uri: str) -> dict:
    return json.loads(storage.read_text(uri)) if storage.exists(uri) else {}


def validate_manifest(c: ManifestChecks) -> dict:
    """Run every 4a check on the manifests of ``c``."""
    out: dict[str, dict] = {}
    rec = _record(c.record_uri)
    seeds = rec.get("seeds", {})
    ok_seeds = isinstance(seeds.get("split_seed"), int) and isinstance(seeds.get("seed_base"), int)
    _check(out, "seeds_recorded", ok_seeds,
           f"{c.record_uri}: seeds={seeds or 'missing'}"
           + ("" if not ok_seeds or seeds.get("split_seed") == c.split_seed
              else f" (config has split_seed={c.split_seed})"))
    tier = rec.get("tiers", {}).get(c.tier, {})
    settings = tier.get("settings") or {}
    if not settings:
        _check(out, "stage_record", False, f"no settings of tier {c.tier} in the stage record")
        settings = dict(c.tier_settings)
    seed_base = int(seeds.get("seed_base", c.seed_base))
    grid = grid_from_record(tier["grid"]) if tier.get("grid") else c.grid
    if grid is None:  # neither recorded nor configured: the earlier system's draw modes
        grid = build_grid("unknown", {a: [0.0] for a in AXES})
    sizes_seen, bands_seen = set(), set()
    for exp, dataset in c.manifests:
        if not dio.is_complete(dataset):
            _check(out, "complete", False, f"{exp.experiment_id}: no {dio.SUCCESS} in {dataset}")
            continue
        _check(out, "complete", True, f"{exp.experiment_id}: complete")
        table = dio.read_dataset(dataset)
        _validate_table(out, exp, table, settings, seed_base, grid)
        sizes_seen |= set(pc.unique(table.column("stamp_size")).to_pylist())
        bands_seen |= set(pc.unique(table.column("bandset")).to_pylist())
    want_sizes = {int(s) for s in settings.get("stamp_sizes", [])}
    want_bands = {str(b) for b in settings.get("bandsets", [])}
    if c.whole_tier:
        _check(out, "stamp_sizes", sizes_seen == want_sizes,
               f"found {sorted(sizes_seen)}, configured {sorted(want_sizes)}")
        _check(out, "bandsets", bands_seen == want_bands,
               f"found {sorted(bands_seen)}, configured {sorted(want_bands)}")
    return out


def _validate_table(out: dict, exp: Experiment, t: pa.Table, settings: dict, seed_base: int, grid: Grid) -> None:
    name = exp.experiment_id
    n = t.num_rows
    want = {c.name: c.type for c in schema.MANIFEST}
    got = {f.name: f.type for f in t.schema}
    bad = [c for c in want if c not in got or (c != "region_split" and got[c] != want[c])]
    _check(out, "schema", not bad and n > 0, f"{name}: {n} rows" + (f", bad columns {bad}" if bad else ""))
    if n == 0 or bad:
        return
    m = Experiment.parse(name)
    ids = set(pc.unique(t.column("experiment_id")).to_pylist())
    sizes = set(pc.unique(t.column("stamp_size")).to_pylist())
    bands = set(pc.unique(t.column("bandset")).to_pylist())
    ok = m is not None and ids == {name} and sizes == {m.stamp_size} and bands == {m.bandset}
    _check(out, "experiment_id_pattern", ok,
           f"{name}: rows name {sorted(ids)}, stamp sizes {sorted(sizes)}, bandsets {sorted(bands)}")
    n_unique = pc.count_distinct(t.column("task_id")).as_py()
    _check(out, "task_id_unique", n_unique == n, f"{name}: {n - n_unique} duplicate task_id of {n}")

    ctrl = t.column("is_control").to_numpy() == 1
    f = float(settings.get("control_frac", 0.0))
    frac = float(ctrl.mean())
    groups = max(len(t.group_by(["selection_set_id", "region_split"]).aggregate([])), 1)
    tol = Z_TOL * math.sqrt(max(f * (1 - f), 0.0) / n) + groups / n
    _check(out, "control_fraction", abs(frac - f) <= tol,
           f"{name}: {frac:.4f} controls vs configured {f:.4f} (tolerance {tol:.4f})")

    reps = t.column("replicate").to_numpy()
    want_r = int(settings.get("replicates", 1))
    counts = np.bincount(reps, minlength=want_r)
    _check(out, "replicates", len(counts) == want_r and bool((counts == counts[0]).all()),
           f"{name}: rows per replicate {counts.tolist()}, configured {want_r}")

    frozen = {c: t.column(c).to_numpy() for c in schema.MANIFEST_CONTROL_NULL}
    inj = ~ctrl
    fin = all(np.isfinite(v[inj]).all() for v in frozen.values()) and bool((frozen["theta_e_arcsec"][inj] > 0).all())
    nulls = all(t.column(c).null_count == int(ctrl.sum()) for c in schema.MANIFEST_CONTROL_NULL)
    lm = t.column("lens_model").to_numpy(zero_copy_only=False)
    cid = t.column("config_id").to_numpy(zero_copy_only=False)
    labels = bool((lm[ctrl] == CONTROL).all() and (cid[ctrl] == CONTROL).all()
                  and (lm[inj] == LENS_MODEL).all() and (cid[inj] != CONTROL).all())
    _check(out, "frozen_columns", fin and nulls and labels,
           f"{name}: injections finite={fin}, controls null={nulls}, labels consistent={labels}")
    r = np.hypot(frozen["src_x_arcsec"], frozen["src_y_arcsec"])
    if grid.lens_shape == "uniform":
        e_lo, e_hi = 0.05, 0.5
    else:  # e = (1 - q) / (1 + q) of q in the prior's range
        q_lo, q_hi = grid.priors.lens_q_range
        e_lo, e_hi = (1 - q_hi) / (1 + q_hi) - 1e-12, (1 - q_lo) / (1 + q_lo) + 1e-12
    in_range = bool(
        (r[inj] <= 0.8 * frozen["theta_e_arcsec"][inj] + 1e-9).all()
        and ((frozen["lens_e"][inj] >= e_lo) & (frozen["lens_e"][inj] <= e_hi)).all()
        and all(((frozen[a][inj] >= 0) & (frozen[a][inj] < np.pi)).all()
                for a in ("src_phi_rad", "shear_phi_rad", "lens_phi_rad"))
        and all(((frozen[a][inj] >= -0.5) & (frozen[a][inj] <= 1.5)).all() for a in ("src_gr", "src_rz")))
    _check(out, "draw_ranges", in_range, f"{name}: offsets, ellipticities, angles, colours in range={in_range}")
    _recompute(out, name, t, seed_base, grid)


def _recompute(out: dict, name: str, t: pa.Table, seed_base: int, grid: Grid) -> None:
    """Recompute the task ids and draws of an evenly spaced sample of rows (the lens shape
    only where it does not depend on the parent's shape columns: grid.lens_shape != light)."""
    idx = np.unique(np.linspace(0, t.num_rows - 1, min(SAMPLE, t.num_rows)).astype(np.int64))
    s = t.take(pa.array(idx))
    ctrl = s.column("is_control").to_numpy() == 1
    hi, lo = draws.task_keys({
        "experiment_id": draws.hash_strings(s.column("experiment_id")),
        "selection_set_id": draws.hash_strings(s.column("selection_set_id")),
        "region_split": draws.hash_strings(s.column("region_split")),
        "brickname": draws.hash_strings(s.column("brickname")),
        "ra": draws.float_bits(s.column("ra").to_numpy()), "dec": draws.float_bits(s.column("dec").to_numpy()),
        "config_id": draws.hash_strings(s.column("config_id")),
        "replicate": s.column("replicate").to_numpy().astype(np.uint64),
        "is_control": ctrl.astype(np.uint64),
    })
    ids_ok = draws.hex_ids(hi, lo).equals(s.column("task_id").combine_chunks().cast(pa.string()))
    try:
        key = draws.draw_key_from_task_ids(s.column("task_id"))
    except ValueError as exc:
        _check(out, "draws_recomputed", False, f"{name}: {exc}")
        return
    d = draws.frozen_draws(key, s.column("theta_e_arcsec").to_numpy(), seed_base)
    if grid.source_mag == "prior":
        d["src_mag_r"] = priors.source_mag_r(key, grid.priors, seed_base)
    else:
        d["src_mag_r"] = s.column("rmag").to_numpy() + s.column("src_dmag").to_numpy()
    d["lens_e"], d["lens_phi_rad"] = priors.lens_shape(key, grid.priors, seed_base, grid.lens_shape)
    cols = [c for c in FROZEN if grid.lens_shape != "light" or c not in ("lens_e", "lens_phi_rad")]
    if grid.source_size == "prior":
        d["src_reff_arcsec"] = priors.source_reff(key, grid.priors, seed_base)
        cols.append("src_reff_arcsec")
    worst = []
    for col in cols:
        exp_v = np.where(ctrl, np.nan, d[col])
        got = s.column(col).to_numpy()
        if not np.allclose(got, exp_v, rtol=1e-12, atol=1e-12, equal_nan=True):
            worst.append(col)
    seed_ok = bool((s.column("task_seed64").to_numpy() == d["task_seed64"]).all())
    ok = ids_ok and not worst and seed_ok
    _check(out, "draws_recomputed", ok,
           f"{name}: {len(idx)} rows; task_id from fields {'matches' if ids_ok else 'DIFFERS'}; "
           + (f"draws differ in {worst}" if worst else "draws match")
           + ("" if seed_ok else "; task_seed64 differs"))
