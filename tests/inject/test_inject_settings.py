"""Stage 4c's settings: built once from the config, shipped to workers, recorded; one pixel scale
for the mock bricks, the stamps cut from them and the arcs rendered into them."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pytest
from astropy.io import fits

from dhs.stages import layout
from dhs.errors import DhsError
from dhs.io import datasets as dio
from dhs.stages.settings import inject_settings
from dhs.survey.files import coadd_relpath
from tests.helpers import DEBUG_64, SMALL_SURVEY, compose_config, run_stage

DHS = str(Path(sys.executable).parent / "dhs")


def test_plan_records_the_kernel_size_set_by_the_psf_keys(tmp_path):
    """`dhs stage=plan psf.kernel_fwhm_multiple=9` records the kernel the 4c workers will use."""
    sizes = {}
    for multiple in ("5", "9"):
        run = tmp_path / multiple
        proc = subprocess.run([DHS, "stage=plan", f"psf.kernel_fwhm_multiple={multiple}",
                               f"hydra.run.dir={run}"], cwd=tmp_path, capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        psf = json.loads((run / "dhs_run.json").read_text())["summary"]["settings"]["4c"]["psf"]
        assert psf["kernel_fwhm_multiple"] == float(multiple)
        sizes[multiple] = psf["kernel_pix_at_default_fwhm"]
    # default FWHM 1.3 arcsec at 0.262 arcsec/pixel: 2 ceil(m/2 * 1.3 / 0.262) + 1, below the cap 63
    assert sizes == {"5": {"64": 27, "96": 27}, "9": {"64": 47, "96": 47}}


def test_the_settings_shipped_to_workers_are_small_and_hold_no_config(compose):
    s = inject_settings(compose(["stage=4c", "source=cosmos", "psf=gaussian"]))
    blob = pickle.dumps(s)
    assert len(blob) < 4000 and b"omegaconf" not in blob
    assert s.psf.model == "gaussian" and s.psf.beta is None and s.source.kind == "cosmos"
    with pytest.raises(AttributeError):
        s.pixscale_arcsec = 0.3  # frozen


def _arc_radius_ratio(over: list[str], pixscale: float) -> float:
    """Median of (flux-weighted arc radius in pixels x pixscale) / expected image radius (arcsec):
    about one number whatever the pixel scale, when arcs are drawn at the pixel scale of the stamp."""
    cfg = compose_config(over)
    (exp,) = layout.experiment_ids(cfg)
    m = dio.read_dataset(layout.metrics_dir(cfg, exp)).sort_by("task_id").to_pandas()
    st = dio.read_dataset(layout.stamps_dir(cfg, exp)).sort_by("task_id")
    arc = np.asarray(pc.list_flatten(st.column("arc")).to_numpy()).reshape(st.num_rows, 3, 64, 64)[:, 1]
    yy, xx = np.indices((64, 64))
    r = np.hypot(yy - 32, xx - 32)
    total = arc.sum(axis=(1, 2))
    r_pix = (arc * r).sum(axis=(1, 2)) / np.where(total > 0, total, 1.0)
    ok = ((m.cutout_ok == 1) & (m.is_control == 0) & (total > 0) & (m.expected_arc_radius > 0.5)).to_numpy()
    assert ok.sum() > 50
    return float(np.median(r_pix[ok] * pixscale / m.expected_arc_radius.to_numpy()[ok]))


def test_one_pixel_scale_moves_bricks_cutouts_and_arcs_together(mini_base, tmp_path):
    root = tmp_path / "px03"
    base = [f"paths.data_root={root}", *SMALL_SURVEY, *DEBUG_64, "cache.mode=none", "cluster.n_jobs=1",
            "survey.pixscale_arcsec=0.3"]
    run_stage(["stage=mock_survey", *base])
    run_stage(["stage=4a", *base])
    arcs = ["stage=4c", "source=sersic", "output.save_arc=true", "inject.run_name=px"]
    run_stage([*base, *arcs])
    run_stage([*mini_base, *arcs])
    # the bricks: legacypipe's CD matrix at 0.3 arcsec/pixel
    cfg = compose_config([*base, *arcs])
    brick = dio.read_dataset(layout.bricks_manifest_dir(cfg)).column("brickname")[0].as_py()
    header = fits.getheader(Path(layout.mock_survey_coadd(cfg)) / coadd_relpath(brick, "image", "r"), 1)
    assert (header["CD1_1"], header["CD2_2"]) == pytest.approx((-0.3 / 3600, 0.3 / 3600), rel=1e-12)
    # the arcs: the same extent in arcsec, so 0.262/0.3 as many pixels (a renderer at 0.262 gives 1.145)
    ratio = _arc_radius_ratio([*base, *arcs], 0.3) / _arc_radius_ratio([*mini_base, *arcs], 0.262)
    assert abs(ratio - 1.0) < 0.03, ratio
    # the record of the run names the pixel scale it used
    (exp,) = layout.experiment_ids(cfg)
    record = json.loads((Path(layout.metrics_dir(cfg, exp)) / "_dhs_record.json").read_text())
    assert record["inject_settings"]["pixscale_arcsec"] == 0.3
    # the stamps: cutting 0.3 arcsec bricks with another configured pixel scale is refused
    with pytest.raises(DhsError, match=r"0\.3 arcsec/pixel but survey\.pixscale_arcsec=0\.262; set "
                                       r"survey\.pixscale_arcsec=0\.3"):
        run_stage([*base[:-1], *arcs, "inject.run_name=px_wrong", "inject.metrics_only=true"])
