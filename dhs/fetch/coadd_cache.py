"""Fill the coadd cache: every configured file of every brick, fetched by a thread pool.

Layout: ``<cache_root>/<brick>/legacysurvey-<brick>-<kind>[-<band>].fits.fz`` plus a per-brick
``_SUCCESS`` (JSON: brick, source, files with kind, band, size in bytes and sha256). A brick whose
``_SUCCESS`` lists every wanted file, each present with its recorded size, and names the current
``base_url`` as its source, is skipped without touching the source (a file deleted or resized
since is fetched again; a brick cached from another source is fetched again whole); files committed by a
killed run (they were checked before their rename) are adopted and hashed, not fetched again;
a kind added later (e.g. psfsize) fetches only the new files. Temporary files of killed runs
are removed from every brick checked (complete ones too) and from the cache root. ``redo=True`` (``force``) fetches
everything again. A 404 puts the brick on the blacklist (``dhs.fetch.blacklist``, with the base URL
and time) and stops its other files; when every brick asked answers 404, the run stops with a
``ConfigError`` (a wrong ``survey.base_url``) and blacklists nothing; any other failure is
counted with its reason and leaves the brick without ``_SUCCESS`` so a re-run tries again.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from dhs.console import TransferProgress
from dhs.fetch import blacklist
from dhs.fetch.download import FetchSettings, clean_stale_temps, exists_at_source, fetch_file
from dhs.fetch.retry import Missing, RetryPolicy, describe
from dhs.io import storage
from dhs.layout import blacklist_path
from dhs.survey.files import brick_files, coadd_url

SUCCESS = "_SUCCESS"


@dataclass(frozen=True)
class CacheSettings:
    """What to fetch from where: survey ``base_url`` (the ``coadd/`` root) into ``cache_root``."""

    base_url: str
    cache_root: str
    kinds: tuple[str, ...]
    bands: tuple[str, ...]
    threads: int = 8
    fetch: FetchSettings = field(default_factory=lambda: FetchSettings(RetryPolicy()))
    redo: bool = False

    @property
    def blacklist_uri(self) -> str:
        return blacklist_path(self.cache_root)


def brick_dir(cache_root: str, brick: str) -> str:
    return storage.join(cache_root, brick)


def read_success(cache_root: str, brick: str) -> dict | None:
    uri = storage.join(brick_dir(cache_root, brick), SUCCESS)
    try:
        return json.loads(storage.read_text(uri))
    except FileNotFoundError:
        return None
    except (ValueError, OSError):
        return None  # unreadable record: treat the brick as not complete


# ----------------------------------------------------------------------------- per-brick state
@dataclass
class BrickState:
    brick: str
    wanted: list[tuple[str, str | None, str]]
    records: dict[str, dict] = field(default_factory=dict)
    todo: list[tuple[str, str | None, str]] = field(default_factory=list)
    pending: int = 0
    missing: list[tuple[str, int]] = field(default_factory=list)
    errors: list[tuple[str, str, str]] = field(default_factory=list)
    fetched: int = 0
    adopted: int = 0
    other_source: str | None = None  # the source a dropped earlier copy was fetched from


@dataclass
class CacheReport:
    """Counts of one cache run (bytes in bytes, times in seconds)."""

    bricks_requested: int = 0
    bricks_skipped_complete: int = 0
    bricks_skipped_blacklisted: int = 0
    bricks_fetched: int = 0
    bricks_blacklisted: int = 0
    bricks_failed: int = 0
    bricks_other_source: int = 0
    other_sources: list[str] = field(default_factory=list)
    temps_removed: int = 0
    files_fetched: int = 0
    files_adopted: int = 0
    bytes_committed: int = 0
    bytes_transferred: int = 0
    retries: int = 0
    failure_reasons: Counter = field(default_factory=Counter)
    failures: list[tuple[str, str, str]] = field(default_factory=list)
    blacklisted: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def mb_per_s(self) -> float:
        return self.bytes_transferred / 1e6 / self.wall_s if self.wall_s > 0 else 0.0

    def as_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k not in ("failure_reasons", "failures")}
        d["failure_reasons"] = dict(self.failure_reasons)
        d["failures"] = [list(f) for f in self.failures[:200]]
        d["mb_per_s"] = round(self.mb_per_s, 3)
        return d


def _reason(exc: BaseException) -> str:
    status = getattr(exc, "status", None)
    return type(exc).__name__ + (f" {status}" if status else "")


def _check_brick(s: CacheSettings, brick: str, known_bad: set[str],
                 run_start: float) -> tuple[BrickState | str, int]:
    """('complete', 'blacklisted' or the state listing what to fetch; temporaries removed)."""
    folder = brick_dir(s.cache_root, brick)
    temps = clean_stale_temps(folder, run_start)
    wanted = brick_files(brick, s.kinds, s.bands)
    if not s.redo and brick in known_bad:
        return "blacklisted", temps
    rec = None if s.redo else read_success(s.cache_root, brick)
    other = None
    if rec is not None and rec.get("source") != s.base_url:
        other = str(rec.get("source"))
        _drop_copy(folder, rec, wanted)
        rec = None
    have = dict(rec.get("files", {})) if rec else {}
    if rec and all(name in have for _k, _b, name in wanted):
        damaged = _damaged(folder, {name: have[name] for _k, _b, name in wanted})
        if not damaged:
            return "complete", temps
        for name in damaged:  # deleted or resized since: fetched again
            have.pop(name)
            storage.remove(storage.join(folder, name))
    st = BrickState(brick, wanted, other_source=other)
    present = set() if s.redo else set(storage.listdir(folder))
    for kind, band, name in wanted:
        if name in have:
            st.records[name] = have[name]
        elif name in present:  # committed (checked) by an earlier, interrupted run
            st.records[name] = _adopt(storage.join(folder, name), kind, band)
            st.adopted += 1
        else:
            st.todo.append((kind, band, name))
    return st, temps


def _drop_copy(folder: str, rec: dict, wanted: list) -> None:
    """Remove a brick's files fetched from another source, then its record (in that order, so a
    run killed in between finds the record again and nothing of the old copy is adopted)."""
    for name in set(rec.get("files", {})) | {n for _k, _b, n in wanted}:
        storage.remove(storage.join(folder, name))
    storage.remove(storage.join(folder, SUCCESS))


def _damaged(folder: str, records: dict) -> list[str]:
    """Names of recorded files that are missing or whose size differs from their record."""
    out = []
    for name, rec in records.items():
        uri = storage.join(folder, name)
        try:
            if storage.size(uri) != int(rec.get("size", -1)):
                out.append(name)
        except FileNotFoundError:
            out.append(name)
    return out


def _adopt(uri: str, kind: str, band: str | None) -> dict:
    import hashlib

    norm = storage.normalize(uri)
    if storage.is_s3(norm):
        data = storage.read_bytes(norm)
        digest, size = hashlib.sha256(data).hexdigest(), len(data)
    else:
        digest, size = storage.sha256(norm), storage.size(norm)
    return {"kind": kind, "band": band, "size": size, "sha256": digest, "adopted": True}


def _finalize(s: CacheSettings, st: BrickState) -> None:
    record = {"brick": st.brick, "source": s.base_url, "time": blacklist.utc_now(),
              "files": {name: st.records[name] for _k, _b, name in st.wanted}}
    storage.write_text_atomic(storage.join(brick_dir(s.cache_root, st.brick), SUCCESS),
                              json.dumps(record, indent=1, sort_keys=True))


# ----------------------------------------------------------------------------- the run
def fill_cache(s: CacheSettings, bricks: Iterable[str], *, console: Any = None,
               on_file: Callable[[str, str], None] | None = None) -> CacheReport:
    """Fetch every wanted file of ``bricks`` into the cache; returns the counts.

    ``on_file(brick, name)`` is called (in the main thread) after each committed file.
    """
    t0 = time.time()
    bricks = sorted(set(bricks))
    rep = CacheReport(bricks_requested=len(bricks))
    known_bad = set() if s.redo else blacklist.bricks(s.blacklist_uri, s.base_url)
    rep.temps_removed = clean_stale_temps(s.cache_root, t0)
    new_bad: list[dict] = []
    now_good: list[str] = []
    moved = [0]
    lock = threading.Lock()

    def on_bytes(n: int) -> None:
        with lock:
            moved[0] += n

    def fetch_one(st: BrickState, kind: str, band: str | None, name: str) -> Any:
        if st.missing:  # the brick is already known to be missing: skip its other files
            return None
        src = coadd_url(s.base_url, st.brick, kind, band)
        target = storage.join(brick_dir(s.cache_root, st.brick), name)
        return fetch_file(src, target, brick=st.brick, kind=kind, settings=s.fetch, on_bytes=on_bytes)

    with TransferProgress(console, len(bricks)) as (bar, task), \
            ThreadPoolExecutor(max_workers=max(s.threads, 1), thread_name_prefix="dhs-fetch") as pool:
        it = iter(bricks)
        futures: dict[Any, tuple] = {}
        exhausted = False
        try:
            while True:
                exhausted = _submit_checks(it, exhausted, futures, pool, s, known_bad, t0)
                if not futures:
                    break
                done, _ = wait(list(futures), timeout=0.5, return_when=FIRST_COMPLETED)
                for fut in done:
                    what = futures.pop(fut)
                    n_done = _handle(what, fut, s, rep, futures, pool, fetch_one, new_bad,
                                     now_good, on_file)
                    if n_done:
                        bar.advance(task, n_done)
                with lock:
                    rep.bytes_transferred = moved[0]
                el = max(time.time() - t0, 1e-9)
                bar.update(task, files=rep.files_fetched, mb=moved[0] / 1e6,
                           mbps=moved[0] / 1e6 / el)
        except BaseException:  # interrupted: drop queued work; in-flight temporaries stay hidden
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        finally:  # the 404s seen so far are facts, even from an interrupted run
            if (new_bad or now_good) and not blacklist.all_missing(_asked(rep), rep.bricks_blacklisted):
                blacklist.update(s.blacklist_uri, new_bad, remove_bricks=now_good, base_url=s.base_url)
    _check_not_all_missing(_asked(rep), rep, s)
    rep.bytes_transferred = moved[0]
    rep.wall_s = time.time() - t0
    return rep


def _submit_checks(it: Any, exhausted: bool, futures: dict, pool: Any, s: CacheSettings,
                   known_bad: set[str], t0: float) -> bool:
    """Keep up to 2 x threads jobs queued with brick checks; returns whether bricks ran out."""
    while not exhausted and len(futures) < 2 * max(s.threads, 1):
        b = next(it, None)
        if b is None:
            return True
        futures[pool.submit(_check_brick, s, b, known_bad, t0)] = ("check", b)
    return exhausted


def _handle(what: tuple, fut: Any, s: CacheSettings, rep: CacheReport, futures: dict, pool: Any,
            fetch_one: Callable, new_bad: list, now_good: list, on_file: Any) -> int:
    """Book one finished job; returns the number of bricks it finished."""
    kind = what[0]
    if kind == "check":
        brick = what[1]
        try:
            res, temps = fut.result()
        except Exception as exc:  # cache unreadable for this brick
            rep.bricks_failed += 1
            rep.failure_reasons[_reason(exc)] += 1
            rep.failures.append((brick, "", describe(exc)))
            return 1
        rep.temps_removed += temps
        if res == "complete":
            rep.bricks_skipped_complete += 1
            return 1
        if res == "blacklisted":
            rep.bricks_skipped_blacklisted += 1
            return 1
        st: BrickState = res
        rep.files_adopted += st.adopted
        if st.other_source is not None:
            rep.bricks_other_source += 1
            if st.other_source not in rep.other_sources:
                rep.other_sources.append(st.other_source)
        if not st.todo:
            futures[pool.submit(_finalize, s, st)] = ("final", st)
            return 0
        st.pending = len(st.todo)
        for k, b, name in st.todo:
            futures[pool.submit(fetch_one, st, k, b, name)] = ("file", st, k, b, name)
        return 0
    if kind == "file":
        _, st, k, b, name = what
        st.pending -= 1
        try:
            res = fut.result()
            if res is not None:
                st.records[name] = {"kind": k, "band": b, "size": res.size, "sha256": res.sha256}
                st.fetched += 1
                rep.files_fetched += 1
                rep.bytes_committed += res.size
                rep.retries += res.attempts - 1
        except Missing:
            res = None
            st.missing.append((name, 404))
        except Exception as exc:
            res = None
            st.errors.append((st.brick, name, describe(exc)))
            rep.failure_reasons[_reason(exc)] += 1
        if res is not None and on_file is not None:
            on_file(st.brick, name)
        if st.pending:
            return 0
        if st.missing:
            rep.bricks_blacklisted += 1
            rep.blacklisted.append(st.brick)
            when = blacklist.utc_now()
            new_bad.extend({"brick": st.brick, "file": n, "status": code, "time": when,
                            "base_url": s.base_url} for n, code in st.missing)
            return 1
        if st.errors:
            rep.bricks_failed += 1
            rep.failures.extend(st.errors)
            return 1
        futures[pool.submit(_finalize, s, st)] = ("final", st)
        return 0
    st = what[1]  # final
    try:
        fut.result()
        rep.bricks_fetched += 1
        now_good.append(st.brick)
    except Exception as exc:
        rep.bricks_failed += 1
        rep.failure_reasons[_reason(exc)] += 1
        rep.failures.append((st.brick, SUCCESS, describe(exc)))
    return 1


# ----------------------------------------------------------------------------- cache.mode=none
def probe_bricks(s: CacheSettings, bricks: Iterable[str]) -> CacheReport:
    """Without a cache: ask the source whether each brick's first wanted file exists (HEAD);
    missing bricks go on the blacklist so stage 4c can mark their tasks."""
    t0 = time.time()
    bricks = sorted(set(bricks))
    rep = CacheReport(bricks_requested=len(bricks))
    known_bad = blacklist.bricks(s.blacklist_uri, s.base_url)
    rep.temps_removed = clean_stale_temps(s.cache_root, t0)
    todo = [b for b in bricks if s.redo or b not in known_bad]
    rep.bricks_skipped_blacklisted = len(bricks) - len(todo)

    def probe(b: str) -> tuple[str, str, Any]:
        kind, band, name = brick_files(b, s.kinds, s.bands)[0]
        try:
            return b, name, exists_at_source(coadd_url(s.base_url, b, kind, band), s.fetch)
        except Exception as exc:
            return b, name, exc

    bad, good = [], []
    with ThreadPoolExecutor(max_workers=max(s.threads, 1)) as pool:
        for b, name, res in pool.map(probe, todo):
            if res is True:
                good.append(b)
            elif res is False:
                bad.append({"brick": b, "file": name, "status": 404, "time": blacklist.utc_now(),
                            "base_url": s.base_url})
                rep.blacklisted.append(b)
            else:
                rep.bricks_failed += 1
                rep.failure_reasons[_reason(res)] += 1
                rep.failures.append((b, name, describe(res)))
    rep.bricks_blacklisted = len(bad)
    _check_not_all_missing(len(todo), rep, s)
    if bad or good:
        blacklist.update(s.blacklist_uri, bad, remove_bricks=good, base_url=s.base_url)
    rep.wall_s = time.time() - t0
    return rep


def _asked(rep: CacheReport) -> int:
    """Bricks a cache run asked the source for (not skipped as blacklisted); bricks already
    complete in the cache count as answered (the source had them)."""
    return rep.bricks_blacklisted + rep.bricks_fetched + rep.bricks_failed + rep.bricks_skipped_complete


def _check_not_all_missing(asked: int, rep: CacheReport, s: CacheSettings) -> None:
    blacklist.check_not_all_missing(asked, rep.bricks_blacklisted, rep.blacklisted[:1], s.base_url)
