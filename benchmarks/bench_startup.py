"""Start-up cost of the CLI: CPU seconds (user + system, of the child process) of `dhs --help`
and `dhs stage=plan`, against `python -c "import hydra, omegaconf"` measured in the same run.

CPU time, not wall time: on a shared machine the wall clock carries the other jobs' waits,
while the CPU seconds a process spends are its own. Each command runs ``--runs`` times (the
first run of each is a warm-up of the file cache and not counted); the table shows the median
CPU seconds, the median wall seconds and the CPU ratio to the reference. The children run with
Python's bytecode cache as an installed dhs has it (``PYTHONDONTWRITEBYTECODE`` is dropped from
their environment, so the warm-up writes the cache; without it every dhs module is compiled again
at each start). Target: both dhs commands under 1 CPU second.

Usage: python benchmarks/bench_startup.py [--runs N]
The last line is `RESULT help_cpu_s=<float> plan_cpu_s=<float> reference_cpu_s=<float>`.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def measure(cmd: list[str], runs: int, cwd: str) -> tuple[float, float]:
    """Median (CPU seconds, wall seconds) of ``cmd`` over ``runs`` runs after one warm-up."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run(cmd, cwd=cwd, capture_output=True, check=True, env=env)
    cpu, wall = [], []
    for _ in range(runs):
        c0, t0 = child_cpu(), time.perf_counter()
        subprocess.run(cmd, cwd=cwd, capture_output=True, check=True, env=env)
        wall.append(time.perf_counter() - t0)
        cpu.append(child_cpu() - c0)
    return statistics.median(cpu), statistics.median(wall)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        plan = [str(BIN / "dhs"), "stage=plan", f"paths.data_root={tmp}/data", f"paths.runs_root={tmp}/runs"]
        cmds = {
            'python -c "import hydra, omegaconf"': [sys.executable, "-c", "import hydra, omegaconf"],
            "dhs --help": [str(BIN / "dhs"), "--help"],
            "dhs stage=plan": plan,
        }
        res = {name: measure(cmd, args.runs, tmp) for name, cmd in cmds.items()}
    ref = res['python -c "import hydra, omegaconf"'][0]
    print(f"load average {os.getloadavg()[0]:.2f}, {args.runs} runs each (median)")
    print(f"{'command':<36}{'CPU s':>8}{'wall s':>9}{'CPU x reference':>17}")
    for name, (cpu, wall) in res.items():
        print(f"{name:<36}{cpu:>8.3f}{wall:>9.3f}{cpu / ref:>17.2f}")
    print(f"RESULT help_cpu_s={res['dhs --help'][0]:.3f} plan_cpu_s={res['dhs stage=plan'][0]:.3f} "
          f"reference_cpu_s={ref:.3f}")


if __name__ == "__main__":
    main()
