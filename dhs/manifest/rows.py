"""Turning allocated slots into manifest rows (dhs.schema.MANIFEST), one brick shard at a time.

Rows of a shard are sorted by brickname, then task_id, so stage 4c can shard by brick. Every
column is computed with NumPy/pyarrow over whole arrays; nothing loops over rows in Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

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
    bucket: int = 0         # range bucket holding its galaxies (BucketedBuilder)


def shard_plan(codes: np.ndarray, bricknames: pa.Array, replicates: int, max_tasks: int) -> list[Shard]:
    """Shards of the slots whose galaxies lie in bricks ``codes`` (ranks into ``bricknames``)."""
    order = np.argsort(codes, kind="stable")
    codes = codes[order]
    return [Shard(f"{k:05d}-{bricknames[int(codes[lo])].as_py()}", order[lo:hi], int(hi - lo) * replicates)
            for k, (lo, hi) in enumerate(brick_shards(codes, max_tasks, tasks_per_row=replicates))]


def brick_counts(codes: np.ndarray, bricknames: pa.Array, replicates: int) -> tuple[pa.Array, np.ndarray]:
    """(brickname, tasks per experiment) of every brick with tasks."""
    n = np.bincount(codes, minlength=len(bricknames))
    used = np.flatnonzero(n)
    return bricknames.take(pa.array(used)), n[used] * replicates


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

    def shards(self, max_tasks: int) -> list[Shard]:
        """Consecutive brick ranges holding about ``max_tasks`` tasks each (whole bricks)."""
        return shard_plan(self.cand.brick_code[self.slots.row], self.cand.bricknames, self.replicates,
                          max_tasks)

    def brick_counts(self) -> tuple[pa.Array, np.ndarray]:
        """(brickname, tasks per experiment) of every brick with tasks."""
        return brick_counts(self.cand.brick_code[self.slots.row], self.cand.bricknames, self.replicates)

    def shard_table(self, exp: Experiment, shard: Shard) -> pa.Table:
        """Manifest rows of one shard."""
        return self.table(exp, shard.slot_index)

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


class BucketedBuilder:
    """TaskBuilder over candidate buckets (``dhs.manifest.buckets``): shards are planned from the
    slots' brick codes; the galaxies of consecutive shards (about ``bucket_rows`` slots) are
    routed into one range bucket, and a shard's rows are built from its range bucket alone."""

    def __init__(self, bc: Any, slots: Slots, grid: Grid, replicates: int, seed_base: int,
                 bucket_rows: int):
        self.bc, self.slots, self.grid = bc, slots, grid
        self.replicates, self.seed_base, self.bucket_rows = int(replicates), int(seed_base), int(bucket_rows)
        cand = bc.cand
        cand.rowkey, cand.stratum, cand.set_rows = cand.rowkey[:0], cand.stratum[:0], []  # allocation only
        self.codes = cand.brick_code[slots.row]
        self.plan: list[Shard] = []
        self._loaded: tuple[int, Any, dict] | None = None

    def brick_counts(self) -> tuple[pa.Array, np.ndarray]:
        return brick_counts(self.codes, self.bc.cand.bricknames, self.replicates)

    def shards(self, max_tasks: int) -> list[Shard]:
        """The shards of TaskBuilder.shards, each assigned to a range bucket (routed here)."""
        from dhs.manifest.buckets import MAX_BUCKETS

        plan = shard_plan(self.codes, self.bc.cand.bricknames, self.replicates, max_tasks)
        target = max(self.bucket_rows, -(-2 * self.slots.n // MAX_BUCKETS), 1)  # <= MAX_BUCKETS + 1
        group, filled = 0, 0
        for s in plan:
            if filled and filled + len(s.slot_index) > target:
                group, filled = group + 1, 0
            s.bucket, filled = group, filled + len(s.slot_index)
        self.plan = plan
        self._route()
        return plan

    def _route(self) -> None:
        from dhs.io import storage
        from dhs.manifest.buckets import CAND, BucketWriters

        bc, cand = self.bc, self.bc.cand
        group_of_code = np.full(len(cand.bricknames), -1, np.int64)
        for s in self.plan:
            group_of_code[self.codes[s.slot_index]] = s.bucket
        used = np.zeros(len(cand.brick_code), bool)
        used[self.slots.row] = True
        self.ranges = BucketWriters(bc.writers.root, "r")
        for i, b in enumerate(bc.buckets):
            table = bc.writers.read(b)
            g = bc.index[bc.offsets[i]:bc.offsets[i + 1]]
            sel = used[g]
            table = table.filter(pa.array(sel)).append_column(CAND, pa.array(g[sel]))
            self.ranges.write(table, group_of_code[cand.brick_code[g[sel]]])
            storage.remove(bc.writers.path(b))
        self.ranges.close()

    def shard_table(self, exp: Experiment, shard: Shard) -> pa.Table:
        """Manifest rows of one shard, from the galaxies of its range bucket."""
        if self._loaded is None or self._loaded[0] != shard.bucket:
            self._loaded = None
            self._loaded = (shard.bucket, *self._load(shard.bucket))
        _, builder, pos = self._loaded
        lo, hi = pos[shard.name]
        return builder.table(exp, np.arange(lo, hi))

    def _load(self, group: int) -> tuple[TaskBuilder, dict[str, tuple[int, int]]]:
        from dhs.manifest.buckets import CAND

        members = [s for s in self.plan if s.bucket == group]
        sub = np.concatenate([s.slot_index for s in members])
        stops = np.cumsum([len(s.slot_index) for s in members])
        pos = {s.name: (int(b - len(s.slot_index)), int(b)) for s, b in zip(members, stops)}
        table = self.ranges.read(group)
        table = table.take(pc.sort_indices(table, [(CAND, "ascending")]))
        cidx = column_numpy(table, CAND, np.int64)
        full = self.bc.cand
        local = Candidates(parent=table, sets=full.sets, set_rows=[], split_code=full.split_code[cidx],
                           stratum=full.stratum, rowkey=full.rowkey, brick_code=full.brick_code[cidx],
                           bricknames=full.bricknames, edges=full.edges, funnel=[], warnings=[])
        slots = Slots(np.searchsorted(cidx, self.slots.row[sub]), self.slots.config[sub],
                      self.slots.set_index[sub], [])
        return TaskBuilder(local, slots, self.grid, self.replicates, self.seed_base), pos
