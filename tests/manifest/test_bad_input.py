"""Bad inputs fail fast with messages that name the file, the column and the values."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from tests.manifest.synth import write_tables

from dhs.manifest.candidates import EmptyManifestError
from dhs.io.tables import InputTableError

SMALL = ("tier.stamp_sizes=[64]", "tier.bandsets=[grz]")


def _with(tables, key, table):
    return {**tables, key: table}


@pytest.mark.parametrize("key,column", [("parent", "rmag"), ("parent", "is_v3_color_relaxed"),
                                        ("bricks", "psfdepth_r"), ("selections", "ranking_mode")])
def test_missing_column_names_column_file_and_present_columns(run4a, tables, tmp_path, key, column):
    bad = _with(tables, key, tables[key].drop_columns([column]))
    paths = write_tables(tmp_path / "bad", bad)
    with pytest.raises(InputTableError) as err:
        run4a(*SMALL, paths=paths)
    msg = str(err.value)
    assert repr(column) in msg and str(tmp_path / "bad") in msg and "columns present:" in msg
    assert not (tmp_path / "data" / "phase4a").exists()


def test_unknown_region_split_is_an_error(run4a, tables, tmp_path):
    p = tables["parent"]
    split = p.column("region_split").to_numpy(zero_copy_only=False).copy()
    split[:3] = "holdout"
    paths = write_tables(tmp_path / "bad", _with(tables, "parent", p.set_column(
        p.column_names.index("region_split"), "region_split", pa.array(split))))
    with pytest.raises(InputTableError, match=r"'region_split' has values \{'holdout': \d\}.*train, val, test"):
        run4a(*SMALL, paths=paths)


def test_duplicates_are_dropped_with_a_count(run4a, tables, tmp_path):
    p = tables["parent"]
    dup = pa.concat_tables([p, p.slice(0, 25)])
    paths = write_tables(tmp_path / "dup", _with(tables, "parent", dup))
    cfg_d, res = run4a(*SMALL, paths=paths, root=tmp_path / "d")
    n_dup = pc.sum(p.slice(0, 25).column("is_v3_color_relaxed")).as_py()
    assert any(f"dropped {n_dup} duplicate rows" in w for w in res["warnings"]), res["warnings"]
    assert ("unique (brickname, objid)", pc.sum(p.column("is_v3_color_relaxed")).as_py()) in res["funnel"]
    # same manifest as without the duplicates
    cfg_c, _ = run4a(*SMALL, root=tmp_path / "c")
    from dhs.stages import layout
    from dhs.io import datasets as dio

    exp = layout.experiment_ids(cfg_c)[0]
    a = dio.read_dataset(layout.manifest_dir(cfg_c, exp)).column("task_id").to_pylist()
    b = dio.read_dataset(layout.manifest_dir(cfg_d, exp)).column("task_id").to_pylist()
    assert a == b


def test_duplicates_without_objid_use_ra_dec(run4a, tables, tmp_path):
    p = tables["parent"].drop_columns(["objid"])
    p = p.set_column(p.column_names.index("is_v3_color_relaxed"), "is_v3_color_relaxed",
                     pa.array(np.ones(p.num_rows, bool)))
    paths = write_tables(tmp_path / "dup", _with(tables, "parent", pa.concat_tables([p, p.slice(5, 4)])))
    _, res = run4a(*SMALL, paths=paths)
    assert any("dropped 4 duplicate rows (same brickname, ra, dec)" in w for w in res["warnings"])


def test_empty_result_is_an_error_with_the_funnel(run4a, tables, tmp_path):
    p = tables["parent"]
    i = p.column_names.index("is_v3_color_relaxed")
    paths = write_tables(tmp_path / "none", _with(tables, "parent", p.set_column(
        i, "is_v3_color_relaxed", pa.array(np.zeros(p.num_rows, bool)))))
    funnel = r"(?s)empty manifest.*parent catalog rows: 2000.*is_v3_color_relaxed set: 0"
    with pytest.raises(EmptyManifestError, match=funnel):
        run4a(*SMALL, paths=paths)


def test_bricks_without_psf_are_filtered_and_counted(run4a, tables, tmp_path):
    b = tables["bricks"]
    psf = b.column("psfsize_r").to_numpy().copy()
    psf[:10] = np.nan
    paths = write_tables(tmp_path / "nan", _with(tables, "bricks", b.set_column(
        b.column_names.index("psfsize_r"), "psfsize_r", pa.array(psf))))
    cfg, res = run4a(*SMALL, paths=paths)
    funnel = dict(res["funnel"])
    assert funnel["with psfsize_r, psfdepth_r (brick join) and rmag"] < funnel["in a selected selection set (galaxies)"]
    from dhs.stages import layout
    from dhs.io import datasets as dio

    t = dio.read_dataset(layout.manifest_dir(cfg, layout.experiment_ids(cfg)[0]))
    assert not set(t.column("brickname").to_pylist()) & set(b.column("brickname").to_pylist()[:10])


def test_unknown_selection_set_and_missing_file(run4a, tmp_path, inputs):
    with pytest.raises(InputTableError, match=r"selection_set_ids names \['nope'\].*available"):
        run4a(*SMALL, "manifest.selection_set_ids=[nope]")
    with pytest.raises(InputTableError, match="does not exist"):
        run4a(*SMALL, paths={**inputs, "parent": str(tmp_path / "missing.parquet")})


def test_selected_sets_only(run4a):
    cfg, res = run4a(*SMALL, "manifest.selection_set_ids=[topk_density]")
    from dhs.stages import layout
    from dhs.io import datasets as dio

    t = dio.read_dataset(layout.manifest_dir(cfg, layout.experiment_ids(cfg)[0]))
    assert set(t.column("selection_set_id").to_pylist()) == {"topk_density"}
    assert set(t.column("ranking_mode").to_pylist()) == {"density"}


def test_force_with_a_bad_input_keeps_the_manifest_it_would_replace(run4a, tables, tmp_path):
    from dhs.io import storage

    cfg, _ = run4a(*SMALL, root=tmp_path / "f")
    before = storage.tree_digest(str(tmp_path / "f" / "phase4a"))
    paths = write_tables(tmp_path / "bad", _with(tables, "parent", tables["parent"].drop_columns(["rmag"])))
    with pytest.raises(InputTableError, match="rmag"):
        run4a(*SMALL, "force=true", paths=paths, root=tmp_path / "f")
    assert storage.tree_digest(str(tmp_path / "f" / "phase4a")) == before
    _, res = run4a(*SMALL, "force=true", root=tmp_path / "f")  # good inputs: rebuilt, same bytes
    assert res["experiments"] and storage.tree_digest(str(tmp_path / "f" / "phase4a"),
                                                      exclude_names=("_dhs_record.json", "_stage_config.json")) == \
        {k: v for k, v in before.items() if not k.endswith(("_dhs_record.json", "_stage_config.json"))}
