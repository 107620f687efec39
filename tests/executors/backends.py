"""Run the same work on every executor backend and compare the bytes it wrote.

    results = run_on_backends(compose, ["paths.data_root={root}", ...], run, lambda b: f"/tmp/{b}")

``run(cfg)`` does the work (a stage's ``run(cfg, ctx)``, or ``run_shards`` on toy shards) and
returns its summary; ``{root}`` in an override is replaced by a fresh data root per backend.
``digest(root)`` maps every file below a root (local or s3://) to its sha256, leaving out the
records that carry wall-clock times.
"""

from __future__ import annotations

from typing import Any, Callable

#: Backends compared by the equivalence tests (Hydra overrides).
BACKENDS: dict[str, list[str]] = {
    "joblib1": ["cluster=local", "cluster.n_jobs=1"],
    "joblib2": ["cluster=local", "cluster.n_jobs=2"],
    "spark_local2": ["cluster=spark_local", "cluster.spark_master='local[2]'"],
}

#: Files whose content legitimately differs between runs (times, hosts).
VOLATILE = ("_SUCCESS", "_dhs_record.json")


def digest(root: str) -> dict[str, str]:
    from dhs.io import storage

    return storage.tree_digest(root, exclude_names=VOLATILE)


def run_on_backends(compose: Callable[[list[str]], Any], overrides: list[str],
                    run: Callable[[Any], Any], root_for: Callable[[str], str],
                    backends: dict[str, list[str]] = BACKENDS) -> dict[str, tuple[Any, dict]]:
    """{backend: (summary, digest of its data root)}; ``root_for(name)`` gives each a root."""
    results = {}
    for name, backend in backends.items():
        root = root_for(name)
        cfg = compose([o.replace("{root}", root) for o in overrides] + backend)
        results[name] = (run(cfg), digest(root))
    return results
