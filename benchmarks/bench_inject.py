"""Stage 4c on full-size DR10-format bricks: stamps per CPU-second, where the time goes, and the
earlier system's loop on the same bricks and tasks measured in the same run as a ratio.

Fixture (benchmarks/fullsize.py): N bricks of 3600 x 3600 pixels written by the mock survey's
writers like DR10.0.12 (10 files per brick, 100 x 100 tiles; RICE qz -1e-4 image, RICE q0 16
invvar, HCOMPRESS maskbits with WISEM1/WISEM2, GZIP psfsize), COSMOS sources, 64 x 64 grz stamps,
stage 4a manifests cut to 83, 20 and 1 injections per brick (83: the earlier production's train
density; 40 galaxies per brick, so targets repeat about twice, as in DR10). Stage 4c runs with
cluster.n_jobs=1 in both cache modes: cache.mode=brick (stage 4b's cache) and cache.mode=none
(section reads of the survey's own files), with the tile cache (each compressed tile decoded at
most once per open file, dhs.survey.tiles) and, as the reference of the previous reader, without
it (DHS_TILE_CACHE_MB=0).

Steady state: each configuration runs in a fresh worker process that first runs 4c once on two
tasks (imports, compiled kernels, COSMOS bank), then the measured runs; CPU is process CPU time
(time.process_time), split by wrapping the stage's functions: read (cut the stamps from the
files), render (arcs), write (Arrow tables and Parquet), overhead (the rest: manifest read,
sharding, metrics, records, closing files). The 1-per-brick row runs several rounds of one task
per brick (a different target each round). Six experiments per brick (debug, grid and train x 64
and 96 px over the same bricks, 83 tasks per brick each) run in one pass (inject.experiments:
each brick decoded once for all six) and, as the reference, one experiment at a time. Bytes per
stamp: distinct targets (one task per galaxy), lossless and with output.quantize=4, with the
Parquet encodings tried on the same rows and the quantized noise checked against the lossless
stamps. Whole processes: `dhs stage=4c` as a fresh CLI process
against `python benchmarks/peer_loop.py` (the earlier system's loop: astropy whole-file reads,
lenstronomy ImageModel at supersampling 5 per band, npz blobs), CPU from getrusage of the child.

Usage: python benchmarks/bench_inject.py [--quick] [--bricks N]   (last line: RESULT ...)
--quick: 3 bricks, 4 sparse rounds (full: 6 bricks, 8 rounds); the report says which mode ran.
The machine may be shared: CPU time is reported, not wall time. The temporary folder is removed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fullsize import FullSizeSurvey, distinct_targets, per_brick  # noqa: E402

HERE = Path(__file__).resolve().parent
TIER = "debug"
#: Where the stage's time goes: (module, function, part).
PROBES = [("dhs.inject.cutouts", "cut_brick", "read"), ("dhs.inject.cutouts", "cut_cutouts", "read"),
          ("dhs.inject.arcs", "render_isolating_bad_rows", "render"),
          ("dhs.inject.shard", "stamps_table", "write"), ("dhs.inject.shard", "metrics_table", "write"),
          ("dhs.io.datasets", "write_shard", "write")]
PARTS = ("read", "render", "write", "overhead")


# ------------------------------------------------------------------------------------ worker side
def _instrument() -> dict[str, float]:
    import importlib

    spent = {p: 0.0 for p in PARTS}
    for mod_name, fn_name, part in PROBES:
        mod = importlib.import_module(mod_name)
        fn = getattr(mod, fn_name, None)
        if fn is None:
            print(f"warning: probe {mod_name}.{fn_name} not found; its time counts as overhead")
            continue

        def wrapped(*a: Any, _fn: Any = fn, _part: str = part, **kw: Any) -> Any:
            t0 = time.process_time()
            try:
                return _fn(*a, **kw)
            finally:
                spent[_part] += time.process_time() - t0

        setattr(mod, fn_name, wrapped)
    return spent


def worker(spec: dict) -> dict:
    """Run the spec's 4c runs in this process after one warm-up run; CPU per part.

    Configs are composed before the clock starts (the CLI composes once per process).
    """
    sys.path.insert(0, str(HERE))
    from fullsize import compose

    from dhs.cli import run_stage
    from dhs.context import make_context
    from dhs.fetch import remote
    from dhs.survey import tiles

    spent = _instrument()
    run_stage(compose(spec["warm"]), make_context(spec["run_dir"] + "/warm"))
    remote.close_all()
    cfgs = [compose(over) for over in spec["runs"]]
    for p in spent:
        spent[p] = 0.0
    tiles.reset_counters()
    t0 = time.process_time()
    stamps = 0
    for k, cfg in enumerate(cfgs):
        res = run_stage(cfg, make_context(spec["run_dir"] + f"/{k}"))
        remote.close_all()
        stamps += sum(e["rows_injected_now"] for e in res["experiments"].values())
    total = time.process_time() - t0
    spent["overhead"] = total - sum(spent[p] for p in PARTS if p != "overhead")
    out = {"stamps": stamps, "cpu_s": total, "parts": dict(spent), "tiles": tiles.counters(),
           "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    for key, over in (spec.get("bytes_runs") or {}).items():
        res = run_stage(compose(over), make_context(spec["run_dir"] + f"/{key}"))
        n = sum(e["rows_injected_now"] for e in res["experiments"].values())
        files = sorted(Path(spec["data_root"], "phase4c").rglob(f"{key}/stamps/**/*.parquet"))
        out[key] = {"bytes_per_stamp": sum(f.stat().st_size for f in files) / max(n, 1), "stamps": n,
                    "files": [str(f) for f in files]}
    return out


# ------------------------------------------------------------------------------------ driver side
def child_cpu(cmd: list[str], env: dict | None = None) -> tuple[float, str]:
    """Run ``cmd``; (its CPU seconds, user + system, from getrusage of the children), stdout."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-5000:])
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd[:4])} ...")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, proc.stdout


