"""Turning allocated slots into manifest rows (dhs.schema.MANIFEST), one brick shard at a time.

Rows of a shard are sorted by brickname, then task_id, so stage 4c can shard by brick. Every
column is computed with NumPy/pyarrow over whole arrays; nothing loops over rows in Python.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

import dhs
from dhs import draws, schema
from dhs.layout import Experiment
from dhs.manifest import priors
from dhs.manifest.allocation import Slots
from dhs.manifest.grids import CONTROL, Grid
from dhs.manifest.candidates import SPLITS, Candidates
from dhs.manifest.shards import brick_shards
from dhs.io.tables import column_numpy

AB_ZP_NMGY = 22.5
LENS_MODEL = "SIE"
#: Manifest columns copied from the candidate galaxies.
COPIED = ("region_id", "region_split", "brickname", "ra", "dec", "zmag", "rmag", "w1mag", "rz", "zw1",
          "psfsize_g", "psfsize_r", "psfsize_z", "psfdepth_r", "ebv", "psf_bin", "depth_bin")
#: Frozen per-task draw columns: finite for injections, null for controls (schema.MANIFEST_CONTROL_NULL).
FROZEN = ("src_x_arcsec", "src_y_arcsec", "src_phi_rad", "shear_phi_rad", "src_gr", "src_rz",
          "src_mag_r", "lens_e", "lens_phi_rad")


@dataclass
class Shard:
    name: str
    slot_index: np.ndarray  # indices into Slots (sorted by brick)
    n_tasks: int


class TaskBuilder:
    """Everything that does not change between shards, precomputed once per run."""

    def __init__(self, cand: Candidates, slots: Slots, grid: Grid, replicates: int, seed_base: int):
        self.cand, self.slots, self.grid = cand, slots, grid
        self.replicates, self.seed_base = int(replicates), int(seed_base)
        self.copied = cand.parent.select(list(COPIED))
        self.brick_hash = draws.hash_strings(cand.parent.column("brickname"))
        self.ra_bits = draws.float_bits(column_numpy(cand.parent, "ra"))
        self.dec_bits = draws.float_bits(column_numpy(cand.parent, "dec"))
        self.rmag = column_numpy(cand.parent, "rmag")
        names = cand.parent.column_names
        self.shape = tuple(column_numpy(cand.parent, c) if c in names else np.full(cand.parent.num_rows, np.nan)
                           for c in ("shape_e1", "shape_e2"))
        self.split_hash = draws.hash_strings(list(SPLITS))[cand.split_code]
        ids = [s.selection_set_id for s in cand.sets]
        self.set_str = {k: pa.array([getattr(s, k) for s in cand.sets], pa.string())
                        for k in ("selection_set_id", "selection_strategy", "ranking_mode")}
        self.set_hash = draws.hash_strings(ids) if ids else np.zeros(0, np.uint64)
        self.config_str = pa.array(list(grid.config_ids) + [CONTROL], pa.string())
        self.config_hash = draws.hash_strings(self.config_str)
        zero = np.zeros(1)
        self.config_vals = {
            "theta_e_arcsec": np.concatenate([grid.theta_e, zero]),
            "src_dmag": np.concatenate([grid.src_dmag, zero]),
            "src_reff_arcsec": np.concatenate([grid.src_reff, zero]),
            "src_e": np.concatenate([grid.src_e, zero]),
            "shear": np.concatenate([grid.shear, zero]),
        }
        self.order = np.argsort(cand.brick_code[slots.row], kind="stable")

    def shards(self, max_tasks: int) -> list[Shard]:
        """Consecutive brick ranges holding about ``max_tasks`` tasks each (whole bricks)."""
        codes = self.cand.brick_code[self.slots.row[self.order]]
        return [Shard(f"{k:05d}-{self.cand.bricknames[int(codes[lo])].as_py()}", self.order[lo:hi],
                      int(hi - lo) * self.replicates)
                for k, (lo, hi) in enumerate(brick_shards(codes, max_tasks, tasks_per_row=self.replicates))]

    def brick_counts(self) -> tuple[pa.Array, np.ndarray]:
        """(brickname, tasks per experiment) of every brick with tasks."""
        n = np.bincount(self.cand.brick_code[self.slots.row], minlength=len(self.cand.bricknames))
        used = np.flatnonzero(n)
        return self.cand.bricknames.take(pa.array(used)), n[used] * self.replicates

    def table(self, exp: Experiment, slot_index: np.ndarray) -> pa.Table:
        """Manifest rows of the given slots for every replicate, sorted by (brickname, task_id)."""
        R = self.replicates
        sl = np.repeat(slot_index, R)
        rep = np.tile(np.arange(R, dtype=np.int64), len(slot_index))
        row = self.slots.row[sl]
        cfg = self.slots.config[sl].astype(np.int64)
        ctrl = cfg < 0
        cfg = np.where(ctrl, len(self.grid), cfg)
        set_i = self.slots.set_index[sl]
        hi, lo = draws.task_keys({
            "experiment_id": np.uint64(draws.hash_str(exp.experiment_id)),
            "selection_set_id": self.set_hash[set_i], "region_split": self.split_hash[row],
            "brickname": self.brick_hash[row], "ra": self.ra_bits[row], "dec": self.dec_bits[row],
            "config_id": self.config_hash[cfg], "replicate": rep.astype(np.uint64),
            "is_control": ctrl.astype(np.uint64),
        })
        srt = np.lexsort((lo, hi, self.cand.brick_code[row]))
        row, cfg, ctrl, set_i, rep, hi, lo = (a[srt] for a in (row, cfg, ctrl, set_i, rep, hi, lo))
        n = len(row)
        cols: dict[str, pa.Array] = {"task_id": draws.hex_ids(hi, lo),
                                     "experiment_id": _const(exp.experiment_id, n)}
        set_idx = pa.array(set_i)
        for k, arr in self.set_str.items():
            cols[k] = arr.take(set_idx)
        copied = self.copied.take(pa.array(row))
        for name in COPIED:
            cols[name] = copied.column(name)
        cols["config_id"] = self.config_str.take(pa.array(cfg))
        for name, vals in self.config_vals.items():
            cols[name] = pa.array(vals[cfg], mask=ctrl)
        cols["stamp_size"] = pa.array(np.full(n, exp.stamp_size, np.int32))
        cols["bandset"] = _const(exp.bandset, n)
        cols["replicate"] = pa.array(rep.astype(np.int32))
        cols["is_control"] = pa.array(ctrl.astype(np.int32))
        d = draws.frozen_draws(hi, self.config_vals["theta_e_arcsec"][cfg], self.seed_base)
        cols["task_seed64"] = pa.array(d.pop("task_seed64"))
        g, seed = self.grid, self.seed_base
        if g.source_mag == "prior":
            d["src_mag_r"] = priors.source_mag_r(hi, g.priors, seed)
            cols["src_dmag"] = pa.array(d["src_mag_r"] - self.rmag[row], mask=ctrl)
        else:
            d["src_mag_r"] = self.rmag[row] + self.config_vals["src_dmag"][cfg]
        if g.source_size == "prior":
            cols["src_reff_arcsec"] = pa.array(priors.source_reff(hi, g.priors, seed), mask=ctrl)
        d["lens_e"], d["lens_phi_rad"] = priors.lens_shape(hi, g.priors, seed, g.lens_shape,
                                                           self.shape[0][row], self.shape[1][row])
        for name in FROZEN:
            cols[name] = pa.array(d[name], mask=ctrl)
        cols["lens_model"] = pa.DictionaryArray.from_arrays(
            pa.array(ctrl.astype(np.int8)), pa.array([LENS_MODEL, CONTROL])).cast(pa.string())
        cols["ab_zp_nmgy"] = pa.array(np.full(n, AB_ZP_NMGY))
        cols["pipeline_version"] = _const(dhs.__version__, n)
        sch = schema.arrow_schema(schema.MANIFEST)
        return pa.Table.from_arrays([cols[f.name].cast(f.type) for f in sch], schema=sch)


def _const(value: str, n: int) -> pa.Array:
    return pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int8)), pa.array([value])).cast(pa.string())
