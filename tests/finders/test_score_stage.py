"""stage=score on a synthetic 4c experiment: scores keyed by task_id, flags for rows a finder
cannot score, only pixels reaching the finder, the model checksum in the record, resumable."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from dhs import schema
from dhs.stages import layout
from dhs.errors import ConfigError, DhsError
from dhs.finders import scoring
from dhs.io.datasets import committed_shards, read_dataset
from dhs.io.stamps import read_stamps, to_numpy
from dhs.stages import score as stage
from tests import synth4c as synth
from tests.synth4c import write_dataset
from tests.finders.onnx_nets import build_cnn, forward_numpy

FINDER = '''
import numpy as np

SEEN = []

def score(batch, cut=-1e9):
    """Mean of the g band; NaN where the first pixel is below ``cut``. Writes what it was given."""
    SEEN.append(sorted(vars(batch)))
    s = batch.images[:, 0].mean(axis=(1, 2)).astype(float)
    s[batch.images[:, 0, 0, 0] < cut] = np.nan
    with open(__file__ + ".seen", "w") as f:
        f.write(repr(sorted(set(map(tuple, SEEN)))))
    return s
'''


@pytest.fixture
def finder_file(tmp_path):
    path = tmp_path / "my_finder.py"
    path.write_text(FINDER)
    return path


def _cfg(experiment, *extra):
    from tests.helpers import compose_config

    return compose_config(["stage=score", f"paths.data_root={experiment.cfg.paths.data_root}",
                           f"experiment_id={synth.EXP}", "source=cosmos", "cluster.n_jobs=1", *extra])


def test_python_finder_scores_are_keyed_by_task_id_and_nan_rows_are_flagged(experiment, finder_file, ctx):
    cfg = _cfg(experiment, "finder=python", f"finder.target={finder_file}:score", "finder.kwargs={cut: 1.0}")
    summary = stage.run(cfg, ctx)
    out = layout.scores_dir(cfg, synth.EXP)
    scores = read_dataset(out).to_pandas().set_index("task_id")
    stamps = read_stamps(experiment.stamps)
    img = to_numpy(stamps)
    ok = stamps.column("cutout_ok").to_numpy() == 1
    ids = np.asarray(stamps.column("task_id").to_pylist())
    expect = img[:, 0].mean(axis=(1, 2))
    nan_rows = ok & (img[:, 0, 0, 0] < 1.0)
    assert 0 < nan_rows.sum() < ok.sum()
    assert len(scores) == stamps.num_rows and set(scores.index) == set(ids)
    got = scores.loc[ids]
    assert (got["score_flag"].to_numpy()[~ok] == "no_cutout").all()
    assert (got["score_flag"].to_numpy()[nan_rows] == "nan_score").all()
    good = ok & ~nan_rows
    assert (got["score_ok"].to_numpy() == good).all() and np.isnan(got["score"].to_numpy()[~good]).all()
    np.testing.assert_allclose(got["score"].to_numpy()[good], expect[good], rtol=1e-6)
    assert (got["is_control"].to_numpy() == stamps.column("is_control").to_numpy()).all()
    sha = hashlib.sha256(finder_file.read_bytes()).hexdigest()
    assert set(got["model_checksum"]) == {sha} and set(got["finder"]) == {"python"}
    record = json.loads(open(f"{out}/_dhs_record.json").read())
    assert record["finder"]["model_checksum"] == sha
    assert set(got["settings_hash"]) == {record["finder"]["settings_hash"]} == {summary["settings_hash"]}
    assert record["finder"]["settings"] == {"target": f"{finder_file}:score", "kwargs": {"cut": 1.0}}
    assert summary["experiments"][synth.EXP]["flags"]["nan_score"] == int(nan_rows.sum())
    assert read_dataset(out).schema.names[:-1] == schema.names(schema.SCORES)
    # one shard per 4c shard, the same ids; a re-run skips them all
    assert sorted(committed_shards(out)) == sorted(committed_shards(experiment.stamps))
    again = stage.run(cfg, ctx)["experiments"][synth.EXP]
    n_shards = len(committed_shards(experiment.stamps))
    assert again["shards_skipped"] == again["shards"] == n_shards and again["rows_scored_now"] == 0
    # other settings: the committed shards are redone, never mixed with new ones
    cfg2 = _cfg(experiment, "finder=python", f"finder.target={finder_file}:score", "finder.kwargs={cut: 2.0}")
    redo = stage.run(cfg2, ctx)["experiments"][synth.EXP]
    assert redo["shards_redone"] == n_shards and redo["shards_skipped"] == 0 and redo["complete"]
    assert int((read_dataset(out).column("score_flag").to_numpy(zero_copy_only=False) == "nan_score").sum()) \
        == int((ok & (img[:, 0, 0, 0] < 2.0)).sum())
    # other stamps written by 4c (here: the first row dropped) are scored again
    write_dataset(synth.stamps_table(experiment.frame).slice(1), experiment.stamps, n_shards=n_shards)
    fresh = stage.run(cfg2, ctx)["experiments"][synth.EXP]
    assert fresh["shards_skipped"] < n_shards and read_dataset(out).num_rows == stamps.num_rows - 1


def test_only_the_pixel_arrays_reach_the_finder(experiment, finder_file, ctx):
    stage.run(_cfg(experiment, "finder=python", f"finder.target={finder_file}:score"), ctx)
    seen = eval(open(f"{finder_file}.seen").read())
    assert seen == [("bands", "images", "invvar", "maskbits", "pixscale")]
    injection = set(schema.names(schema.MANIFEST + schema.metrics_columns(("g", "r", "i", "z"))))
    # the shard reads ids, the label and the band order beside the arrays; none is handed over
    assert set(scoring.PIXEL_COLUMNS) - set(schema.STAMP_ARRAYS) <= {"task_id", "is_control", "cutout_ok",
                                                                       "bandset", "stamp_size"}
    assert not {"theta_e_arcsec", "arc_snr", "psfsize_r", "src_dmag"} & set(scoring.PIXEL_COLUMNS)
    assert {"theta_e_arcsec", "arc_snr"} <= injection


def test_onnx_model_scores_and_checksum(experiment, tmp_path, ctx):
    net = build_cnn(3, (4, 4), seed=3)
    path = tmp_path / "net.onnx"
    path.write_bytes(net.model)
    cfg = _cfg(experiment, "finder=onnx", f"finder.model={path}", "finder.output=logit", "finder.provider=cpu",
               "score.batch_size=7")
    res = stage.run(cfg, ctx)
    assert res["model_checksum"] == hashlib.sha256(net.model).hexdigest()
    scores = read_dataset(layout.scores_dir(cfg, synth.EXP)).to_pandas().set_index("task_id")
    stamps = read_stamps(experiment.stamps)
    ok = stamps.column("cutout_ok").to_numpy() == 1
    ids = np.asarray(stamps.column("task_id").to_pylist())[ok]
    want = 1.0 / (1.0 + np.exp(-forward_numpy(net, to_numpy(stamps)[ok])[:, 0]))
    np.testing.assert_allclose(scores.loc[ids, "score"].to_numpy(), want, rtol=2e-5, atol=1e-7)
    assert "onnx" in layout.scores_dir(cfg, synth.EXP)


def test_a_finder_that_raises_on_one_stamp_flags_it_and_the_shard_finishes():
    class Picky:
        checksum = ""

        def __call__(self, images, invvar, maskbits, *, bands, pixscale):
            from dhs.finders.base import finish

            if (images[:, 0, 0, 0] > 1.8).any():
                raise ZeroDivisionError("a stamp this finder cannot take")
            return finish(images.mean(axis=(1, 2, 3)), images.shape[0], who="picky")

    rng = np.random.default_rng(0)
    img = rng.normal(0, 1, (40, 3, 8, 8)).astype(np.float32)
    bad = img[:, 0, 0, 0] > 1.8
    assert 0 < bad.sum() < 5
    sc, fl = scoring.score_arrays(Picky(), img, np.ones_like(img), np.zeros((40, 8, 8), np.int32), ("g", "r", "z"),
                                  0.262)
    assert (fl[bad] == "finder_failed").all() and (fl[~bad] == "").all()
    np.testing.assert_allclose(sc[~bad], img[~bad].mean(axis=(1, 2, 3)), rtol=1e-6)


def test_snr_proxy_is_not_a_pixel_finder_and_stage_score_says_where_it_runs(experiment, ctx):
    with pytest.raises(ConfigError, match="stage=4d finder=snr_proxy"):
        stage.run(_cfg(experiment, "finder=snr_proxy"), ctx)


def test_a_bad_finder_setting_fails_before_any_work(experiment, ctx):
    with pytest.raises(DhsError, match="finder.target"):
        stage.run(_cfg(experiment, "finder=python", "finder.target=no_colon"), ctx)
    with pytest.raises(DhsError, match="finder.model"):
        stage.run(_cfg(experiment, "finder=onnx", "finder.model=/nonexistent/net.onnx"), ctx)
    assert not committed_shards(layout.scores_dir(_cfg(experiment, "finder=onnx"), synth.EXP))
