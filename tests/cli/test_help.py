"""``dhs --help`` lists every stage with its alias and one line; groups and shell completion
offer options only, never a schema; every alias composes to its stage's config."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dhs import stages
from tests.helpers import compose_config

BIN = Path(sys.executable).parent
CONF = Path(__file__).resolve().parents[2] / "conf"


def dhs(args: list[str], cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "dhs"), *args], capture_output=True, text=True, cwd=cwd,
                          timeout=120, env={**os.environ, **(env or {})})


def test_help_lists_each_stage_on_one_line_and_groups_without_schemas(tmp_path):
    out = dhs(["--help"], tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    for name, s in stages.STAGES.items():
        label = f"{name} ({s.alias})" if s.alias else name
        hits = [ln for ln in lines if ln.split()[:len(label.split())] == label.split()]
        assert len(hits) == 1, (label, out.stdout)
        assert hits[0].rstrip().endswith(s.summary)
    groups = {ln.split(":")[0]: ln.split(":", 1)[1] for ln in lines
              if ln.split(":")[0] in ("stage", "source", "psf", "grid", "tier", "cluster", "survey")}
    assert set(groups) == {"stage", "source", "psf", "grid", "tier", "cluster", "survey"}
    assert "schema" not in out.stdout
    assert {o.strip() for o in groups["stage"].split(",")} == set(stages.STAGES) | set(stages.ALIASES)
    assert not list(tmp_path.iterdir())  # --help runs nothing


@pytest.mark.parametrize("line,expect", [("dhs source=", "source=cosmos"), ("dhs psf=", "psf=gaussian"),
                                         ("dhs stage=", "stage=inject"), ("dhs ", "stage=")])
def test_shell_completion_offers_options_not_schemas(tmp_path, line, expect):
    out = dhs(["-sc", "query=bash"], tmp_path, env={"COMP_LINE": line, "COMP_POINT": str(len(line))})
    assert out.returncode == 0, out.stderr
    words = out.stdout.split()
    assert expect in words
    assert not [w for w in words if "schema" in w]


@pytest.mark.parametrize("alias,stage_id", sorted(stages.ALIASES.items()))
def test_alias_is_the_same_stage(alias, stage_id):
    assert (CONF / "stage" / f"{alias}.yaml").is_file()
    a = compose_config([f"stage={alias}", "tier=grid"])
    b = compose_config([f"stage={stage_id}", "tier=grid"])
    assert a.stage == b.stage and a.stage.name == stage_id
    from dhs.stages import layout

    assert layout.experiment_ids(a) == layout.experiment_ids(b)
    assert stages.load(a.stage.name).datasets(a) == stages.load(stage_id).datasets(b)


def test_every_stage_option_is_a_stage_or_an_alias():
    options = {p.stem for p in (CONF / "stage").glob("*.yaml")}
    assert options == set(stages.STAGES) | set(stages.ALIASES)
    for name in stages.STAGES:
        assert callable(stages.load(name).run) and callable(stages.load(name).datasets)
