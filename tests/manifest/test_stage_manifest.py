"""Stage 4a end to end on synthetic inputs: determinism, stratification, controls, replicates."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from dhs import schema
from dhs.stages import layout
from dhs.stages import settings as stage_settings
from dhs.io import datasets as dio
from dhs.manifest.candidates import SPLITS

SMALL = ("tier.stamp_sizes=[64]", "tier.bandsets=[grz]")


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.parquet"))}


def _read(cfg, exp=None):
    exp = exp or layout.experiment_ids(cfg)[0]
    return dio.read_dataset(layout.manifest_dir(cfg, exp))


def test_outputs_schema_layout_and_records(run4a):
    cfg, res = run4a()
    exps = layout.experiment_ids(cfg)
    assert sorted(res["experiments"]) == sorted(exps) and len(exps) == 4
    assert "debug_stamp64_bandsgrz_gridgrid_small" in exps
    for exp in exps:
        d = layout.manifest_dir(cfg, exp)
        assert dio.is_complete(d)
        files = dio.data_files(d)
        assert {Path(f).parent.name for f in files} == {f"region_split={s}" for s in SPLITS}
        for f in files:
            t = pq.read_table(f)
            assert t.schema.names == [n for n in schema.names(schema.MANIFEST) if n != "region_split"]
            keys = list(zip(t.column("brickname").to_pylist(), t.column("task_id").to_pylist()))
            assert keys == sorted(keys)
    t = _read(cfg)
    # debug: 2 selection sets x 3 splits x 48 configs x 5 galaxies x 2 replicates, no controls
    assert t.num_rows == 2 * 3 * 48 * 5 * 2 == res["experiments"][exps[0]]["tasks"]
    assert pc.sum(t.column("is_control")).as_py() == 0
    bricks = dio.read_dataset(layout.bricks_manifest_dir(cfg), partition_col=None)
    for exp in exps:
        sub = bricks.filter(pc.equal(bricks.column("experiment_id"), exp))
        assert pc.sum(sub.column("n_tasks")).as_py() == t.num_rows
        assert set(sub.column("brickname").to_pylist()) == set(t.column("brickname").to_pylist())
    rec = json.loads(Path(layout.stage4a_record(cfg)).read_text())
    assert rec["seeds"] == {"split_seed": 13, "seed_base": 42}
    assert len(rec["quartile_edges"]["psfsize_r"]) == 3 and len(rec["quartile_edges"]["psfdepth_r"]) == 3
    tier = rec["tiers"]["debug"]
    assert tier["settings"]["n_per_config"] == 5 and tier["experiments"][exps[0]]["tasks"] == t.num_rows
    assert Path(layout.manifest_dir(cfg, exps[0]), "_dhs_record.json").exists()


def test_same_inputs_same_bytes_and_split_seed_changes_selection(run4a, tmp_path):
    cfg_a, _ = run4a(*SMALL, root=tmp_path / "a")
    cfg_b, _ = run4a(*SMALL, root=tmp_path / "b")
    fa, fb = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert fa and fa == fb
    cfg_c, _ = run4a(*SMALL, "seeds.split_seed=14", root=tmp_path / "c")
    pick = lambda t: set(zip(t.column("brickname").to_pylist(), t.column("ra").to_pylist(),  # noqa: E731
                             t.column("config_id").to_pylist()))
    a, c = pick(_read(cfg_a)), pick(_read(cfg_c))
    assert a != c
    cfg_d, _ = run4a(*SMALL, "seeds.seed_base=7", root=tmp_path / "d")
    ta, td = _read(cfg_a), _read(cfg_d)
    assert pick(ta) == pick(td)  # seed_base changes the draws, not the selection
    assert not np.array_equal(np.sort(ta.column("lens_e").to_numpy()), np.sort(td.column("lens_e").to_numpy()))


def test_every_nonempty_stratum_is_represented_and_configs_are_exact(run4a):
    cfg, res = run4a(*SMALL, "tier.replicates=1")
    t = _read(cfg)
    grid = stage_settings.grid(cfg)
    rec = json.loads(Path(layout.stage4a_record(cfg)).read_text())
    for g in rec["tiers"]["debug"]["groups"]:
        sub = t.filter(pc.and_(pc.equal(t.column("selection_set_id"), g["selection_set_id"]),
                               pc.equal(t.column("region_split"), g["region_split"])))
        strata = set(zip(sub.column("psf_bin").to_pylist(), sub.column("depth_bin").to_pylist()))
        assert len(strata) == g["strata"] > 1
        counts = np.unique(sub.column("config_id").to_numpy(zero_copy_only=False), return_counts=True)[1]
        assert len(counts) == len(grid) and (counts == 5).all()
        # no galaxy repeats within a config
        per = set(zip(sub.column("config_id").to_pylist(), sub.column("brickname").to_pylist(),
                      sub.column("ra").to_pylist()))
        assert len(per) == sub.num_rows


def test_quartile_edges_come_from_the_brick_table(run4a, tables):
    _, res = run4a(*SMALL)
    psf = tables["bricks"].column("psfsize_r").to_numpy()
    assert np.allclose(res["quartile_edges"]["psfsize_r"], np.quantile(psf, [0.25, 0.5, 0.75]))


@pytest.mark.parametrize("controls", ["paired", "unpaired"])
def test_control_fraction_and_pairing(run4a, controls):
    cfg, _ = run4a(*SMALL, "tier.n_per_config=2", "tier.control_frac=0.2", f"tier.controls={controls}")
    t = _read(cfg)
    ctrl = t.column("is_control").to_numpy() == 1
    # per group per replicate: 96 injections, round(96 * 0.2 / 0.8) = 24 controls
    assert ctrl.sum() == 6 * 24 * 2 and (~ctrl).sum() == 6 * 96 * 2
    ctl = t.filter(pc.equal(t.column("is_control"), 1))
    rec = json.loads(Path(layout.stage4a_record(cfg)).read_text())
    counts = rec["tiers"]["debug"]["experiments"][layout.experiment_ids(cfg)[0]]
    assert counts["controls_by_split"] == {s: 2 * 24 * 2 for s in SPLITS}
    assert set(ctl.column("config_id").to_pylist()) == {"CONTROL"}
    assert set(ctl.column("lens_model").to_pylist()) == {"CONTROL"}
    for col in ("theta_e_arcsec", "src_dmag", "src_x_arcsec", "src_gr", "lens_e", "src_mag_r"):
        assert ctl.column(col).null_count == ctl.num_rows, col
    inj = t.filter(pc.equal(t.column("is_control"), 0))
    for sset in ("topk_density", "topk_psf_weighted"):
        for split in SPLITS:
            def gal(tab):
                m = pc.and_(pc.equal(tab.column("selection_set_id"), sset), pc.equal(tab.column("region_split"), split))
                sub = tab.filter(m)
                return set(zip(sub.column("brickname").to_pylist(), sub.column("ra").to_pylist()))
            gc, gi = gal(ctl), gal(inj)
            assert len(gc) == 24
            if controls == "paired":
                assert gc <= gi
            else:
                assert not gc & gi


def test_train_tier_total_per_split_with_cycled_configs(run4a):
    cfg, res = run4a(*SMALL, "tier=train", "tier.n_total_per_split=100")
    t = _read(cfg)
    assert t.num_rows == 6 * 100 * 2
    rep0 = t.filter(pc.equal(t.column("replicate"), 0))
    ctrl = rep0.column("is_control").to_numpy() == 1
    assert ctrl.sum() == 6 * 50
    counts = np.unique(rep0.filter(pc.equal(rep0.column("is_control"), 0)).column("config_id")
                       .to_numpy(zero_copy_only=False), return_counts=True)[1]
    assert len(counts) == 48 and counts.max() - counts.min() <= 6  # 50 // 48 or one more, per group


def test_replicates_repeat_every_slot_with_fresh_draws(run4a):
    cfg, _ = run4a(*SMALL, "tier.replicates=3", "tier.control_frac=0.1")
    t = _read(cfg)
    reps = t.column("replicate").to_numpy()
    assert np.bincount(reps).tolist() == [t.num_rows // 3] * 3
    key = list(zip(t.column("selection_set_id").to_pylist(), t.column("brickname").to_pylist(),
                   t.column("ra").to_pylist(), t.column("config_id").to_pylist()))
    _, n = np.unique(np.array([str(k) for k in key]), return_counts=True)
    assert (n == 3).all()
    inj = t.filter(pc.equal(t.column("is_control"), 0))
    assert len(set(inj.column("src_x_arcsec").to_pylist())) == inj.num_rows


def test_guardrail_stops_before_any_work(run4a, compose, inputs, tmp_path):
    from dhs.stages.manifest import GuardrailError

    with pytest.raises(GuardrailError) as err:
        run4a("manifest.max_total_tasks=1000")
    msg = str(err.value)
    assert "debug_stamp96_bandsgrz_gridgrid_small: 2,880" in msg and "max_total_tasks=1,000" in msg
    assert not (tmp_path / "data").exists()


def test_skip_force_and_stale_settings(run4a, tmp_path):
    from dhs.stages.manifest import StaleManifestError

    cfg, _ = run4a(*SMALL)
    before = _files(tmp_path / "data")
    _, res = run4a(*SMALL)
    assert res["skipped"] == layout.experiment_ids(cfg) and res["experiments"] == {}
    with pytest.raises(StaleManifestError, match=r"seeds\.split_seed: 13 -> 99.*force=true"):
        run4a(*SMALL, "seeds.split_seed=99")
    _, res = run4a(*SMALL, "seeds.split_seed=99", "force=true")
    assert res["experiments"] and _files(tmp_path / "data") != before


def test_inputs_count_by_content_not_by_path_or_size(run4a, tables, tmp_path):
    """An input moved elsewhere: still current; rewritten with other values at the same size and
    modification time: the manifest is stale, and force=true rebuilds it from the new values."""
    import os
    import shutil

    from dhs.stages.manifest import StaleManifestError
    from tests.manifest.synth import write_tables

    paths = write_tables(tmp_path / "in", tables)
    bricks, path = tables["bricks"], Path(paths["bricks_with_region"])
    pq.write_table(bricks, path, compression="none", use_dictionary=False)  # fixed-width values
    cfg, _ = run4a(*SMALL, paths=paths)
    exp = layout.experiment_ids(cfg)[0]
    psf = _read(cfg).column("psfsize_r").to_pylist()
    shutil.copytree(tmp_path / "in", tmp_path / "moved")
    moved = {k: v.replace(str(tmp_path / "in"), str(tmp_path / "moved")) for k, v in paths.items()}
    assert run4a(*SMALL, paths=moved)[1]["skipped"] == [exp]

    st = path.stat()
    i = bricks.schema.get_field_index("psfsize_r")
    pq.write_table(bricks.set_column(i, "psfsize_r", pc.multiply(bricks.column("psfsize_r"), 1.25)), path,
                   compression="none", use_dictionary=False)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns
    with pytest.raises(StaleManifestError, match=r"input rows.*force=true"):
        run4a(*SMALL, paths=paths)
    cfg, res = run4a(*SMALL, "force=true", paths=paths)
    assert res["experiments"]
    np.testing.assert_allclose(_read(cfg).column("psfsize_r").to_pylist(), np.asarray(psf) * 1.25)
    assert run4a(*SMALL, paths=paths)[1]["skipped"] == [exp]


def test_interrupted_run_resumes_without_duplicates(run4a, tmp_path):
    cfg, res = run4a(*SMALL, "manifest.shard_max_tasks=300")
    exp = layout.experiment_ids(cfg)[0]
    d = Path(layout.manifest_dir(cfg, exp))
    shards = sorted(p.stem for p in (d / "_shards").glob("*.json"))
    assert len(shards) > 3 and res["experiments"][exp]["shards_written"] == len(shards)
    full = _files(tmp_path / "data")
    # simulate a kill: no _SUCCESS, last shard never committed
    (d / "_SUCCESS").unlink()
    (d / "_shards" / f"{shards[-1]}.json").unlink()
    for f in d.rglob(f"part-{shards[-1]}.parquet"):
        f.unlink()
    _, res = run4a(*SMALL, "manifest.shard_max_tasks=300")
    assert res["experiments"][exp]["shards_written"] == 1
    assert res["experiments"][exp]["shards_skipped"] == len(shards) - 1
    assert _files(tmp_path / "data") == full


@pytest.mark.parametrize("fmt", ["csv", "fits"])
def test_csv_and_fits_inputs_give_the_same_manifest(run4a, tables, tmp_path, fmt):
    from tests.manifest.synth import write_tables

    cfg_p, _ = run4a(*SMALL, root=tmp_path / "p")
    paths = write_tables(tmp_path / fmt, tables, fmt)
    cfg_o, _ = run4a(*SMALL, paths=paths, root=tmp_path / "o", )
    a, b = _read(cfg_p), _read(cfg_o)
    assert a.num_rows == b.num_rows
    for col in ("task_id", "brickname", "ra", "config_id", "src_x_arcsec", "psfsize_r"):
        assert a.column(col).to_pylist() == b.column(col).to_pylist(), col


def test_write_csv(run4a):
    cfg, res = run4a(*SMALL, "manifest.write_csv=true")
    exp = layout.experiment_ids(cfg)[0]
    files = list(Path(layout.manifest_csv_dir(cfg, exp)).glob("*.csv"))
    assert files and sum(len(f.read_text().splitlines()) - 1 for f in files) == res["experiments"][exp]["tasks"]


@pytest.mark.s3
def test_inputs_and_outputs_on_s3(compose, tables, tmp_path):
    """Inputs read from and manifests written to a local S3 server (s3a:// accepted)."""
    from dhs.context import make_context
    from dhs.io import storage
    from dhs.stages import manifest
    from tests.manifest.synth import overrides, write_tables
    from tests.s3_server import configure_storage, moto_server, storage_overrides

    local = write_tables(tmp_path / "in", tables)
    with moto_server() as srv:
        configure_storage(srv)
        try:
            bucket = srv.make_bucket("dhs-manifest")
            paths = {}
            for key, path in local.items():
                uri = f"s3a://{bucket}/tables/{Path(path).name}"
                storage.write_bytes_atomic(uri, Path(path).read_bytes())
                paths[key] = uri
            cfg = compose(overrides(paths, f"s3://{bucket}/data", *SMALL, *storage_overrides(srv)))
            res = manifest.run(cfg, make_context(tmp_path / "run"))
            exp = layout.experiment_ids(cfg)[0]
            d = layout.manifest_dir(cfg, exp)
            assert d.startswith(f"s3://{bucket}/data/phase4a/v3_color_relaxed/manifests/")
            assert dio.is_complete(d) and storage.exists(layout.stage4a_record(cfg))
            t = dio.read_dataset(d)
            assert t.num_rows == res["experiments"][exp]["tasks"] == 2880
        finally:
            storage.configure()
