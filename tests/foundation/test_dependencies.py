"""Every third-party package the code imports is declared in pyproject.toml, so `make demo`
(which installs only the runtime dependencies) never meets a missing module."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OPTIONAL = {"pyspark": "spark", "fsspec": None}  # imported inside functions, with a clear error


@pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib")
def test_imports_are_declared_dependencies():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {re.split(r"[<>=!\[ ;]", d, maxsplit=1)[0].lower().replace("_", "-")
                for d in project["dependencies"]}
    extras = {k: {re.split(r"[<>=!\[ ;]", d, maxsplit=1)[0].lower() for d in v}
              for k, v in project["optional-dependencies"].items()}
    dists = importlib.metadata.packages_distributions()
    stdlib = set(sys.stdlib_module_names)
    missing = []
    for path in list((ROOT / "dhs").rglob("*.py")) + list((ROOT / "launchers").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else [])
            for name in names:
                top = name.split(".")[0]
                if top in stdlib or top in ("dhs", "hydra_plugins", "__future__"):
                    continue
                if top in OPTIONAL:
                    extra = OPTIONAL[top]
                    assert extra is None or top in extras[extra], f"{top} missing from extra {extra}"
                    continue
                owners = {d.lower().replace("_", "-") for d in dists.get(top, [top])}
                if not owners & declared:
                    missing.append(f"{path.relative_to(ROOT)} imports {top} ({sorted(owners)})")
    assert not missing, missing
