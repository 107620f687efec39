"""Stratified allocation of injection configs and controls to galaxies (stage 4a).

Rules (per group = one selection set x one region split, identical for every replicate and for
every experiment of the tier, so stamp sizes and bandsets see the same galaxies):

* Galaxies of a stratum (psf_bin x depth_bin) are ordered by ``mix(rowkey ^ salt("sample",
  split_seed))``: the same inputs and split_seed always give the same order.
* Injection quotas: per-config tiers (debug, grid) ask for ``n_per_config`` galaxies for every grid
  config; total tiers (train, ``n_total_per_split`` set) ask for ``n_total - n_controls``
  injections with the configs cycled (each config gets the total // n_configs, the first
  total % n_configs one more).
* A config's quota is spread over the non-empty strata by water-filling (as equal as the strata
  allow, never more than a stratum holds, so a config never repeats a galaxy); the strata that
  take the remainder rotate from config to config so every non-empty stratum is used.
* Inside a stratum the configs take consecutive blocks of the ordered galaxies, wrapping around
  only when the stratum is exhausted: distinct galaxies as long as the pool allows.
* Controls: per-config tiers add ``round(n_injections * f / (1 - f))`` controls, total tiers
  have ``round(n_total * f)``, so controls are a fraction f of the group's tasks.
  *paired*: the controls are evenly spaced picks among the distinct injection galaxies (the
  same galaxy, no arc); *unpaired*: galaxies are split before sampling into a control pool
  (hashed uniform < f) and an injection pool, and controls are water-filled over the strata of
  the control pool, so no control galaxy ever carries an arc.
* Replicates repeat every slot (controls too): each replicate is a complete, balanced copy.
* When a pool is too small (a config gets fewer than asked, or fewer controls than asked), the
  shortfall is recorded and reported; nothing is duplicated to fill it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dhs import draws
from dhs.errors import ConfigError
from dhs.manifest.candidates import N_STRATA, SPLITS, Candidates


@dataclass
class TierPlan:
    """What a tier asks for (from cfg.tier)."""

    n_configs: int
    n_per_config: int
    n_total_per_split: int | None
    control_frac: float
    controls: str  # paired | unpaired
    replicates: int

    def per_group(self) -> tuple[int, int]:
        """(injections, controls) asked of one group, per replicate."""
        f = self.control_frac
        if self.n_total_per_split is not None:
            n_ctrl = int(round(self.n_total_per_split * f))
            return self.n_total_per_split - n_ctrl, n_ctrl
        n_inj = self.n_configs * self.n_per_config
        return n_inj, n_controls_for(n_inj, f)

    def config_quotas(self, n_inj: int) -> np.ndarray:
        if self.n_total_per_split is None:
            return np.full(self.n_configs, self.n_per_config, dtype=np.int64)
        base, extra = divmod(n_inj, self.n_configs)
        return base + (np.arange(self.n_configs) < extra).astype(np.int64)


def n_controls_for(n_inj: int, f: float) -> int:
    if f >= 1.0:
        raise ConfigError("tier.control_frac=1.0 leaves no injections in a tier with n_per_config; "
                         "use n_total_per_split or a fraction below 1")
    return int(round(n_inj * f / (1.0 - f)))


@dataclass
class Slots:
    """Tasks of one replicate: galaxy (index into Candidates.parent), config (-1: control), set."""

    row: np.ndarray
    config: np.ndarray
    set_index: np.ndarray
    groups: list[dict]

    @property
    def n(self) -> int:
        return len(self.row)


def waterfill_level(counts: np.ndarray, n: int) -> int:
    """Largest q with sum(min(counts, q)) <= n."""
    lo, hi = 0, int(counts.max(initial=0))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if int(np.minimum(counts, mid).sum()) <= n:
            lo = mid
        else:
            hi = mid - 1
    return lo


def quotas(counts: np.ndarray, n_per: np.ndarray) -> np.ndarray:
    """(n_configs, n_strata) allocation: row c sums to min(n_per[c], counts.sum()), a <= counts."""
    counts = np.asarray(counts, dtype=np.int64)
    out = np.zeros((len(n_per), len(counts)), dtype=np.int64)
    for n in np.unique(n_per):
        sel = np.flatnonzero(n_per == n)
        if n >= counts.sum():
            out[sel] = counts
            continue
        q = waterfill_level(counts, int(n))
        base = np.minimum(counts, q)
        out[sel] = base
        r = int(n - base.sum())
        if r:
            elig = np.flatnonzero(counts > q)  # r < len(elig) by the choice of q
            k = np.arange(len(sel))[:, None]
            cols = elig[(k * r + np.arange(r)[None, :]) % len(elig)]
            np.add.at(out, (np.repeat(sel[:, None], r, axis=1), cols), 1)
    return out


def _ordered(rows: np.ndarray, cand: Candidates, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows sorted by (stratum, order key); and the row count of each stratum."""
    key = (cand.stratum[rows].astype(np.uint64) << np.uint64(59)) | (order[rows] >> np.uint64(5))
    srt = rows[np.argsort(key, kind="stable")]
    return srt, np.bincount(cand.stratum[srt], minlength=N_STRATA)


