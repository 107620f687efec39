"""Stage 4a throughput: build a synthetic parent catalog of N rows and time the manifest build.

    .venv/bin/python benchmarks/bench_manifest.py --quick          # N = 1 M, about 2.4 M tasks
    .venv/bin/python benchmarks/bench_manifest.py --n-parent 20000000 --n-total-per-split 2575000 \
        --stamp-sizes 64,96 --bandsets grz --sets 1                 # the earlier system's 30.9 M

The stage runs in a fresh subprocess so its peak RSS is its own. Prints a table and, last,
``RESULT manifest_tasks_per_s=<float> peak_rss_mb=<float>``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHILD = r"""
import json, resource, sys, time
import dhs.config.schema  # registers the structured configs
from hydra import compose, initialize_config_module
from dhs.context import make_context
from dhs.stages import manifest
with initialize_config_module(config_module="dhs.conf", version_base=None):
    cfg = compose(config_name="config", overrides=json.loads(sys.argv[1]))
t0 = time.perf_counter()
res = manifest.run(cfg, make_context(sys.argv[2]))
wall = time.perf_counter() - t0
tasks = sum(e["tasks"] for e in res["experiments"].values())
ru = resource.getrusage(resource.RUSAGE_SELF)
print("BENCH_JSON " + json.dumps({"wall_s": wall, "tasks": tasks, "experiments": len(res["experiments"]),
      "cpu_s": ru.ru_utime + ru.ru_stime, "peak_rss_mb": ru.ru_maxrss / 1024.0}))
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="N = 1 M parent rows")
    ap.add_argument("--n-parent", type=int, default=5_000_000)
    ap.add_argument("--n-bricks", type=int, default=20_000)
    ap.add_argument("--n-total-per-split", type=int, default=50_000)
    ap.add_argument("--stamp-sizes", default="64,96")
    ap.add_argument("--bandsets", default="r,grz")
    ap.add_argument("--sets", type=int, default=2, help="selection sets (1 or 2)")
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args(argv)
    if args.quick:
        args.n_parent, args.n_bricks = 1_000_000, 5_000

    work = Path(args.workdir or tempfile.mkdtemp(prefix="dhs-bench4a-"))
    try:
        return _run(args, work)
    finally:
        if not args.workdir:  # a folder of the user's own stays; a temporary one goes
            shutil.rmtree(work, ignore_errors=True)


def _run(args: argparse.Namespace, work: Path) -> int:
    from tests.manifest.synth import make_tables, write_tables

    t0 = time.perf_counter()
    tables = make_tables(n_galaxies=args.n_parent, n_bricks=args.n_bricks, n_regions=60, seed=1)
    if args.sets == 1:
        sel = tables["selections"]
        tables["selections"] = sel.filter(sel.column("selection_set_id").to_numpy(zero_copy_only=False)
                                          == "topk_density")
    paths = write_tables(work / "inputs", tables)
    del tables
    t_gen = time.perf_counter() - t0
    overrides = ["stage=4a", "tier=train", f"paths.data_root={work / 'data'}",
                 f"tier.n_total_per_split={args.n_total_per_split}",
                 f"tier.stamp_sizes=[{args.stamp_sizes}]", f"tier.bandsets=[{args.bandsets}]",
                 "manifest.max_total_tasks=100000000", "force=true",
                 *(f"manifest.{k}={v}" for k, v in paths.items())]
    proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(overrides), str(work / "run")],
                          capture_output=True, text=True)
    line = [x for x in proc.stdout.splitlines() if x.startswith("BENCH_JSON ")]
    if proc.returncode != 0 or not line:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        return 1
    res = json.loads(line[-1].split(" ", 1)[1])
    rate = res["tasks"] / res["wall_s"]
    rows = [("parent rows", f"{args.n_parent:,}"), ("bricks", f"{args.n_bricks:,}"),
            ("selection sets", args.sets), ("experiments", res["experiments"]),
            ("tasks written", f"{res['tasks']:,}"), ("input generation (s)", f"{t_gen:.1f}"),
            ("stage 4a wall (s)", f"{res['wall_s']:.1f}"), ("tasks per second", f"{rate:,.0f}"),
            ("stage 4a CPU, user + sys (s)", f"{res['cpu_s']:.1f}"),
            ("tasks per CPU-second", f"{res['tasks'] / res['cpu_s']:,.0f}"),
            ("load average (1 min) after the run", f"{os.getloadavg()[0]:.1f}"),
            ("peak RSS of stage 4a (MB)", f"{res['peak_rss_mb']:,.0f}"),
            ("extrapolated 30.9 M tasks (min)", f"{30.9e6 / rate / 60:.1f}")]
    width = max(len(k) for k, _ in rows)
    print("stage 4a benchmark (tier=train, synthetic inputs)")
    for k, v in rows:
        print(f"  {k:<{width}}  {v:>14}")
    print(f"RESULT manifest_tasks_per_s={rate:.1f} peak_rss_mb={res['peak_rss_mb']:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
