"""Every error a user can fix ends in one line on stderr that names the key, file or value and the
fix, exit status 2, no traceback; through the real `dhs` console script, and through
`dhs.cli.main` in this process for mistakes Hydra finds while composing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


def dhs(args: list[str], cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "dhs"), *args], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout, env={**os.environ, "COLUMNS": "200"})


def the_line(code: int, stdout: str, stderr: str) -> str:
    """The single 'dhs: ...' line of a user error (exit 2, nothing else on stderr, no traceback)."""
    assert code == 2, stdout[-3000:] + stderr[-3000:]
    assert "Traceback" not in stdout + stderr
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("dhs: ")
    assert "_schema" not in lines[0]
    return lines[0]


def user_error(args: list[str], cwd: Path) -> str:
    out = dhs(args, cwd)
    return the_line(out.returncode, out.stdout, out.stderr)


@pytest.fixture
def main_in_process(monkeypatch, capsys, tmp_path):
    """Run `dhs.cli.main()` with ``args`` as the command line; returns its one error line."""
    from hydra.core.global_hydra import GlobalHydra

    from dhs import cli

    monkeypatch.chdir(tmp_path)

    def run(args: list[str]) -> str:
        monkeypatch.setattr(sys, "argv", ["dhs", *args])
        try:
            with pytest.raises(SystemExit) as exit_:
                cli.main()
        finally:
            GlobalHydra.instance().clear()
        out = capsys.readouterr()
        assert not list(tmp_path.iterdir()), "a composition error must fail before any work"
        return the_line(exit_.value.code, out.out, out.err)

    return run


@pytest.mark.parametrize("args,fix", [
    (["source=cosmo"], "source=cosmo: no such option. Did you mean source=cosmos? Options: cosmos, sersic."),
    (["bands=grz"], "bands=grz: bands is a list; write bands=[g,r,z]."),
    (["tier.bandsets=grz"], "write tier.bandsets=[grz]"),
    (["psf=gaussian", "psf.beta=3"],
     "psf.beta does not apply to psf=gaussian (command line override 'psf.beta=3'); it is a key of psf=moffat"),
    (["source=sersic", "source.cosmos_salt=x"], "source.cosmos_salt does not apply to source=sersic"),
    (["psf.betta=3"], "psf.betta: no such key for psf=moffat (command line override 'psf.betta=3'). "
                      "Did you mean psf.beta?"),
    (["target=4a"], "target: no such key (command line override 'target=4a'). "
                    "Did you mean finder.target or validate.target?"),
    (["sorce=cosmos"], "Did you mean source?"),
    (["psf.beta=abc"], "psf.beta=abc: psf.beta takes a number, e.g. psf.beta=3.5."),
    (["bands=[g,r"], "bands=[g,r: not a valid override"),
    (["stage=4c", "cluster=spark_local", "cluster.n_jobs=2"], "cluster.n_jobs does not apply to cluster=spark_local"),
])
def test_composition_mistakes_are_one_line_with_the_fix(main_in_process, args, fix):
    assert fix in main_in_process(args)


def test_the_console_script_rewrites_composition_errors_too(tmp_path):
    line = user_error(["source=cosmo"], tmp_path)
    assert "Did you mean source=cosmos?" in line and "source_schema" not in line


def test_a_key_added_with_plus_fails_before_any_work(tmp_path):
    line = user_error(["stage=plan", "+psf.bta=4.0", f"paths.runs_root={tmp_path}/runs"], tmp_path)
    assert line == ("dhs: psf.bta: no such key for psf=moffat (command line override '+psf.bta=4.0'). "
                    "Did you mean psf.beta?")
    (record,) = (tmp_path / "runs").rglob("dhs_run.json")
    rec = json.loads(record.read_text())
    assert rec["status"] == "failed" and "psf.bta" in rec["error"] and "Traceback" not in rec["error"]


def test_brackets_in_values_are_printed_as_written(tmp_path):
    line = user_error(["stage=plan", "bands=[grz]", f"paths.runs_root={tmp_path}/runs"], tmp_path)
    assert "bands=['grz'] is invalid" in line and "write bands=[g,r,z]" in line


def test_stage_4a_in_an_empty_folder_names_the_missing_table_and_the_stage_to_run(tmp_path):
    line = user_error(["stage=4a"], tmp_path)
    assert "parent table outputs/data/mock_survey/tables/parent_catalog.parquet does not exist" in line
    assert "`dhs stage=mock_survey`" in line and "targets=PATH" in line


def test_stage_4a_on_dr10_south_without_tables_names_stage_parent_and_targets(tmp_path):
    line = user_error(["stage=4a", "survey=dr10_south"], tmp_path)
    assert "outputs/data/parent/dr10_south/parent_catalog.parquet does not exist" in line
    assert "`dhs stage=parent survey=dr10_south" in line and "targets=PATH" in line


def test_an_unreadable_cosmos_bank_fails_4c_in_one_line(mini_base, tmp_path):
    bank = tmp_path / "bank.h5"
    bank.write_text("not an HDF5 file\n")
    line = user_error(["stage=4c", *mini_base, "source=cosmos", f"source.bank_path={bank}",
                       "inject.run_name=badbank", f"paths.runs_root={tmp_path}/runs"], tmp_path)
    assert f"{bank} is not a readable HDF5 file" in line and "`dhs stage=cosmos_bank force=true`" in line


def test_an_empty_manifest_shows_the_funnel_in_one_line(mini_root, mini_base, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    parent = pq.read_table(mini_root / "mock_survey" / "tables" / "parent_catalog.parquet")
    flag = "is_v3_color_relaxed"
    parent = parent.set_column(parent.schema.get_field_index(flag), flag, pa.array([False] * parent.num_rows))
    pq.write_table(parent, tmp_path / "parent.parquet")
    line = user_error(["stage=4a", *mini_base, f"manifest.parent={tmp_path / 'parent.parquet'}", "variant=empty",
                       f"paths.runs_root={tmp_path}/runs"], tmp_path)
    assert "stage 4a would write an empty manifest" in line and "Funnel: parent catalog rows" in line
    assert "check require_lrg_flag" in line


def test_a_bad_scores_table_fails_4d_in_one_line(data_root, tmp_path):
    from tests.synth4c import EXP, metrics_frame, write_experiment

    exp = write_experiment(data_root, metrics_frame(n_per=2))
    scores = tmp_path / "scores.parquet"
    scores.write_text("task_id,score\nx,0.5\n")  # CSV text, not Parquet
    line = user_error(["stage=4d", f"paths.data_root={data_root}", f"experiment_id={EXP}", "source=cosmos",
                       f"paths.cosmos_bank={exp.bank}", f"completeness.scores={scores}",
                       f"paths.runs_root={tmp_path}/runs"], tmp_path)
    assert f"completeness.scores={scores} is not a readable Parquet file" in line


def test_a_user_error_in_one_job_of_a_sweep_is_reported_the_same_way(tmp_path):
    out = dhs(["-m", "stage=plan", "psf.default_fwhm_arcsec=1.0,-1.0", f"paths.data_root={tmp_path}/data",
               f"hydra.sweep.dir={tmp_path}/sweep"], tmp_path)
    line = the_line(out.returncode, out.stdout, out.stderr)
    assert line.startswith("dhs: job #1: psf.default_fwhm_arcsec=-1.0 is invalid")
    assert "#1 : stage=plan psf.default_fwhm_arcsec=-1.0" in out.stdout  # Hydra's list of the jobs
    records = sorted((tmp_path / "sweep").rglob("dhs_run.json"))
    assert [json.loads(r.read_text())["status"] for r in records] == ["ok", "failed"]


def test_a_bug_keeps_its_traceback_and_exit_1(tmp_path):
    code = ("import sys; import dhs.cli as c\n"
            "def broken(cfg, ctx): return 1 / 0\n"
            "c.run_stage = broken; sys.argv = ['dhs', 'stage=plan', 'paths.runs_root=runs']; c.main()\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert out.returncode == 1
    assert "Traceback" in out.stderr and "ZeroDivisionError" in out.stderr
    assert "Error executing job with overrides: ['stage=plan', 'paths.runs_root=runs']" in out.stderr
    (record,) = (tmp_path / "runs").rglob("dhs_run.json")
    rec = json.loads(record.read_text())
    assert rec["status"] == "failed" and "ZeroDivisionError" in rec["error"] and "Traceback" in rec["error"]


def test_an_unresolvable_interpolation_names_the_key(tmp_path):
    line = user_error(["stage=plan", "paths.data_root=${nope}", f"paths.runs_root={tmp_path}/runs"], tmp_path)
    assert line == "dhs: paths.data_root: Interpolation key 'nope' not found; fix the ${...} reference."


def test_stage_parent_before_the_mock_survey_says_what_to_run(tmp_path):
    line = user_error(["stage=parent"], tmp_path)
    assert "survey.sweep_root=outputs/data/mock_survey/sweep/10.1 does not exist" in line
    assert "`dhs stage=mock_survey`" in line and "parent.catalogs" in line


def test_targets_with_selection_set_ids_is_refused(tmp_path):
    (tmp_path / "t.csv").write_text("ra,dec\n10.0,-5.0\n")
    line = user_error(["stage=4a", "targets=t.csv", "manifest.selection_set_ids=[topk_density]"], tmp_path)
    assert "manifest.selection_set_ids=['topk_density'] with targets=t.csv" in line