def tagged_json(out: str, tag: str) -> dict:
    line = [x for x in out.splitlines() if x.startswith(tag + " ")]
    return json.loads(line[-1].split(" ", 1)[1])


def run_worker(spec: dict, tile_mb: str | None, tmp: Path) -> dict:
    path = tmp / f"spec-{time.monotonic_ns()}.json"
    path.write_text(json.dumps(spec))
    env = dict(os.environ)
    if tile_mb is not None:
        env["DHS_TILE_CACHE_MB"] = tile_mb
    _, out = child_cpu([sys.executable, str(Path(__file__).resolve()), "--worker", str(path)], env)
    return tagged_json(out, "WORKER_JSON")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 bricks, fewer sparse rounds")
    ap.add_argument("--bricks", type=int, default=None, help="full-size bricks (default 6; quick 3)")
    ap.add_argument("--keep", metavar="DIR", help="build the fixture in DIR (or reuse it) and leave it there")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print("WORKER_JSON " + json.dumps(worker(json.loads(Path(args.worker).read_text()))))
        return
    n_bricks = args.bricks or (3 if args.quick else 6)
    rounds = 4 if args.quick else 8
    t0 = time.perf_counter()
    with FullSizeSurvey(n_bricks, tiers=(TIER,), keep=args.keep) as fx:
        setup_s = time.perf_counter() - t0
        bench(fx, n_bricks, rounds, setup_s, args.quick)


