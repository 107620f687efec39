"""What start-up skips changes nothing: the shared ConfigStore keeps every composition its own,
and a run that sets ``hydra.mode`` still gets the mode it asks for."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

from hydra.core.config_store import ConfigStore

import dhs.config.schema  # noqa: F401  (registers the configs and shares the store)

from tests.helpers import compose_config

BIN = Path(sys.executable).parent


def test_copies_share_the_config_store_and_compositions_stay_apart():
    cs = ConfigStore.instance()
    assert copy.deepcopy({"store": cs})["store"] is cs
    a = compose_config(["psf=gaussian", "psf.default_fwhm_arcsec=2.0"])
    a.psf.default_fwhm_arcsec = 9.0
    b = compose_config(["psf=gaussian"])
    assert b.psf.default_fwhm_arcsec == 1.3 and "beta" not in b.psf
    assert compose_config([]).psf.beta == 3.5  # the moffat default, untouched by the gaussian runs


def test_a_mode_set_on_the_command_line_is_still_read(tmp_path):
    env = {**os.environ, "COLUMNS": "200"}
    out = subprocess.run([str(BIN / "dhs"), "hydra.mode=MULTIRUN", "stage=plan",
                          f"paths.data_root={tmp_path}/data", f"paths.runs_root={tmp_path}/runs"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=120, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert list((tmp_path / "runs" / "multirun").rglob("dhs_run.json"))  # a sweep of one job
    out = subprocess.run([str(BIN / "dhs"), "stage=plan", f"paths.data_root={tmp_path}/data",
                          f"paths.runs_root={tmp_path}/runs2"], capture_output=True, text=True,
                         cwd=tmp_path, timeout=120, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    runs = list((tmp_path / "runs2").rglob("dhs_run.json"))
    assert len(runs) == 1 and "multirun" not in str(runs[0])


#: Packages that `dhs --help` and `dhs stage=plan` must not load (each costs 0.1 to 2 s of CPU).
HEAVY = ("numpy", "scipy", "pyarrow", "astropy", "numba")

#: Imports the packages of argv[2] (a comma list, may be empty), runs the CLI's entry point with
#: argv[3:] in this process, then writes the heavy packages found in sys.modules to argv[1] (JSON).
_PROBE = """
import json, sys
out, pre, args = sys.argv[1], sys.argv[2], sys.argv[3:]
for name in filter(None, pre.split(",")):
    __import__(name)
sys.argv = ["dhs", *args]
from dhs.cli import main
try:
    main()
finally:
    heavy = sorted({m.split(".")[0] for m in sys.modules} & set(%r))
    with open(out, "w") as f:
        json.dump(heavy, f)
""" % (HEAVY,)


def _heavy_after(tmp_path: Path, args: list[str], pre: str = "") -> tuple[list[str], str]:
    out = tmp_path / "heavy.json"
    run = subprocess.run([sys.executable, "-c", _PROBE, str(out), pre, *args], capture_output=True,
                         text=True, cwd=tmp_path, timeout=120, env={**os.environ, "COLUMNS": "200"})
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(out.read_text()), run.stdout


def test_help_and_plan_load_no_numerical_package(tmp_path):
    heavy, text = _heavy_after(tmp_path, ["--help"])
    assert "4c (inject)" in text and heavy == []
    heavy, text = _heavy_after(tmp_path, ["stage=plan", f"paths.data_root={tmp_path}/data",
                                          f"paths.runs_root={tmp_path}/runs"])
    assert "datasets per stage" in text and "kernel_pix_at_default_fwhm" in text
    assert heavy == []
    # the probe sees what the process loaded
    assert _heavy_after(tmp_path, ["--help"], pre="numpy")[0] == ["numpy"]
