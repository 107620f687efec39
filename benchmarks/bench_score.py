"""Lens-finder speed on realistic stamps: the built-in arc finder and a small ONNX CNN.

Stamps: stage 4c's real injections (COSMOS sources, 64x64 grz) into the embedded mock survey
around its LRGs, with controls: the COSMOS bank, the mock survey and a grid manifest are built
once in a temporary folder, then 4c runs on one core (``cluster.n_jobs=1``; its wall time is the
reference of the last row).

Rows (CPU seconds from ``time.process_time``, one core; the machine may be shared, so CPU time,
not wall time, is what the rates use):

- ``arcfinder``: :func:`dhs.finders.arcfinder.score_batch` on every stamp (after one warm-up
  batch that compiles the numba kernel); reference: the same finder with
  ``segmentation=photutils`` (photutils' ``detect_sources`` stamp by stamp) on a subset;
- ``onnx cnn``: a four-layer CNN (3x3 convolutions 3-8-8-16-16, ReLU, global pooling, dense
  head; built with onnx.helper) through :class:`dhs.finders.onnx_model.OnnxFinder`, one
  onnxruntime thread, CPU provider, batches of 256; reference: the same network in NumPy;
- ``read stamps``: the stamps dataset read back into arrays (``dhs.io.stamps``);
- ``stage score``: ``dhs stage=score`` (arc finder, one worker: reading, scoring and writing the
  scores dataset) against stage 4c on the same stamps and core; both wall times of this run.

Targets: arcfinder >= 500 stamps/s/core, ONNX CNN >= 300 stamps/s/core, stage score adds <= 30%
to the 4c wall time.
Usage: ``python benchmarks/bench_score.py [--quick]``.
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.finders.onnx_nets: the CNN written with onnx.helper

BANDS = ("g", "r", "z")
PIXSCALE = 0.262


def run_stage(overrides: list[str]) -> dict:
    from dhs.cli import run_stage as cli_run_stage
    from dhs.context import make_context
    from tests.helpers import compose_config

    return cli_run_stage(compose_config(overrides), make_context())


def make_stamps(root: str, quick: bool) -> tuple[list[str], float]:
    """Bank, survey and manifest, then 4c on one core; returns (4c overrides, 4c wall seconds)."""
    survey = ["mock_survey.n_bricks=3", "mock_survey.n_regions=3", "mock_survey.brick_size_pix=300"] if quick else []
    base = [f"paths.data_root={root}", *survey]
    run_stage(["stage=cosmos_bank", *base])
    run_stage(["stage=mock_survey", *base])
    tier = ["tier=grid", "tier.stamp_sizes=[64]", "tier.bandsets=[grz]", "manifest.selection_set_ids=[topk_density]",
            f"tier.n_per_config={1 if quick else 2}", "tier.replicates=1"]
    run_stage(["stage=4a", *base, *tier])
    over = [*base, *tier, "source=cosmos", "cluster.n_jobs=1", "cache.mode=none"]
    t0 = time.perf_counter()
    run_stage(["stage=4c", *over])
    return over, time.perf_counter() - t0


def load(over: list[str]) -> tuple[Any, Any, Any, float]:
    from dhs.stages import layout
    from dhs.io.stamps import read_stamps, to_numpy
    from tests.helpers import compose_config

    cfg = compose_config(["stage=4c", *over])
    exp = layout.experiment_ids(cfg)[0]
    c0 = time.process_time()
    table = read_stamps(layout.stamps_dir(cfg, exp))
    arrays = to_numpy(table), to_numpy(table, "invvar"), to_numpy(table, "maskbits")
    return (*arrays, time.process_time() - c0)


def cpu_rate(fn: Any, n: int) -> tuple[float, float]:
    c0 = time.process_time()
    fn()
    dt = time.process_time() - c0
    return n / dt, dt


def main() -> None:
    import numpy as np
    from rich.console import Console
    from rich.table import Table

    from dhs.finders.arcfinder import ArcFinderSettings, score_batch
    from dhs.finders.onnx_model import OnnxFinder, OnnxFinderSettings
    from tests.finders.onnx_nets import build_cnn, forward_numpy

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 small bricks instead of the embedded survey")
    args = ap.parse_args()
    con = Console(width=150)
    with tempfile.TemporaryDirectory(prefix="dhs_bench_score_") as root:
        t0 = time.perf_counter()
        over, wall_4c = make_stamps(root, args.quick)
        t1 = time.perf_counter()
        run_stage(["stage=score", *over])
        wall_score = time.perf_counter() - t1
        images, invvar, mask, read_cpu = load(over)
        n = images.shape[0]
        con.print(f"{n} stamps 64x64 grz from stage 4c (COSMOS injections and controls); set-up "
                  f"{time.perf_counter() - t0:.1f} s, 4c on one core {wall_4c:.1f} s wall")

        def arc(sub: slice = slice(None), **kw: Any) -> Any:
            return score_batch(images[sub], invvar[sub], mask[sub], bands=BANDS, pixscale=PIXSCALE,
                               settings=ArcFinderSettings(**kw))

        arc(slice(0, 8))  # compile / load the kernels
        arc_rate, arc_cpu = cpu_rate(arc, n)
        m_ref = min(n, 400)
        ref_rate, _ = cpu_rate(lambda: arc(slice(0, m_ref), segmentation="photutils"), m_ref)
        same = np.array_equal(arc(slice(0, m_ref)).scores, arc(slice(0, m_ref), segmentation="photutils").scores,
                              equal_nan=True)

        net = build_cnn(3, (8, 8, 16, 16), seed=0)
        path = Path(root) / "cnn4.onnx"
        path.write_bytes(net.model)
        finder = OnnxFinder(OnnxFinderSettings(model=str(path), output="logit", normalisation="asinh",
                                               scale=(0.01, 0.02, 0.04), batch_size=256, provider="cpu", threads=1))
        finder(images[:8], invvar[:8], mask[:8], bands=BANDS, pixscale=PIXSCALE)  # open the session
        onnx_rate, onnx_cpu = cpu_rate(lambda: finder(images, invvar, mask, bands=BANDS, pixscale=PIXSCALE), n)
        m_np = min(n, 64)
        np_rate, _ = cpu_rate(lambda: forward_numpy(net, images[:m_np]), m_np)

    load_avg = os.getloadavg()
    table = Table(title=f"lens finders on {n} stamps 64x64 grz, one core (CPU time; load average "
                        f"{load_avg[0]:.1f} on {os.cpu_count()} cores, shared machine)", title_justify="left")
    for col in ("finder", "stamps/s/core", "CPU s", "reference", "ref stamps/s/core", "speed-up", "target"):
        table.add_column(col, justify="left" if col in ("finder", "reference") else "right")
    table.add_row("arcfinder", f"{arc_rate:.0f}", f"{arc_cpu:.2f}", "photutils segmentation per stamp",
                  f"{ref_rate:.0f}", f"{arc_rate / ref_rate:.1f}x", ">= 500")
    table.add_row("onnx cnn (4 conv)", f"{onnx_rate:.0f}", f"{onnx_cpu:.2f}", "same network in NumPy",
                  f"{np_rate:.0f}", f"{onnx_rate / np_rate:.1f}x", ">= 300")
    table.add_row("read stamps", f"{n / read_cpu:.0f}", f"{read_cpu:.2f}", "-", "-", "-", "-")
    table.add_row("stage score (wall)", f"{n / wall_score:.0f}", f"{wall_score:.2f}", "stage 4c (wall)",
                  f"{n / wall_4c:.0f}", f"score adds {wall_score / wall_4c:.0%}", "<= 30%")
    con.print(table)
    con.print(f"batch and photutils segmentation give identical scores: {'yes' if same else 'NO'}")
    print(f"RESULT arcfinder_stamps_per_s_core={arc_rate:.0f} onnx_cnn_stamps_per_s_core={onnx_rate:.0f} "
          f"arcfinder_vs_photutils={arc_rate / ref_rate:.2f} onnx_vs_numpy={onnx_rate / np_rate:.2f} "
          f"score_over_4c_wall={wall_score / wall_4c:.3f} "
          f"stamps={n}")


if __name__ == "__main__":
    main()