def bench(fx: FullSizeSurvey, n_bricks: int, rounds: int, setup_s: float, quick: bool) -> None:
    import pyarrow as pa

    tmp = fx.root / "bench"
    tmp.mkdir()
    (exp,) = fx.experiments(TIER)
    full = fx.manifest(TIER, exp)
    manifests: dict[str, list[str]] = {}
    counts: dict[str, int] = {}
    first: dict[str, Any] = {}
    for label, n, n_rounds in (("83", 83, 1), ("20", 20, 1), ("1", 1, rounds)):
        manifests[label] = []
        counts[label] = 0
        for r in range(n_rounds):
            sub = per_brick(full, n, offset=r * 3)  # sparse rounds: a different target each time
            variant = f"bench_{label}_{r}"
            fx.write_manifest(sub, TIER, exp, variant)
            manifests[label].append(variant)
            counts[label] += sub.num_rows
            first.setdefault(label, sub)
    dense = per_brick(full, 83)
    multi = []
    for tier in ("debug", "grid", "train"):
        for size in (64, 96):
            exp_id = exp.replace(f"{TIER}_stamp64", f"{tier}_stamp{size}")
            t = dense.set_column(dense.schema.get_field_index("experiment_id"), "experiment_id",
                                 pa.array([exp_id] * dense.num_rows, pa.string()))
            t = t.set_column(t.schema.get_field_index("stamp_size"), "stamp_size",
                             pa.array([size] * t.num_rows, pa.int32()))
            fx.write_manifest(t, TIER, exp_id, "bench_multi")
            multi.append(exp_id)
    warm = per_brick(full, 2).slice(0, 2)
    fx.write_manifest(warm, TIER, exp, "bench_warm")
    distinct = distinct_targets(per_brick(full, 83))
    fx.write_manifest(distinct, TIER, exp, "bench_distinct")
    base = [*fx.base, "stage=4c", f"tier={TIER}", "cluster.n_jobs=1"]

    def overrides(variant: str, mode: str, run: str) -> list[str]:
        return [*base, f"variant={variant}", f"cache.mode={mode}", f"inject.run_name={run}"]

    results: dict[tuple[str, str], dict] = {}
    configs = [("brick", "brick cache + tile cache", None), ("none", "section reads + tile cache", None),
               ("none", "section reads, no tile cache", "0")]
    for label in manifests:
        for mode, name, tile_mb in configs:
            tag = f"{mode}{'_notile' if tile_mb == '0' else ''}"
            spec = {"warm": overrides("bench_warm", mode, f"w_{tag}_{label}"),
                    "runs": [overrides(v, mode, f"r_{tag}") for v in manifests[label]],
                    "run_dir": str(tmp / f"runs_{tag}_{label}"), "data_root": str(fx.root)}
            if label == "83" and mode == "brick" and tile_mb is None:
                spec["bytes_runs"] = {"bytes": overrides("bench_distinct", mode, "bytes"),
                                      "bytes_q": [*overrides("bench_distinct", mode, "bytes_q"),
                                                  "output.quantize=4"]}
            results[(label, name)] = run_worker(spec, tile_mb, tmp)
    six = f"inject.experiments=[{','.join(multi)}]"
    for name, runs in (("6 experiments, one pass", [[*overrides("bench_multi", "brick", "m_pass"), six]]),
                       ("6 experiments, one by one", [[*overrides("bench_multi", "brick", "m_each"),
                                                       f"inject.experiments=[{e}]"] for e in multi])):
        spec = {"warm": overrides("bench_warm", "brick", "w_multi"), "runs": runs,
                "run_dir": str(tmp / f"runs_multi_{len(runs)}"), "data_root": str(fx.root)}
        results[("83x6", name)] = run_worker(spec, None, tmp)

    # whole processes: the dhs CLI against the earlier system's loop, same manifest
    whole: dict[str, dict] = {}
    bank = str(fx.root / "cosmos_bank" / "cosmos_bank.h5")
    import pyarrow.parquet as pq

    for label in ("83", "20", "1"):
        variant = manifests[label][0]
        n = first[label].num_rows
        cpu, _ = child_cpu([str(Path(sys.executable).parent / "dhs"), *overrides(variant, "brick", f"cli_{label}"),
                            f"hydra.run.dir={tmp / f'cli_{label}'}"])
        mpath = tmp / f"peer_{label}.parquet"
        pq.write_table(first[label], mpath)
        spec = {"manifest": str(mpath), "base_url": str(fx.root / "mock_survey" / "coadd"), "bank": bank,
                "out": str(tmp / f"peer_{label}_out.parquet")}
        sp = tmp / f"peer_{label}.json"
        sp.write_text(json.dumps(spec))
        pcpu, out = child_cpu([sys.executable, str(HERE / "peer_loop.py"), str(sp)])
        peer = tagged_json(out, "PEER_JSON")
        whole[label] = {"stamps": n, "dhs_cpu": cpu, "peer_cpu": pcpu, "peer": peer,
                        "flux_ratio": flux_ratio(fx.root / "phase4c" / variant / f"cli_{label}", peer["flux_r"])}
    report(fx, n_bricks, setup_s, results, whole, quick)


def flux_ratio(run_root: Path, peer_flux: dict[str, float]) -> tuple[float, float, float]:
    """5th, 50th, 95th percentile of peer / dhs injected r flux over the same tasks (same work?)."""
    import numpy as np
    import pyarrow.parquet as pq

    dhs_flux: dict[str, float] = {}
    for f in (run_root / "metrics").rglob("*.parquet"):
        t = pq.read_table(f, columns=["task_id", "injected_flux_r"]).to_pydict()
        dhs_flux.update(zip(t["task_id"], t["injected_flux_r"]))
    r = np.array([peer_flux[k] / dhs_flux[k] for k in peer_flux if dhs_flux.get(k)])
    return tuple(float(x) for x in np.percentile(r, [5, 50, 95])) if r.size else (np.nan,) * 3


def _ms(x: float, n: int) -> str:
    return f"{1e3 * x / max(n, 1):.2f}"


