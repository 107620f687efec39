"""The package layout's rules, read from the source with ast (nothing is imported):

- only ``dhs/stages``, ``dhs/cli.py`` and ``dhs/config`` import omegaconf, hydra, dhs.config or
  dhs.stages (physics, survey, io, fetch and the other packages take explicit arguments);
- a stage module imports no other stage module; the stages share only the settings builders
  (``dhs/stages/settings.py``) and the config's paths (``dhs/stages/layout.py``), and
  ``dhs/stages/pipeline.py`` runs the others through the registry (``dhs.stages``);
- no import cycle between dhs modules at file level (imports inside functions are lazy and
  do not count);
- no module over 400 lines;
- below ``dhs/stages`` no function takes the whole config (a parameter named ``cfg`` or ``*cfg``),
  except the run records (dhs.provenance, dhs.context), which store it as plain data and read
  no key but the stage name.
"""

from __future__ import annotations

import ast
from pathlib import Path

DHS = Path(__file__).resolve().parent.parent / "dhs"
MAX_LINES = 400
CONFIG_READERS = ("dhs.stages", "dhs.cli", "dhs.config")
CONFIG_MODULES = ("omegaconf", "hydra", "dhs.config", "dhs.stages")
SHARED_STAGE_MODULES = ("dhs.stages.settings", "dhs.stages.layout")
RECORDERS = ("dhs.provenance", "dhs.context")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(DHS.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES: dict[str, Path] = {_module_name(p): p for p in sorted(DHS.rglob("*.py"))}


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _resolve(module: str, node: ast.ImportFrom) -> str:
    """The absolute module of a (possibly relative) ``from ... import``."""
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if MODULES[module].name != "__init__.py":
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module: str, top_level: bool) -> list[tuple[str, int]]:
    """(imported module, line) of every import of ``module``; with ``top_level`` only those that
    run when the module is imported (module body, including its if/try blocks)."""
    tree = ast.parse(MODULES[module].read_text(), filename=str(MODULES[module]))
    if top_level:
        nodes, todo = [], list(tree.body)
        while todo:
            n = todo.pop()
            nodes.append(n)
            if isinstance(n, (ast.If, ast.Try)):
                todo += n.body + n.orelse + getattr(n, "finalbody", [])
                todo += [s for h in getattr(n, "handlers", []) for s in h.body]
    else:
        nodes = list(ast.walk(tree))
    out = []
    for n in nodes:
        if isinstance(n, ast.Import):
            out += [(a.name, n.lineno) for a in n.names]
        elif isinstance(n, ast.ImportFrom):
            base = _resolve(module, n)
            out.append((base, n.lineno))
            out += [(f"{base}.{a.name}", n.lineno) for a in n.names if f"{base}.{a.name}" in MODULES]
    return out


def _dhs_target(name: str) -> str | None:
    """The dhs module that an import of ``name`` loads (``dhs.io.storage.join`` -> dhs.io.storage)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def test_only_stages_cli_and_config_import_the_config_libraries():
    bad = [f"{MODULES[m].relative_to(DHS.parent)}:{line} imports {imp}"
           for m in MODULES if not _within(m, CONFIG_READERS)
           for imp, line in _imports(m, top_level=False) if _within(imp, CONFIG_MODULES)]
    assert not bad, "\n".join(bad)


def test_no_stage_imports_another_stage():
    stage_modules = [m for m in MODULES if m.startswith("dhs.stages.")]
    assert len(stage_modules) > 5  # the rule below looks at something
    bad = [f"{MODULES[m].relative_to(DHS.parent)}:{line} imports {imp}"
           for m in stage_modules
           for imp, line in _imports(m, top_level=False)
           if _within(imp, ("dhs.stages",)) and imp not in ("dhs.stages", m)
           and not _within(imp, SHARED_STAGE_MODULES)]
    assert not bad, "\n".join(bad)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            w = next(children, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def test_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_at_file_level():
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for m in MODULES:
        for imp, _ in _imports(m, top_level=True):
            target = _dhs_target(imp) if imp.startswith("dhs") else None
            if target and target != m:
                graph[m].add(target)
    assert sum(map(len, graph.values())) > 50
    assert not _cycles(graph)


def test_no_module_over_400_lines():
    long = {str(p.relative_to(DHS.parent)): n for p in MODULES.values()
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_below_the_stages_no_function_takes_the_config():
    bad = []
    for m, path in MODULES.items():
        if _within(m, CONFIG_READERS + RECORDERS):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                args = node.args.posonlyargs + node.args.args + node.args.kwonlyargs
                if any(a.arg.endswith("cfg") for a in args):
                    bad.append(f"{path.relative_to(DHS.parent)}:{node.lineno} {node.name}(cfg, ...)")
    assert not bad, "\n".join(bad)
