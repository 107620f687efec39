"""Each 4c error path marks its rows and the run finishes: edge, missing/corrupt file, NaN, blacklist."""

from __future__ import annotations

import shutil

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from astropy.io import fits

from dhs.errors import RunFailedError
from dhs.stages import layout
from dhs.io import datasets as dio
from dhs.fetch.blacklist import write_rows
from dhs.survey.files import coadd_relpath
from dhs.survey.wcs import nearest_pixel
from tests.helpers import compose_config
from tests.helpers import run_stage


def _custom_manifest(cfg, exp, rows: pa.Table) -> None:
    mdir = layout.manifest_dir(cfg, exp)
    dio.write_shard(rows, mdir, "00000")
    dio.mark_success(mdir, {"rows": rows.num_rows})


@pytest.fixture(scope="module")
def broken(mini_base, mini_root, tmp_path_factory):
    """A copy of the survey with a missing file, a corrupt file and NaN pixels, a blacklist,
    and a manifest of a few rows per brick (one moved to the brick edge)."""
    work = tmp_path_factory.mktemp("broken")
    coadd = work / "coadd"
    shutil.copytree(mini_root / "mock_survey" / "coadd", coadd)
    cfg0 = compose_config([*mini_base, "stage=4c"])
    exp = layout.experiment_ids(cfg0)[0]
    man = dio.read_dataset(layout.manifest_dir(cfg0, exp))
    man = man.take(pc.sort_indices(man, [("brickname", "ascending"), ("task_id", "ascending")]))
    bricks = sorted(set(man.column("brickname").to_pylist()))
    assert len(bricks) == 3
    picks = []
    for b in bricks:
        idx = np.flatnonzero(np.asarray(man.column("brickname").to_pylist()) == b)
        picks += list(idx[man.column("is_control").to_numpy()[idx] == 0][:4])
    rows = man.take(pa.array(picks))
    # row 0 (brick 0) moves to the brick's corner: its stamp cannot fit
    hdr = fits.getheader(coadd / coadd_relpath(bricks[0], "image", "r"), 1)
    from astropy.wcs import WCS

    ra_c, dec_c = WCS(hdr).pixel_to_world_values(3, 3)
    ra = rows.column("ra").to_numpy().copy()
    dec = rows.column("dec").to_numpy().copy()
    ra[0], dec[0] = float(ra_c), float(dec_c)
    rows = rows.set_column(rows.column_names.index("ra"), "ra", pa.array(ra))
    rows = rows.set_column(rows.column_names.index("dec"), "dec", pa.array(dec))
    # NaN pixels at row 1's position in brick 0's z image
    path = coadd / coadd_relpath(bricks[0], "image", "z")
    with fits.open(path) as hdul:
        data, header = hdul[1].data.copy(), hdul[1].header.copy()
    ix, iy = nearest_pixel(WCS(header), ra[1], dec[1])
    data[int(iy) - 3:int(iy) + 3, int(ix) - 3:int(ix) + 3] = np.nan
    fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(data, header=header, compression_type="RICE_1")]
                 ).writeto(path, overwrite=True)
    # brick 1: its r image is missing; brick 2: blacklisted
    (coadd / coadd_relpath(bricks[1], "image", "r")).unlink()
    over = [*mini_base, "stage=4c", f"survey.base_url={coadd}", "variant=broken", "inject.run_name=err",
            f"paths.cache_root={work}/cache"]
    cfg = compose_config(over)
    _custom_manifest(cfg, exp, rows)
    write_rows(layout.blacklist_path(cfg), [{"brick": bricks[2], "file": "image-g", "status": 404,
                                             "time": "2026-01-01T00:00:00Z", "base_url": str(coadd)}])
    with pytest.raises(RunFailedError, match=r"stage 4c: 8 of 12 row\(s\) failed for good") as failed:
        run_stage(over)
    summary = failed.value.summary
    metrics = dio.read_dataset(layout.metrics_dir(cfg, exp)).to_pandas()
    return {"over": over, "cfg": cfg, "exp": exp, "bricks": bricks, "metrics": metrics, "rows": rows,
            "coadd": coadd, "summary": summary}


def _codes(metrics, brick):
    return metrics[metrics.brickname == brick].set_index("task_id").error_code


def test_edge_nan_missing_and_blacklisted_rows(broken):
    m, b, rows = broken["metrics"], broken["bricks"], broken["rows"]
    tid = rows.column("task_id").to_pylist()
    codes = m.set_index("task_id").error_code
    assert codes[tid[0]] == "edge"
    assert codes[tid[1]] == "nan_pixels"
    assert set(codes[tid[2:4]]) == {""}
    assert set(_codes(m, b[1])) == {"missing_file"}
    assert set(_codes(m, b[2])) == {"blacklisted_brick"}
    bad = m[m.error_code != ""]
    assert (bad.cutout_ok == 0).all() and (bad.metrics_ok == 0).all() and bad.arc_snr.isna().all()
    good = m[m.error_code == ""]
    assert (good.cutout_ok == 1).all() and (good.metrics_ok == 1).all()
    exp_summary = broken["summary"]["experiments"][broken["exp"]]
    assert exp_summary["errors"] == {"ok": 2, "edge": 1, "nan_pixels": 1, "missing_file": 4,
                                     "blacklisted_brick": 4}


def test_corrupt_file_is_its_own_code(broken, tmp_path):
    coadd = tmp_path / "coadd"
    shutil.copytree(broken["coadd"], coadd)
    target = coadd / coadd_relpath(broken["bricks"][0], "invvar", "g")
    target.write_bytes(b"SIMPLE  = T" + b"\0" * 5000)
    over = [o for o in broken["over"] if not o.startswith(("survey.base_url", "inject.run_name"))]
    over += [f"survey.base_url={coadd}", "inject.run_name=corrupt"]
    with pytest.raises(RunFailedError, match="3 can be retried: `dhs.* retry_failed=true`"):
        run_stage(over)
    cfg = compose_config(over)
    m = dio.read_dataset(layout.metrics_dir(cfg, broken["exp"])).to_pandas()
    assert set(_codes(m, broken["bricks"][0])) <= {"corrupt_file", "edge"}
    assert (_codes(m, broken["bricks"][0]) == "corrupt_file").sum() >= 3
    # the blacklist was made against the other copy of the survey: not applied here
    assert set(_codes(m, broken["bricks"][2])) == {""}
