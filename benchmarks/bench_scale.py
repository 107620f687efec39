"""Driver memory and time per million rows at scale: 4a, 4c preparation, 4d and validate.

    nice .venv/bin/python benchmarks/bench_scale.py            # small sizes (a few minutes)
    nice .venv/bin/python benchmarks/bench_scale.py --full     # up to 20 M / 12 M / 30 M rows

Each measurement runs in a fresh subprocess, so its peak RSS (ru_maxrss) is the driver's own;
inputs are synthetic, in the project's schemas, written beforehand (validate runs on metrics
without stamps: its stamp checks fail, the rest of the report is built and timed). Rows: parent-catalog rows
for 4a (built by brick bucket: once with the default ``manifest.bucket_rows``, once with
eight buckets), manifest tasks for 4c preparation, metrics rows for 4d and validate. 4c preparation is
what the driver does before the executors start: ``dhs.inject.ranges.plan_shards`` plus
pickling the shards; the reference in the same run is the whole-manifest path (read the manifest,
sort, slice, detach and pickle every row). Prints a table and, last,
``RESULT max_driver_rss_mb=<float> prep_rss_ratio_vs_rows=<float>``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHILD = r"""
import json, pickle, resource, sys, time
kind, args = sys.argv[1], json.loads(sys.argv[2])
t0 = time.perf_counter()
if kind in ("4a", "4d", "validate"):
    import dhs.config.schema
    from hydra import compose, initialize_config_module
    from dhs.context import make_context
    from dhs.stages import load
    with initialize_config_module(config_module="dhs.conf", version_base=None):
        cfg = compose(config_name="config", overrides=args["overrides"])
    t0 = time.perf_counter()
    try:
        load(kind).run(cfg, make_context(args["run_dir"]))
    except Exception as exc:  # validate reports failed checks (no stamps here) after its report
        if type(exc).__name__ != "ValidationFailed":
            raise
elif kind == "prep":
    from dhs.inject import ranges
    shards, _ = ranges.plan_shards(args["mdir"], "exp", args["max_tasks"])
    sent = sum(len(pickle.dumps(s)) for s in shards)
else:  # prep_rows: the whole-manifest reference
    from dhs.executors import detach_tables
    from dhs.io import datasets as dio
    from dhs.stages.inject import make_shards
    shards = make_shards(dio.read_dataset(args["mdir"]), "exp", args["max_tasks"])
    sent = sum(len(pickle.dumps(detach_tables(s))) for s in shards)
wall = time.perf_counter() - t0
ru = resource.getrusage(resource.RUSAGE_SELF)
print("BENCH_JSON " + json.dumps({"wall_s": wall, "peak_rss_mb": ru.ru_maxrss / 1024.0,
      "sent_mb": (sent / 2**20) if kind.startswith("prep") else None}))
