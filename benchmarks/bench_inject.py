"""End-to-end stage 4c on the embedded mock survey: stamps per second per core and bytes per stamp.

COSMOS sources, grz, 64x64, default supersampling, cluster=local, direct section reads of the
mock survey (cache.mode=none). Two manifests cut from a 4a debug manifest: dense (about 65 tasks
per brick, like the earlier production run) and sparse (about 4 per brick); each with n_jobs=1
and n_jobs=2. The earlier system's production figure (about 5 stamps/s per vCPU, I/O included)
is the reference.

Usage: python benchmarks/bench_inject.py [--quick]   (last line: RESULT ...)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

EARLIER_STAMPS_PER_S_PER_CORE = 5.0


def compose(overrides):
    from hydra import compose as hcompose
    from hydra import initialize_config_module

    with initialize_config_module(config_module="dhs.conf", version_base=None):
        return hcompose(config_name="config", overrides=overrides)


def run(overrides):
    from dhs.context import make_context
    from dhs.stages import load

    cfg = compose(overrides)
    return load(cfg.stage.name).run(cfg, make_context())


def subsample(manifest: pa.Table, per_brick: int) -> pa.Table:
    """The first ``per_brick`` injections of every brick (task_id order)."""
    t = manifest.filter(pc.equal(manifest.column("is_control"), 0))
    t = t.take(pc.sort_indices(t, [("brickname", "ascending"), ("task_id", "ascending")]))
    bricks = np.asarray(t.column("brickname").to_pylist())
    starts = np.flatnonzero(np.r_[True, bricks[1:] != bricks[:-1]])
    keep = np.concatenate([np.arange(s, min(s + per_brick, e)) for s, e in zip(starts, np.r_[starts[1:], len(bricks)])])
    return t.take(pa.array(keep))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller survey (under 120 s)")
    args = parser.parse_args()
    from dhs import layout
    from dhs.io import datasets as dio

    n_bricks = 12 if args.quick else 24
    tmp = tempfile.mkdtemp(prefix="dhs-bench-inject-")
    base = [f"paths.data_root={tmp}", f"mock_survey.n_bricks={n_bricks}", "mock_survey.galaxies_per_brick=40",
            "tier=debug", "tier.stamp_sizes=[64]", "tier.bandsets=[grz]", "cache.mode=none", "source=cosmos"]
    t0 = time.perf_counter()
    run(["stage=cosmos_bank", *base])
    run(["stage=mock_survey", *base])
    run(["stage=4a", *base])
    setup_s = time.perf_counter() - t0
    cfg = compose(["stage=4c", *base])
    (exp,) = layout.experiment_ids(cfg)
    full = dio.read_dataset(layout.manifest_dir(cfg, exp))
    rows = []
    results = {}
    # Steady state: one untimed run per worker count first loads the compiled kernels, the bank
    # and the imports in this process and in the (reused) worker processes.
    warm = subsample(full, 2)
    wcfg = compose(["stage=4c", *base, "variant=bench_warm"])
    dio.write_shard(warm, layout.manifest_dir(wcfg, exp), "00000")
    dio.mark_success(layout.manifest_dir(wcfg, exp), {"rows": warm.num_rows})
    for n_jobs in (1, 2):
        run(["stage=4c", *base, "variant=bench_warm", f"cluster.n_jobs={n_jobs}", f"inject.run_name=w{n_jobs}",
             "inject.shard_max_tasks=4"])
    for label, per_brick in (("dense", 65), ("sparse", 4)):
        sub = subsample(full, per_brick)
        variant = f"bench_{label}"
        mcfg = compose(["stage=4c", *base, f"variant={variant}"])
        dio.write_shard(sub, layout.manifest_dir(mcfg, exp), "00000")
        dio.mark_success(layout.manifest_dir(mcfg, exp), {"rows": sub.num_rows})
        for n_jobs in (1, 2):
            over = ["stage=4c", *base, f"variant={variant}", f"cluster.n_jobs={n_jobs}",
                    f"inject.run_name=jobs{n_jobs}", "inject.shard_max_tasks=130"]
            t1 = time.perf_counter()
            summary = run(over)
            wall = time.perf_counter() - t1
            n = sub.num_rows
            nbytes = sum(Path(f).stat().st_size for f in dio.data_files(layout.stamps_dir(compose(over), exp)))
            per_core = n / wall / n_jobs
            results[(label, n_jobs)] = (n / wall, per_core, nbytes / n)
            errs = summary["experiments"][exp]["errors"]
            rows.append((label, n_jobs, n, n / len(set(sub.column("brickname").to_pylist())), wall, n / wall,
                         per_core, per_core / EARLIER_STAMPS_PER_S_PER_CORE, nbytes / n / 1024, errs.get("ok", 0)))
    print(f"setup (bank + mock survey of {n_bricks} bricks + 4a): {setup_s:.1f} s; timings after one warm-up run "
          "per worker count (steady state)")
    head = ("manifest", "n_jobs", "stamps", "per brick", "wall s", "stamps/s", "per core", "x earlier",
            "KB/stamp", "ok")
    print("".join(f"{h:>11}" for h in head))
    for r in rows:
        print(f"{r[0]:>11}{r[1]:>11}{r[2]:>11}{r[3]:>11.1f}{r[4]:>11.2f}{r[5]:>11.1f}{r[6]:>11.1f}{r[7]:>11.1f}"
              f"{r[8]:>11.1f}{r[9]:>11}")
    dense1, dense2 = results[("dense", 1)], results[("dense", 2)]
    sparse1 = results[("sparse", 1)]
    print(f"RESULT inject_stamps_per_s_per_core={dense1[1]:.2f} sparse_stamps_per_s_per_core={sparse1[1]:.2f} "
          f"bytes_per_stamp={dense1[2]:.0f} scaling_2_jobs={dense2[0] / dense1[0]:.2f}")


if __name__ == "__main__":
    main()
