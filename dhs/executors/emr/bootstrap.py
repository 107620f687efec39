"""Scripts that go to S3 with an EMR submission: the node bootstrap and the spark-submit driver.

The bootstrap action runs on every node before any step: it installs the interpreter if the
image lacks it, the dhs wheel and its dependencies from PyPI pinned by the constraints file
staged next to the wheel (``pip install -c``: every node and every rerun gets the same versions;
pyspark comes with EMR), and sets the environment the executors need. The driver is the Python
file spark-submit runs: it is the ``dhs`` command line, with the step's arguments as Hydra
overrides; it writes the run directory in the container and copies it to S3 when the run ends
(the container's folder vanishes with the container).
"""

from __future__ import annotations

import shlex
from typing import Sequence

from dhs.executors import WORKER_ENV

#: Environment every node and every executor gets (also passed as spark.executorEnv.*).
NODE_ENV: dict[str, str] = {**WORKER_ENV, "PYTHONUNBUFFERED": "1"}

_BOOTSTRAP = """#!/bin/bash
# dhs bootstrap action: installs dhs on every node of the cluster.
# Usage (EMR ScriptBootstrapAction): bootstrap.sh <s3 URI of the dhs wheel> <s3 URI of constraints.txt>
set -euxo pipefail
WHEEL_URI="$1"
CONSTRAINTS_URI="$2"
PYTHON={python}

if ! command -v "$PYTHON" >/dev/null 2>&1; then
  sudo dnf install -y "$PYTHON" "$PYTHON-pip" || sudo yum install -y "$PYTHON" "$PYTHON-pip"
fi
if ! "$PYTHON" -m pip --version >/dev/null 2>&1; then
  sudo "$PYTHON" -m ensurepip --upgrade
fi

WORK="$(mktemp -d)"
aws s3 cp "$WHEEL_URI" "$WORK/"
aws s3 cp "$CONSTRAINTS_URI" "$WORK/constraints.txt"
sudo "$PYTHON" -m pip install --quiet --upgrade pip
# The wheel and its dependencies at the pinned versions; pyspark is the cluster's own.
sudo "$PYTHON" -m pip install --quiet -c "$WORK/constraints.txt" "$WORK/$(basename "$WHEEL_URI")"

{env_lines}
{extra}
"$PYTHON" -c "import importlib.metadata as m; print('dhs', m.version('dhs'), 'installed')"
"""

_DRIVER = '''"""spark-submit entry point: runs the dhs command line with this step's arguments.

Arguments: <run directory here> <URI it is copied to when the run ends> <overrides...>.
"""

import sys
from pathlib import Path

from dhs.cli import main


def copy_run(run_dir, dest):
    from dhs.io import storage

    for path in sorted(Path(run_dir).rglob("*")):
        if path.is_file():
            storage.write_bytes_atomic(storage.join(dest, path.relative_to(run_dir).as_posix()),
                                       path.read_bytes())
    print(f"run directory copied to {dest}", file=sys.stderr)


if __name__ == "__main__":
    run_dir, dest = sys.argv[1], sys.argv[2]
    sys.argv = ["dhs", f"hydra.run.dir={run_dir}", *sys.argv[3:]]
    try:
        main()
    finally:
        try:
            copy_run(run_dir, dest)
        except Exception as exc:  # the step's own outcome stands; the copy is reported
            print(f"copying the run directory to {dest} failed: {exc}", file=sys.stderr)
'''


def bootstrap_script(python: str = "python3.11", extra_commands: Sequence[str] = ()) -> str:
    """The bootstrap shell script (bash) for ``python`` plus ``extra_commands`` lines."""
    env_lines = [f"sudo mkdir -p {NODE_ENV['NUMBA_CACHE_DIR']} {NODE_ENV['MPLCONFIGDIR']}",
                 f"sudo chmod 1777 {NODE_ENV['NUMBA_CACHE_DIR']} {NODE_ENV['MPLCONFIGDIR']}",
                 "sudo tee /etc/profile.d/dhs.sh >/dev/null <<'DHS_ENV'"]
    env_lines += [f"export {k}={shlex.quote(v)}" for k, v in NODE_ENV.items()]
    env_lines += ["DHS_ENV"]
    return _BOOTSTRAP.format(python=shlex.quote(python), env_lines="\n".join(env_lines),
                             extra="\n".join(extra_commands))


def driver_script() -> str:
    """The Python file given to spark-submit."""
    return _DRIVER
