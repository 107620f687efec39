"""`dhs stage=parent` on the embedded survey's sweeps: the mock's own LRG flags come back, from
local files and over HTTP, and stage 4a runs on what it wrote."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from dhs.errors import DhsError
from dhs.io.tables import read_table
from dhs.parent import lrg
from tests.helpers import DEBUG_64, SMALL_SURVEY, run_stage
from tests.servers import http_server


@pytest.fixture(scope="module")
def survey(tmp_path_factory):
    root = tmp_path_factory.mktemp("parent_stage")
    base = [f"paths.data_root={root}", *SMALL_SURVEY, "cluster.n_jobs=1"]
    run_stage(["stage=mock_survey", *base])
    return root, base


def _flags(table) -> dict:
    df = table.to_pandas().set_index(["brickname", "objid"]).sort_index()
    return df


def test_stage_parent_reproduces_the_mock_lrg_flags(survey):
    root, base = survey
    summary = run_stage(["stage=parent", *base])
    assert summary["catalogs"] >= 1 and summary["rows_read"] > summary["parent_rows"] > 0
    out = root / "parent" / "mock"
    got = _flags(read_table(str(out / "parent_catalog.parquet"), ["brickname", "objid", *lrg.FLAGS,
                                                                  "zmag_mw", "shape_e1", "shape_e2"],
                            what="parent")[0])
    mock = _flags(pq.read_table(root / "mock_survey" / "tables" / "parent_catalog.parquet"))
    assert list(got.index) == list(mock.index)  # the same galaxies, stars and extras rejected
    for flag in lrg.VARIANT_CUTS:
        assert (got[flag] == mock[flag]).all(), flag
    assert 0 < got["is_v3_color_relaxed"].sum() < len(got)
    assert (abs(got["shape_e1"] - mock["shape_e1"]) < 1e-6).all()
    for name in ("bricks_with_region.parquet", "region_metrics.parquet", "region_selections.parquet"):
        assert (out / name).is_file()
    # a second run with the same settings does nothing
    assert run_stage(["stage=parent", *base])["skipped_existing"] is True


def test_stage_parent_reads_catalogs_over_http_and_feeds_stage_4a(survey, tmp_path):
    root, base = survey
    sweeps = root / "mock_survey" / "sweep" / "10.1"
    names = sorted(p.name for p in sweeps.iterdir())
    with http_server(sweeps) as srv:
        out = tmp_path / "tables"
        over = [*base, f"survey.sweep_root={srv.url}", f"parent.out_root={out}",
                f"parent.catalogs=[{','.join(names)}]", "parent.chunk_rows=50"]
        summary = run_stage(["stage=parent", *over])
        assert any(r[0] == "GET" and r[2] == 206 for r in srv.requests())  # ranged reads
    local = read_table(str(root / "parent" / "mock" / "parent_catalog.parquet"), ["objid"], what="p")[0]
    assert summary["parent_rows"] == local.num_rows
    s4a = run_stage(["stage=4a", *base, *DEBUG_64, f"survey.tables_root={out}",
                     "manifest.selection_set_ids=[all_regions]"])
    (counts,) = s4a["experiments"].values()
    assert counts["tasks"] > 0


def test_an_http_folder_needs_file_names(survey):
    _, base = survey
    with pytest.raises(DhsError, match="cannot be listed"):
        run_stage(["stage=parent", *base, "survey.sweep_root=http://127.0.0.1:9/sweep",
                   "parent.out_root=/nonexistent/never"])


def test_stage_parent_reads_an_s3_folder_and_writes_to_s3(survey):
    from tests.s3_server import moto_server, storage_overrides

    root, base = survey
    run_stage(["stage=parent", *base])  # the local run to compare with (skipped when done)
    sweeps = root / "mock_survey" / "sweep" / "10.1"
    with moto_server() as srv:
        srv.make_bucket("dr10")
        s3 = srv.client("s3")
        for p in sorted(sweeps.iterdir()):
            s3.upload_file(str(p), "dr10", f"sweep/10.1/{p.name}")
        over = [*base, *storage_overrides(srv), "parent.catalogs=[s3://dr10/sweep/10.1]",
                "parent.out_root=s3://dr10/parent", "parent.chunk_rows=40"]
        summary = run_stage(["stage=parent", *over])
        assert summary["catalogs"] == len(list(sweeps.iterdir()))
        keys = {o["Key"] for o in s3.list_objects_v2(Bucket="dr10", Prefix="parent/")["Contents"]}
        assert {"parent/bricks_with_region.parquet", "parent/region_selections.parquet"} <= keys
        got = read_table("s3://dr10/parent/parent_catalog.parquet", ["objid", *lrg.FLAGS], what="parent")[0]
    local = read_table(str(root / "parent" / "mock" / "parent_catalog.parquet"), ["objid", *lrg.FLAGS],
                       what="parent")[0]
    assert got.num_rows == local.num_rows and got.num_rows == summary["parent_rows"]
    assert sorted(got.column("objid").to_pylist()) == sorted(local.column("objid").to_pylist())


def test_an_interrupted_run_resumes_and_force_starts_over(survey, tmp_path):
    import os

    root, base = survey
    over = [*base, f"parent.out_root={tmp_path / 'p'}"]
    first = run_stage(["stage=parent", *over])
    done = tmp_path / "p" / "_SUCCESS"
    os.remove(done)  # as if the run had stopped before its tables
    part = sorted((tmp_path / "p" / "_brickstats").iterdir())[0]
    os.remove(part)  # and one catalog had not been committed
    again = run_stage(["stage=parent", *over])
    assert first["catalogs"] > 1 and again["catalogs_read"] == 1
    assert again["parent_rows"] == first["parent_rows"]
    forced = run_stage(["stage=parent", *over, "force=true"])
    assert forced["catalogs_read"] == forced["catalogs"] and forced["parent_rows"] == first["parent_rows"]