def report(fx: FullSizeSurvey, n_bricks: int, setup_s: float, results: dict, whole: dict, quick: bool) -> None:
    print(f"fixture: {n_bricks} bricks of 3600 x 3600 px, {len(fx.coadd_files())} files, "
          f"{sum(p.stat().st_size for p in fx.coadd_files()) / 1e6:.0f} MB, built in {setup_s:.0f} s "
          "(cosmos bank, mock survey, 4a, 4b)")
    for kind, text in fx.describe():
        print(f"  {kind:>9}: {text}")
    print("\nsteady state, one process, CPU ms per stamp (process CPU time; the machine may be shared)")
    head = ("tasks/brick", "reader", "stamps", "read", "render", "write", "overhead", "total",
            "stamps/CPU-s", "tiles/stamp", "RSS MB")
    print(f"{head[0]:>11} {head[1]:<30}" + "".join(f"{h:>13}" for h in head[2:]))
    for (label, name), r in results.items():
        n, p = r["stamps"], r["parts"]
        print(f"{label:>11} {name:<30}{n:>13}" + "".join(f"{_ms(p[k], n):>13}" for k in PARTS)
              + f"{_ms(r['cpu_s'], n):>13}{n / r['cpu_s']:>13.1f}"
              + f"{r['tiles']['tiles_decoded'] / max(n, 1):>13.1f}{r['peak_rss_mb']:>13.0f}")
    print("\nthe earlier system's loop (astropy whole-file reads, lenstronomy ss5 per band, npz blobs), "
          "CPU ms per stamp")
    print(f"{'tasks/brick':>11}{'stamps':>10}" + "".join(f"{k:>11}" for k in PARTS)
          + f"{'stamps/CPU-s':>14}{'KB/stamp':>10}")
    for label, w in whole.items():
        pp, n = w["peer"]["parts"], w["peer"]["stamps"]
        steady = sum(pp.values())
        print(f"{label:>11}{n:>10}" + "".join(f"{_ms(pp.get(k, 0.0), n):>11}" for k in PARTS)
              + f"{n / steady:>14.1f}{w['peer']['bytes'] / n / 1024:>10.1f}")
    print("\nwhole processes on the same manifest (dhs CLI, cache.mode=brick, n_jobs=1, against peer_loop.py)")
    print(f"{'tasks/brick':>11}{'stamps':>10}{'dhs CPU s':>12}{'peer CPU s':>12}{'dhs st/CPU-s':>14}"
          f"{'peer st/CPU-s':>15}{'ratio':>8}{'steady ratio':>14}")
    ratios = {}
    for label, w in whole.items():
        n = w["stamps"]
        dhs_steady = results[(label, "brick cache + tile cache")]
        peer_rate = w["peer"]["stamps"] / sum(w["peer"]["parts"].values())
        steady_ratio = (dhs_steady["stamps"] / dhs_steady["cpu_s"]) / peer_rate
        ratios[label] = w["peer_cpu"] / w["dhs_cpu"]
        print(f"{label:>11}{n:>10}{w['dhs_cpu']:>12.2f}{w['peer_cpu']:>12.2f}{n / w['dhs_cpu']:>14.1f}"
              f"{n / w['peer_cpu']:>15.1f}{ratios[label]:>8.2f}{steady_ratio:>14.2f}")
    fr = whole["83"]["flux_ratio"]
    print(f"same work: injected r flux, earlier loop / dhs, over the 83-per-brick tasks: 5%/50%/95% "
          f"{fr[0]:.3f} / {fr[1]:.3f} / {fr[2]:.3f}")
    dense = results[("83", "brick cache + tile cache")]
    sparse = results[("1", "section reads + tile cache")]
    one_pass, each = results[("83x6", "6 experiments, one pass")], results[("83x6", "6 experiments, one by one")]
    print(f"\nsix experiments per brick: one pass {one_pass['stamps'] / one_pass['cpu_s']:.1f} stamps/CPU-s "
          f"against {each['stamps'] / each['cpu_s']:.1f} one experiment at a time "
          f"(x{(one_pass['stamps'] / one_pass['cpu_s']) / (each['stamps'] / each['cpu_s']):.2f}); tiles decoded "
          f"{one_pass['tiles']['tiles_decoded']} against {each['tiles']['tiles_decoded']}")
    lossless, quant = dense["bytes"], dense["bytes_q"]
    print(f"\nstamps of distinct targets ({lossless['stamps']} stamps, 64x64 grz; image, invvar, maskbits):")
    stamp_bytes(lossless["files"], quant["files"])
    print(f"\nmode: {'--quick' if quick else 'full'}")
    print(f"RESULT full_size_stamps_per_cpu_s={dense['stamps'] / dense['cpu_s']:.2f} "
          f"multi_experiment_stamps_per_cpu_s={one_pass['stamps'] / one_pass['cpu_s']:.2f} "
          f"sparse_stamps_per_cpu_s={sparse['stamps'] / sparse['cpu_s']:.2f} peer_ratio={ratios['83']:.2f} "
          f"bytes_per_stamp={lossless['bytes_per_stamp']:.0f} "
          f"bytes_per_stamp_quantized={quant['bytes_per_stamp']:.0f}")


