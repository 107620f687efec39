"""A non-editable wheel install runs `dhs stage=plan` from another directory (config tree packaged)."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_wheel_contains_the_config_tree_and_runs_from_elsewhere(tmp_path):
    wheel_dir = tmp_path / "wheel"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(wheel_dir), str(ROOT)], check=True, capture_output=True, timeout=300)
    (wheel,) = wheel_dir.glob("dhs-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "dhs/conf/config.yaml" in names and "dhs/conf/psf/moffat.yaml" in names
    assert "dhs/conf/grid/grid_sota.yaml" in names
    assert any(n.startswith("hydra_plugins/dhs_launcher/") for n in names)
    # A fresh venv with only the wheel; dependencies come from this interpreter's site-packages
    # through a path entry (not a site dir, so the editable finder there stays inactive).
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
                    "--no-deps", "-q", str(wheel)], check=True, capture_output=True, timeout=300)
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    vsite = subprocess.run([str(venv / "bin" / "python"), "-c", code],
                           capture_output=True, text=True, check=True).stdout.strip()
    Path(vsite, "zz_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = subprocess.run([str(venv / "bin" / "dhs"), "stage=plan", "psf=gaussian"], cwd=elsewhere,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "gaussian" in out.stdout and "datasets per stage" in out.stdout
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import dhs; print(dhs.__file__)"],
                           cwd=elsewhere, capture_output=True, text=True, check=True).stdout
    assert str(venv) in where  # the installed copy, not the source tree
    assert list((elsewhere / "outputs" / "runs").rglob("dhs_run.json"))
