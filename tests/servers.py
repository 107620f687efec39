"""A fault-injecting static HTTP server on 127.0.0.1 (random port) for tests.

    from servers import Faults, http_server

    with http_server(root, Faults(p_503=0.3, missing=("0001m002",))) as srv:
        url = srv.url            # http://127.0.0.1:<port>
        ...
        srv.requests()           # [(method, path, status, bytes sent, fault), ...]

It serves the files under ``root`` (GET and HEAD, single ``Range: bytes=a-b`` requests answered
206 with Content-Range) from a real ``http.server.ThreadingHTTPServer`` in a thread, HTTP/1.1
keep-alive. Faults are drawn per request from blake2b(salt, method, path, range, attempt), so a
run is reproducible; only the first ``faulty_attempts`` requests for a given (method, path, range)
can fail, so a client with enough retries always gets through:

- ``503``: an empty 503 answer;
- ``drop``: the full Content-Length is announced, half the body is sent, the connection is cut;
- ``truncate``: a shorter body with a matching (short) Content-Length: only a content check sees it;
- ``stall``: the answer waits ``stall_s`` seconds (longer than the client timeout);
- ``slow``: the answer waits ``slow_s`` seconds, then is sent in full.

Paths containing any string of ``missing`` answer 404 every time. With ``only``, faults hit just
the paths containing one of its strings (e.g. one brick's files).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator
from urllib.parse import unquote, urlparse


@dataclass
class Faults:
    p_503: float = 0.0
    p_drop: float = 0.0
    p_truncate: float = 0.0
    p_stall: float = 0.0
    p_slow: float = 0.0
    slow_s: float = 0.2
    stall_s: float = 1.5
    faulty_attempts: int = 2
    missing: tuple[str, ...] = ()
    salt: str = ""
    only: tuple[str, ...] = ()


@dataclass
class _State:
    root: str
    faults: Faults
    lock: threading.Lock = field(default_factory=threading.Lock)
    attempts: dict = field(default_factory=dict)
    log: list = field(default_factory=list)
    active: int = 0


def _uniform(*parts: object) -> float:
    h = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") / 2.0**64


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ThreadingHTTPServer

    def setup(self) -> None:
        super().setup()
        # headers and body go out in separate writes: without TCP_NODELAY, Nagle's algorithm and
        # the client's delayed ACK add ~40 ms to every keep-alive answer
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *args: object) -> None:  # quiet
        pass

    @property
    def state(self) -> _State:
        return self.server.dhs_state  # type: ignore[attr-defined]

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve(head=True)

    def do_GET(self) -> None:  # noqa: N802
        self._serve(head=False)

    def _record(self, status: int, nbytes: int, fault: str) -> None:
        with self.state.lock:
            self.state.log.append((self.command, self.path, status, nbytes, fault))

    def _fault(self, rng: str) -> str:
        f = self.state.faults
        key = (self.command, self.path, rng)
        with self.state.lock:
            n = self.state.attempts.get(key, 0)
            self.state.attempts[key] = n + 1
        if n >= f.faulty_attempts or (f.only and not any(o in self.path for o in f.only)):
            return ""
        u = _uniform(f.salt, *key, n)
        for name, p in (("503", f.p_503), ("drop", f.p_drop), ("truncate", f.p_truncate),
                        ("stall", f.p_stall), ("slow", f.p_slow)):
            if u < p:
                return name
            u -= p
        return ""

    def _empty(self, status: int, fault: str = "") -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()
        self._record(status, 0, fault)

    def _serve(self, head: bool) -> None:
        with self.state.lock:
            self.state.active += 1
        try:
            self._answer(head)
        finally:
            with self.state.lock:
                self.state.active -= 1

    def _answer(self, head: bool) -> None:
        rel = unquote(urlparse(self.path).path).lstrip("/")
        path = os.path.realpath(os.path.join(self.state.root, rel))
        rng = self.headers.get("Range", "")
        if any(m in rel for m in self.state.faults.missing) or \
                not path.startswith(os.path.realpath(self.state.root)) or not os.path.isfile(path):
            return self._empty(404)
        fault = self._fault(rng)
        if fault == "503":
            return self._empty(503, fault)
        if fault in ("stall", "slow"):
            time.sleep(self.state.faults.stall_s if fault == "stall" else self.state.faults.slow_s)
        size = os.path.getsize(path)
        start, end, status = 0, size - 1, 200
        if rng.startswith("bytes="):
            a, _, b = rng[len("bytes="):].partition("-")
            if a:
                start, end = int(a), min(int(b) if b else size - 1, size - 1)
            else:
                start, end = max(size - int(b), 0), size - 1
            if start >= size or start > end:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return self._record(416, 0, fault)
            status = 206
        with open(path, "rb") as fh:
            fh.seek(start)
            body = fh.read(end - start + 1)
        announced = len(body)
        if fault == "truncate":
            body = body[: max(len(body) * 3 // 5, 1)]
            announced = len(body)
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(announced))
            self.send_header("Accept-Ranges", "bytes")
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
            self.end_headers()
            if head:
                return self._record(status, 0, fault)
            if fault == "drop":
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return self._record(status, len(body) // 2, fault)
            self.wfile.write(body)
            self._record(status, len(body), fault)
        except OSError:  # the client went away (stall past its timeout)
            self.close_connection = True
            self._record(status, 0, fault + "+client-gone")


@dataclass
class HttpServer:
    url: str
    server: ThreadingHTTPServer
    state: _State

    def requests(self) -> list[tuple]:
        with self.state.lock:
            return list(self.state.log)

    def wait_idle(self, timeout_s: float = 10.0) -> None:
        """Wait until no request is being answered (stalled answers finish after the client left)."""
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            with self.state.lock:
                if self.state.active == 0:
                    return
            time.sleep(0.02)

    def reset(self, faults: Faults | None = None) -> None:
        """Wait until idle, then forget the request log and attempt counts (and optionally
        change the faults)."""
        self.wait_idle()
        with self.state.lock:
            self.state.log.clear()
            self.state.attempts.clear()
            if faults is not None:
                self.state.faults = faults


def start(root: str | os.PathLike, faults: Faults | None = None) -> HttpServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    state = _State(os.path.realpath(str(root)), faults or Faults())
    server.dhs_state = state  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                     daemon=True).start()
    host, port = server.server_address[:2]
    return HttpServer(f"http://{host}:{port}", server, state)


@contextlib.contextmanager
def http_server(root: str | os.PathLike, faults: Faults | None = None) -> Iterator[HttpServer]:
    srv = start(root, faults)
    try:
        yield srv
    finally:
        srv.server.shutdown()
        srv.server.server_close()


def main() -> None:
    """``python -m tests.servers ROOT``: serve ROOT without faults; prints the URL, runs until killed
    (benchmarks run the server in its own process so it does not share the client's GIL)."""
    import sys

    srv = start(sys.argv[1])
    print(srv.url, flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
