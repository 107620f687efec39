"""Scripts that go to S3 with an EMR submission: the node bootstrap and the spark-submit driver.

The bootstrap action runs on every node before any step: it installs the interpreter if the
image lacks it, the dhs wheel and its dependencies from PyPI (pyspark comes with EMR), and sets
the environment the executors need. The driver is the Python file spark-submit runs: it is the
``dhs`` command line, with the step's arguments as Hydra overrides.
"""

from __future__ import annotations

import shlex
from typing import Sequence

#: Environment every node and every executor gets (also passed as spark.executorEnv.*).
NODE_ENV: dict[str, str] = {
    "NUMBA_CACHE_DIR": "/tmp/numba_cache",
    "MPLCONFIGDIR": "/tmp/matplotlib",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "PYTHONUNBUFFERED": "1",
}

_BOOTSTRAP = """#!/bin/bash
# dhs bootstrap action: installs dhs on every node of the cluster.
# Usage (EMR ScriptBootstrapAction): bootstrap.sh <s3 URI of the dhs wheel>
set -euxo pipefail
WHEEL_URI="$1"
PYTHON={python}

if ! command -v "$PYTHON" >/dev/null 2>&1; then
  sudo dnf install -y "$PYTHON" "$PYTHON-pip" || sudo yum install -y "$PYTHON" "$PYTHON-pip"
fi
if ! "$PYTHON" -m pip --version >/dev/null 2>&1; then
  sudo "$PYTHON" -m ensurepip --upgrade
fi

WORK="$(mktemp -d)"
aws s3 cp "$WHEEL_URI" "$WORK/"
sudo "$PYTHON" -m pip install --quiet --upgrade pip
# The wheel and its dependencies; pyspark is the cluster's own.
sudo "$PYTHON" -m pip install --quiet "$WORK/$(basename "$WHEEL_URI")"

{env_lines}
{extra}
"$PYTHON" -c "import importlib.metadata as m; print('dhs', m.version('dhs'), 'installed')"
"""

_DRIVER = '''"""spark-submit entry point: runs the dhs command line with this step's arguments."""

import sys

from dhs.cli import main

if __name__ == "__main__":
    sys.argv = ["dhs", *sys.argv[1:]]
    main()
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