def _blocks(srt: np.ndarray, counts: np.ndarray, quota: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per stratum: configs take consecutive (wrapping) blocks of the ordered galaxies."""
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rows, cfgs = [], []
    for s in np.flatnonzero(quota.sum(axis=0)):
        a = quota[:, s]
        total = int(a.sum())
        cfgs.append(np.repeat(np.arange(len(a), dtype=np.int32), a))
        rows.append(srt[starts[s] + np.arange(total) % counts[s]])
    if not rows:
        return np.zeros(0, np.int64), np.zeros(0, np.int32)
    return np.concatenate(rows), np.concatenate(cfgs)


def allocate(cand: Candidates, plan: TierPlan, split_seed: int) -> Slots:
    """The tasks of one replicate for every (selection set, split) group."""
    order = draws.mix(cand.rowkey ^ draws.salt_key("sample", split_seed))
    pool_u = draws.uniform(cand.rowkey, "control_pool", split_seed)
    f = plan.control_frac
    rows, cfgs, sets, groups = [], [], [], []
    for si, sset in enumerate(cand.sets):
        for k, split in enumerate(SPLITS):
            members = cand.set_rows[si][cand.split_code[cand.set_rows[si]] == k]
            ask_inj, ask_ctrl = plan.per_group()
            g = {"selection_set_id": sset.selection_set_id, "region_split": split,
                 "galaxies": int(len(members)), "asked_injections": ask_inj}
            if len(members) == 0:
                if split in sset.splits:
                    groups.append({**g, "injections": 0, "controls": 0, "asked_controls": ask_ctrl,
                                   "strata": 0})
                continue
            unpaired = plan.controls == "unpaired" and f > 0
            inj_pool = members[pool_u[members] >= f] if unpaired else members
            srt, counts = _ordered(inj_pool, cand, order)
            q = plan.config_quotas(ask_inj)
            inj_rows, inj_cfg = _blocks(srt, counts, quotas(counts, q))
            n_ctrl = ask_ctrl if plan.n_total_per_split is not None else n_controls_for(len(inj_rows), f)
            if n_ctrl and unpaired:
                csrt, ccounts = _ordered(members[pool_u[members] < f], cand, order)
                ctrl_rows, _ = _blocks(csrt, ccounts, quotas(ccounts, np.array([n_ctrl])))
            elif n_ctrl:
                _, first = np.unique(inj_rows, return_index=True)
                distinct = inj_rows[np.sort(first)]
                take = min(n_ctrl, len(distinct))
                ctrl_rows = distinct[(np.arange(take) * len(distinct)) // max(take, 1)]
            else:
                ctrl_rows = np.zeros(0, np.int64)
            per_cfg = np.bincount(inj_cfg, minlength=plan.n_configs)
            groups.append({**g, "injections": int(len(inj_rows)), "controls": int(len(ctrl_rows)),
                           "asked_controls": int(n_ctrl),
                           "strata": int((counts > 0).sum() + 0),
                           "config_shortfall": int(np.maximum(q - per_cfg, 0).sum()),
                           "distinct_injection_galaxies": int(len(np.unique(inj_rows)))})
            rows += [inj_rows, ctrl_rows]
            cfgs += [inj_cfg, np.full(len(ctrl_rows), -1, np.int32)]
            sets.append(np.full(len(inj_rows) + len(ctrl_rows), si, np.int32))
    if not rows:
        return Slots(np.zeros(0, np.int64), np.zeros(0, np.int32), np.zeros(0, np.int32), groups)
    return Slots(np.concatenate(rows).astype(np.int64), np.concatenate(cfgs).astype(np.int32),
                 np.concatenate(sets), groups)


def shortfall_warnings(slots: Slots) -> list[str]:
    out = []
    for g in slots.groups:
        where = f"selection set {g['selection_set_id']!r}, split {g['region_split']}"
        if g["galaxies"] == 0:
            out.append(f"{where}: no galaxies left after the filters; the group has no tasks")
            continue
        if g.get("config_shortfall"):
            out.append(f"{where}: only {g['galaxies']} galaxies; {g['config_shortfall']} injection "
                       "slots could not be filled without repeating a galaxy within a config")
        if g["controls"] < g["asked_controls"]:
            out.append(f"{where}: {g['controls']} controls instead of {g['asked_controls']} "
                       "(control pool too small)")
    return out
