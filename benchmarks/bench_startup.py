"""Start-up time of the CLI: median wall time of `dhs stage=plan` and `dhs --help`.

Usage: python benchmarks/bench_startup.py [--runs N]
Prints a table; the last line is `RESULT startup_plan_s=<float> startup_help_s=<float>`.
Reference: `python -c "import hydra"` measured in the same run (Hydra's own import cost).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def median_time(cmd: list[str], runs: int, cwd: str) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=cwd, capture_output=True, check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ref = median_time([sys.executable, "-c", "import hydra, omegaconf"], args.runs, tmp)
        plan = median_time([str(BIN / "dhs"), "stage=plan", f"paths.data_root={tmp}/data"], args.runs, tmp)
        helps = median_time([str(BIN / "dhs"), "--help"], args.runs, tmp)
    rows = [("import hydra (reference)", ref), ("dhs stage=plan", plan), ("dhs --help", helps)]
    print(f"{'command':<28}{'median s':>10}{'x reference':>14}")
    for name, t in rows:
        print(f"{name:<28}{t:>10.3f}{t / ref:>14.2f}")
    print(f"RESULT startup_plan_s={plan:.3f} startup_help_s={helps:.3f}")


if __name__ == "__main__":
    main()
