"""Coadd cache throughput and bytes moved by section reads.

1. Cache fill (stage 4b's fill_cache) from a local HTTP server (own process) on 127.0.0.1: MB/s.
2. One 3600x3600 DR10-like brick (image and invvar g r z, maskbits, psfsize g r z; 100x100 tiles):
   bytes moved to cut one 64x64 grz stamp from all ten files by section, cold (files opened for the
   stamp: headers and tile tables included) and warm (files already open), over HTTP Range for a
   few block sizes and from local files, against the bytes of the brick's files.

    .venv/bin/python benchmarks/bench_cache.py [--bricks 8] [--size 1800] [--stamps 40]

Prints a table; the last line is
``RESULT cache_mb_per_s=<float> section_bytes_per_stamp=<float> brick_bytes=<float>``.
"""

from __future__ import annotations

import argparse
import shutil
import contextlib
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from typing import Iterator

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from dhs.fetch import remote  # noqa: E402
from dhs.fetch.coadd_cache import CacheSettings, fill_cache  # noqa: E402
from dhs.fetch.download import FetchSettings  # noqa: E402
from dhs.fetch.retry import RetryPolicy  # noqa: E402
from dhs.survey.files import brick_files, coadd_relpath  # noqa: E402
from tests.fetch.fixtures import write_brick  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


@contextlib.contextmanager
def server_process(root: str) -> Iterator[str]:
    """The test HTTP server (tests/servers.py, no faults) in its own process; yields its URL."""
    proc = subprocess.Popen([sys.executable, "-m", "tests.servers", root], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    try:
        yield proc.stdout.readline().strip()
    finally:
        proc.kill()
        proc.wait()

KINDS = ("image", "invvar", "maskbits", "psfsize")
BANDS = ("g", "r", "z")


def _cfg(base: str, block: int) -> remote.SurveyAccess:
    fetch = FetchSettings(RetryPolicy(retries=3, backoff_s=0.05), timeout_s=30.0, pool=4)
    return remote.SurveyAccess(cache_mode="none", cache_root="unused", base_url=base, fetch=fetch,
                               range_block_bytes=block, lru_files=16)


def _stamp_positions(n: int, size: int, stamp: int = 64) -> list[tuple[int, int]]:
    out = []
    for i in range(n):
        h = hashlib.blake2b(f"stamp|{i}".encode(), digest_size=8).digest()
        y = int.from_bytes(h[:4], "big") % (size - stamp)
        x = int.from_bytes(h[4:], "big") % (size - stamp)
        out.append((y, x))
    return out


def _stamp_bytes(cfg, brick: str, positions, warm: bool) -> tuple[float, float]:
    """Mean bytes and requests per stamp for all ten files."""
    remote.close_all()
    files = brick_files(brick, KINDS, BANDS)
    if warm:  # open every file once and read one stamp first
        for kind, band, _ in files:
            remote.read_section(cfg, brick, kind, band, 0, 64, 0, 64)
    c0 = remote.io_counters()
    for y, x in positions:
        if not warm:
            remote.close_all()
        for kind, band, _ in files:
            remote.read_section(cfg, brick, kind, band, y, y + 64, x, x + 64)
    c1 = remote.io_counters()
    remote.close_all()
    n = len(positions)
    return (c1["bytes"] - c0["bytes"]) / n, (c1["requests"] - c0["requests"]) / n


def main() -> None:
    work = tempfile.mkdtemp(prefix="dhs-bench-cache-")
    try:
        _main(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _main(work: str) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bricks", type=int, default=8)
    ap.add_argument("--size", type=int, default=1800, help="pixels per side of throughput bricks")
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--stamps", type=int, default=40)
    args = ap.parse_args()
    rows: list[tuple[str, str]] = []

    # 1. throughput
    coadd = os.path.join(work, "survey", "coadd")
    bricks = [f"{100 + i:04d}p010" for i in range(args.bricks)]
    t = time.time()
    for b in bricks:
        write_brick(coadd, b, size=args.size)
    rows.append(("fixture bricks written (s)", f"{time.time() - t:.1f}"))
    with server_process(coadd) as url:
        s = CacheSettings(url, os.path.join(work, "cache"), KINDS, BANDS, threads=args.threads,
                          fetch=FetchSettings(RetryPolicy(3, 0.05), timeout_s=30.0,
                                              pool=args.threads))
        rep = fill_cache(s, bricks)
    assert rep.bricks_fetched == len(bricks), rep.as_dict()
    rows += [("cache: bricks x files", f"{len(bricks)} x {len(brick_files('x', KINDS, BANDS))} "
                                       f"({args.size}x{args.size} px)"),
             ("cache: MB transferred", f"{rep.bytes_transferred / 1e6:.1f}"),
             ("cache: wall (s)", f"{rep.wall_s:.2f}"),
             ("cache: MB/s (loopback HTTP)", f"{rep.mb_per_s:.1f}")]

    # 2. section bytes on a 3600x3600 brick
    big = "1126p222"
    t = time.time()
    write_brick(coadd, big, size=3600)
    rows.append(("3600x3600 brick written (s)", f"{time.time() - t:.1f}"))
    brick_bytes = sum(os.path.getsize(os.path.join(coadd, coadd_relpath(big, k, b)))
                      for k, b, _ in brick_files(big, KINDS, BANDS))
    rows.append(("brick: bytes of its 10 files", f"{brick_bytes:,}"))
    positions = _stamp_positions(args.stamps, 3600)
    headline = None
    with server_process(coadd) as url:
        for block in (8192, 32768, 65536):
            cfg = _cfg(url, block)
            for warm in (False, True):
                t = time.time()
                per, req = _stamp_bytes(cfg, big, positions, warm)
                dt = (time.time() - t) / len(positions)
                label = f"HTTP block {block // 1024} KiB, {'warm' if warm else 'cold'}"
                rows.append((label, f"{per:,.0f} B/stamp  {req:.1f} req/stamp  "
                                    f"{dt * 1e3:.1f} ms/stamp  x{brick_bytes / per:.0f} fewer"))
                if block == 32768 and not warm:
                    headline = per
    cfg = _cfg(coadd, 0)
    for warm in (False, True):
        per, req = _stamp_bytes(cfg, big, positions, warm)
        rows.append((f"local file, {'warm' if warm else 'cold'}",
                     f"{per:,.0f} B/stamp  {req:.1f} reads/stamp  x{brick_bytes / per:.0f} fewer"))

    width = max(len(k) for k, _ in rows)
    print(f"{'quantity'.ljust(width)}  value")
    for k, v in rows:
        print(f"{k.ljust(width)}  {v}")
    print(f"RESULT cache_mb_per_s={rep.mb_per_s:.3f} section_bytes_per_stamp={headline:.1f} "
          f"brick_bytes={float(brick_bytes):.1f}")


if __name__ == "__main__":
    main()
