"""One pass per brick: the 4c shards of several experiments that touch the same bricks, run together.

Every experiment keeps its own shards (``dhs.stages.inject.make_shards``: same rows, same shard
ids, same files as a run of that experiment alone); a *pass* groups the shards of all
experiments whose bricks overlap and walks their bricks once, in brick order: for each brick
every shard that has rows there cuts its stamps (``BrickCut.cut``) while the brick's files are
open and their decoded tiles are in the tile cache (``dhs.survey.tiles``), so each compressed
tile is decoded once per pass whatever the number of experiments, stamp sizes or bandsets. A
shard is rendered and committed (``dhs.inject.shard.finish`` / ``commit``) as soon as its last
brick is cut, so at most one shard per experiment is held in memory.

A pass is ``{"pass_id", "shards": [shard, ...]}``; ``run_pass`` returns one summary per shard,
in the pass's shard order. A shard that raises does not stop the others of its pass: they run
and commit, then the first error is raised again (the executor reports it with the pass).
"""

from __future__ import annotations

import time
from typing import Any, Sequence

from dhs.inject.ranges import shard_rows
from dhs.inject.settings import InjectSettings
from dhs.inject.settings import blacklisted_bricks
from dhs.inject.shard import BrickCut, _bank, commit, finish, fingerprint, is_current, skipped_summary


def _span(shard: dict) -> tuple[str, str]:
    if "rows" not in shard:  # manifest ranges (dhs.inject.ranges): pieces in brick order
        return str(shard["pieces"][0][0]), str(shard["pieces"][-1][0])
    bricks = shard["rows"].column("brickname")
    return str(bricks[0].as_py()), str(bricks[-1].as_py())


def _n_rows(shard: dict) -> int:
    return shard["rows"].num_rows if "rows" in shard else int(shard["n_rows"])


def plan_passes(shards_by_experiment: Sequence[Sequence[dict]], max_tasks: int) -> list[dict]:
    """Passes over the shards of every experiment (each list in brick order, as make_shards
    gives them): shards whose brick ranges overlap go in one pass while it holds at most
    ``max_tasks`` rows of each experiment (then the next pass starts, and a brick on the boundary
    is read by both). Deterministic; the shards themselves are never changed."""
    order = sorted(((*_span(sh), k, i) for k, shards in enumerate(shards_by_experiment)
                    for i, sh in enumerate(shards)))
    cap = max(int(max_tasks), 1)
    passes: list[list[dict]] = []
    last, rows = "", {}
    for first, end, k, i in order:
        shard = shards_by_experiment[k][i]
        n = _n_rows(shard)
        if passes and first <= last and rows.get(k, 0) + n <= cap:
            passes[-1].append(shard)
            rows[k] = rows.get(k, 0) + n
            last = max(last, end)
            continue
        passes.append([shard])
        last, rows = end, {k: n}
    return [{"pass_id": f"{k:05d}", "shards": p} for k, p in enumerate(passes)]


def warm_worker(s: InjectSettings) -> None:
    """Once per worker process, before its first pass: the physics, FITS and table modules and
    the COSMOS bank, so that no pass pays for them."""
    import dhs.inject.arcs  # noqa: F401
    import dhs.inject.cutouts  # noqa: F401
    import dhs.inject.metrics  # noqa: F401
    import pyarrow.parquet  # noqa: F401
    from dhs.survey import fitsio_reader

    fitsio_reader.available()
    _bank(s)


def run_pass(job: dict, s: InjectSettings) -> dict:
    """Cut every shard's stamps brick by brick, then render and commit each shard; summaries."""
    shards = job["shards"]
    results: list[Any] = [None] * len(shards)
    todo = []
    for k, sh in enumerate(shards):
        if is_current(sh, s):
            results[k] = skipped_summary(sh)
        else:
            todo.append(k)
    if not todo:
        return {"pass": job["pass_id"], "shards": results}
    t0 = time.perf_counter()
    bank = _bank(s)
    shards = [{**sh, "rows": shard_rows(sh)} if k in todo else sh for k, sh in enumerate(shards)]
    cuts = {k: BrickCut(s, shards[k]["rows"], blacklisted_bricks(fingerprint(shards[k], s))) for k in todo}
    left = {k: set(c.bricks) for k, c in cuts.items()}
    bricks = sorted({b for c in cuts.values() for b in c.bricks})
    first_error: BaseException | None = None
    for brick in bricks:
        for k in [k for k in todo if brick in left.get(k, ())]:
            try:
                cuts[k].cut(brick)
                left[k].discard(brick)
                if not left[k]:
                    out, arrays = finish(cuts.pop(k), bank)
                    results[k] = commit(shards[k], s, out, arrays, t0)
                    t0 = time.perf_counter()
            except Exception as exc:  # noqa: BLE001 - the other shards run first, then it is raised
                left.pop(k, None)
                cuts.pop(k, None)
                first_error = first_error or exc
    if first_error is not None:
        raise first_error
    return {"pass": job["pass_id"], "shards": results}