"""

SMALL = {"4a": (50_000, 100_000, 200_000), "prep": (100_000, 200_000, 400_000),
         "metrics": (50_000, 100_000, 200_000)}
FULL = {"4a": (5_000_000, 10_000_000, 20_000_000), "prep": (3_000_000, 6_000_000, 12_000_000),
        "metrics": (7_500_000, 15_000_000, 30_000_000)}


def child(kind: str, args: dict) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, kind, json.dumps(args)], capture_output=True,
                          text=True, cwd=str(ROOT))
    line = [x for x in proc.stdout.splitlines() if x.startswith("BENCH_JSON ")]
    if proc.returncode != 0 or not line:
        tail = (proc.stdout[-1500:] + proc.stderr[-1500:]).strip().splitlines()
        return {"error": tail[-1] if tail else f"exit {proc.returncode}"}
    return json.loads(line[-1].split(" ", 1)[1])


def synth_manifest(mdir: Path, n: int, rows_per_file: int = 50_000, per_brick: int = 170) -> None:
    """``n`` manifest rows (dhs.schema.MANIFEST), files sorted by brick as 4a writes them."""
    import numpy as np
    import pyarrow as pa

    from dhs.io.datasets import mark_success, write_shard
    from dhs.schema import MANIFEST

    rng = np.random.default_rng(11)
    for k, lo in enumerate(range(0, n, rows_per_file)):
        m = min(rows_per_file, n - lo)
        idx = np.arange(lo, lo + m)
        cols = {}
        for c in MANIFEST:
            if c.name == "brickname":
                cols[c.name] = pa.array([f"{b // 1000:04d}p{b % 1000:03d}" for b in idx // per_brick])
            elif c.name == "task_id":
                cols[c.name] = pa.array([f"{x:016x}" for x in rng.integers(0, 1 << 62, m)])
            elif c.name == "region_split":
                cols[c.name] = pa.array(np.array(["train", "val", "test"])[idx % 3])
            elif pa.types.is_string(c.type):
                cols[c.name] = pa.array(np.full(m, "v1_x"))
            elif pa.types.is_floating(c.type):
                cols[c.name] = pa.array(rng.random(m))
            else:
                cols[c.name] = pa.array(np.full(m, 64), c.type)
        write_shard(pa.table(cols), str(mdir), f"{k:05d}")
    mark_success(str(mdir), {"rows": n})


def synth_metrics(root: Path, n: int, stage: str) -> list[str]:
    """4c metrics (``n`` rows, real schema) and their manifest for ``stage``; its overrides."""
    from dhs.stages import layout
    from tests import synth4c

    per = max(1, n // 24)
    frame = synth4c.metrics_frame(n_per=per, seed=3)
    bank = str(synth4c.make_bank(root / "bank.h5"))
    cfg = synth4c.experiment_cfg(root, bank, stage)
    keys = synth4c.write_manifest(cfg, frame)
    synth4c.write_dataset(synth4c.metrics_table(frame), layout.metrics_dir(cfg, synth4c.EXP),
                          n_shards=max(1, n // 50_000), keys=keys)
    return [f"stage={stage}", f"paths.data_root={root}", f"experiment_id={synth4c.EXP}",
            "source=cosmos", f"paths.cosmos_bank={bank}"]


def measure(work: Path, sizes: dict, only: set[str]) -> list[dict]:
    from tests.manifest.synth import make_tables, write_tables

    out = []
    for n in sizes["4a"] if "4a" in only else ():
        d = work / f"4a_{n}"
        paths = write_tables(d / "inputs", make_tables(n_galaxies=n, n_bricks=max(n // 100, 10),
                                                       n_regions=60, seed=1))
        ov = ["stage=4a", "tier=train", f"paths.data_root={d / 'data'}", "tier.n_total_per_split=20000",
              "manifest.max_total_tasks=100000000", "force=true",
              *(f"manifest.{k}={v}" for k, v in paths.items())]
        for label, extra in (("4a", []), ("4a, 8 buckets", [f"manifest.bucket_rows={-(-n // 8)}"])):
            out.append({"stage": label, "rows": n,
                        **child("4a", {"overrides": ov + extra, "run_dir": str(d / "run")})})
        shutil.rmtree(d, ignore_errors=True)
    for n in sizes["prep"] if "prep" in only else ():
        mdir = work / f"manifest_{n}"
        synth_manifest(mdir, n)
        args = {"mdir": str(mdir), "max_tasks": 2000}
        out.append({"stage": "4c preparation", "rows": n, **child("prep", args)})
        out.append({"stage": "4c prep, rows (reference)", "rows": n, **child("prep_rows", args)})
        shutil.rmtree(mdir, ignore_errors=True)
    for stage in [s for s in ("4d", "validate") if s in only]:
        for n in sizes["metrics"]:
            d = work / f"{stage}_{n}"
            d.mkdir(parents=True)
            ov = synth_metrics(d, n, stage)
            rows = 24 * max(1, n // 24)
            out.append({"stage": stage, "rows": rows, **child(stage, {"overrides": ov, "run_dir": str(d / "run")})})
            shutil.rmtree(d, ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full", action="store_true", help="DR10 sizes: 20 M parent, 12 M tasks, 30 M metrics rows")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--only", default="4a,prep,4d,validate", help="comma-separated: 4a, prep, 4d, validate")
    ap.add_argument("--rows-4a", default=None, help="comma-separated parent sizes for 4a (default: by --full)")
    args = ap.parse_args(argv)
    sizes = dict(FULL if args.full else SMALL)
    if args.rows_4a:
        sizes["4a"] = tuple(int(x) for x in args.rows_4a.split(","))
    work = Path(args.workdir or tempfile.mkdtemp(prefix="dhs-benchscale-"))
    try:
        results = measure(work, sizes, set(args.only.split(",")))
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    print(f"{'stage':<28}{'rows':>12}{'wall s':>10}{'s per M rows':>14}{'driver peak RSS MB':>20}{'pickled MB':>12}")
    for r in results:
        if "error" in r:
            print(f"{r['stage']:<28}{r['rows']:>12,}  failed: {r['error'][:90]}")
            continue
        sent = f"{r['sent_mb']:.1f}" if r.get("sent_mb") is not None else "-"
        print(f"{r['stage']:<28}{r['rows']:>12,}{r['wall_s']:>10.2f}{r['wall_s'] / r['rows'] * 1e6:>14.2f}"
              f"{r['peak_rss_mb']:>20,.0f}{sent:>12}")
    ok = [r for r in results if "error" not in r and "reference" not in r["stage"]]
    prep = [r for r in ok if r["stage"] == "4c preparation"]
    ref = [r for r in results if "reference" in r["stage"] and "error" not in r]
    ratio = (prep[-1]["peak_rss_mb"] / ref[-1]["peak_rss_mb"]) if prep and ref else float("nan")
    print(f"RESULT max_driver_rss_mb={max((r['peak_rss_mb'] for r in ok), default=float('nan')):.1f} "
          f"prep_rss_ratio_vs_rows={ratio:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