def stamp_bytes(lossless_files: list[str], quant_files: list[str]) -> None:
    """Bytes per stamp by column and under other Parquet encodings (the same rows re-encoded),
    and the quantized stamps' error and noise against the lossless ones."""
    import io

    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from dhs.inject.shard import QUANTIZED_PARQUET, STAMP_PARQUET
    from dhs.io.stamps import to_numpy

    tables = {k: pa.concat_tables([pq.read_table(f) for f in files]).sort_by("task_id")
              for k, files in (("lossless", lossless_files), ("quantized", quant_files))}
    n = tables["lossless"].num_rows

    def encoded(table: pa.Table, opts: dict) -> tuple[int, dict[str, int]]:
        buf = io.BytesIO()
        pq.write_table(table, buf, compression="zstd", **opts)
        meta = pq.ParquetFile(io.BytesIO(buf.getvalue())).metadata
        cols: dict[str, int] = {}
        for g in range(meta.num_row_groups):
            for c in range(meta.num_columns):
                col = meta.row_group(g).column(c)
                name = col.path_in_schema.split(".")[0]
                cols[name] = cols.get(name, 0) + col.total_compressed_size
        return len(buf.getvalue()), cols

    def variant(base: dict, level: int, enc: dict[str, str] | None = None) -> dict:
        ce = {**base["column_encoding"], **(enc or {})}
        return {**base, "column_encoding": ce, "compression_level": level}

    floats = {f"{c}.list.element": "PLAIN" for c in ("image", "invvar")}
    ints = {f"{c}.list.element": "PLAIN" for c in ("image",)}
    trials = [("lossless", "byte-stream-split + zstd 3 (default)", STAMP_PARQUET),
              ("lossless", "byte-stream-split + zstd 9", variant(STAMP_PARQUET, 9)),
              ("lossless", "byte-stream-split + zstd 19", variant(STAMP_PARQUET, 19)),
              ("lossless", "plain + zstd 3", variant(STAMP_PARQUET, 3, floats)),
              ("quantized", "delta-binary-packed + zstd 3 (default)", QUANTIZED_PARQUET),
              ("quantized", "delta-binary-packed + zstd 19", variant(QUANTIZED_PARQUET, 19)),
              ("quantized", "plain int32 + zstd 3", variant(QUANTIZED_PARQUET, 3, ints)),
              ("quantized", "plain int32 + zstd 19", variant(QUANTIZED_PARQUET, 19, ints))]
    print(f"{'storage':>10} {'Parquet encoding':<40}{'bytes/stamp':>12}{'image':>9}{'invvar':>9}"
          f"{'maskbits':>9}{'other':>9}")
    for kind, name, opts in trials:
        total, cols = encoded(tables[kind], opts)
        other = total - sum(cols.get(c, 0) for c in ("image", "invvar", "maskbits"))
        print(f"{kind:>10} {name:<40}{total / n:>12.0f}" + "".join(
            f"{v / n:>9.0f}" for v in (cols.get("image", 0), cols.get("invvar", 0), cols.get("maskbits", 0), other)))
    a = to_numpy(tables["lossless"]).astype(np.float64)
    b = to_numpy(tables["quantized"]).astype(np.float64)
    ivar = to_numpy(tables["lossless"], "invvar")
    step = np.asarray(tables["quantized"].column("quant_step").to_pylist(), np.float64)
    ok = np.asarray(tables["lossless"].column("cutout_ok")) == 1
    err = (np.abs(b - a) / step[:, :, None, None])[ok]
    ratios = []
    for i in np.flatnonzero(ok):
        for j in range(a.shape[1]):
            sky = (np.abs(a[i, j]) * np.sqrt(ivar[i, j]) < 3) & (ivar[i, j] > 0)
            ratios.append(b[i, j][sky].std() / a[i, j][sky].std())
    r = np.asarray(ratios)
    print(f"quantized at sigma/4: max |error| {err.max():.3f} step (bound 0.5); sky noise quantized / lossless "
          f"per stamp and band: median {np.median(r):.4f}, worst {r[np.argmax(np.abs(r - 1))]:.4f} "
          f"(expected sqrt(1 + 1/192) = {np.sqrt(1 + 1 / 192):.4f})")


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    tempfile.tempdir = None
    main()
