"""The pinned constraints file shipped with the wheel to EMR.

Built from the running environment at wheel-build time: every runtime dependency of dhs,
followed transitively through the installed distributions' own requirements (environment
markers evaluated for this interpreter; extras not followed), pinned to the installed version.
The bootstrap installs the wheel with ``pip install -c constraints.txt`` so every node and every
rerun gets the versions the run was tested with. ``pyspark`` is left out: the cluster's own.
"""

from __future__ import annotations

import importlib.metadata as md
import re
from typing import Iterable

#: Distributions the cluster provides (never pinned from the submitting machine).
CLUSTER_PROVIDED = frozenset({"pyspark", "py4j"})


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_names(dist: md.Distribution) -> list[str]:
    """Names of ``dist``'s requirements that apply here (no extras, markers evaluated)."""
    from packaging.requirements import Requirement

    names = []
    for text in dist.requires or []:
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        names.append(req.name)
    return names


def pinned_closure(root: str = "dhs", exclude: Iterable[str] = CLUSTER_PROVIDED) -> dict[str, str]:
    """{canonical name: installed version} of ``root``'s runtime dependency closure."""
    skip = {canonical(n) for n in exclude}
    pins: dict[str, str] = {}
    todo = _requirement_names(md.distribution(root))
    while todo:
        name = canonical(todo.pop())
        if name in pins or name in skip or name == canonical(root):
            continue
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            continue  # an optional dependency not installed here: nothing to pin
        pins[name] = dist.version
        todo += _requirement_names(dist)
    return dict(sorted(pins.items()))


def constraints_text(root: str = "dhs") -> str:
    """The constraints file: a header and one ``name==version`` line per dependency."""
    import platform

    lines = [f"# pinned runtime dependencies of {root} {md.version(root)} "
             f"(Python {platform.python_version()}); used as pip install -c"]
    lines += [f"{name}=={version}" for name, version in pinned_closure(root).items()]
    return "\n".join(lines) + "\n"
