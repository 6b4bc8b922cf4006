"""The dependency cache service: stores and serves the tarballs of built dependencies (protocol.py says how).

Kubeless ran pip (or npm, ...) in every pod at every start (Kubeless #158): scaling from 1 to 5 replicas ran the
installer five times. Here the first pod that needs a set of dependencies claims it, builds it in its `install` step
and stores the result as a tarball; every later pod, replica or restart fetches the tarball instead. Storage is a
plain folder (an emptyDir by default: a restart only costs one rebuild per key).
"""
from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from kubeless_depcache.protocol import CLAIM, CLAIM_SECONDS, ROUTE, TARBALL

CHUNK = 1 << 20


class Cache:
    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.claims: dict[str, float] = {}
        self.lock = threading.Lock()
        self.counts = {"hit": 0, "miss": 0, "store": 0, "claim": 0, "claim_refused": 0}

    def path(self, key: str) -> Path:
        return self.root / f"{key}.tar.gz"

    def claim(self, key: str, now: float) -> bool:
        with self.lock:
            if self.path(key).exists() or now - self.claims.get(key, -CLAIM_SECONDS) < CLAIM_SECONDS:
                self.counts["claim_refused"] += 1
                return False
            self.claims[key] = now
            self.counts["claim"] += 1
            return True

    def count(self, what: str) -> None:
        with self.lock:
            self.counts[what] += 1

    def metrics(self) -> str:
        lines = ["# HELP kubeless_deps_cache_requests_total Dependency cache requests by outcome.",
                 "# TYPE kubeless_deps_cache_requests_total counter"]
        with self.lock:
            lines += [f'kubeless_deps_cache_requests_total{{outcome="{k}"}} {v}' for k, v in self.counts.items()]
        entries = list(self.root.glob("*.tar.gz"))
        lines += ["# TYPE kubeless_deps_cache_entries gauge", f"kubeless_deps_cache_entries {len(entries)}",
                  "# TYPE kubeless_deps_cache_bytes gauge",
                  f"kubeless_deps_cache_bytes {sum(e.stat().st_size for e in entries)}"]
        return "\n".join(lines) + "\n"


def handler_for(cache: Cache) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def answer(self, status: int, body: bytes = b"", content_type: str = "text/plain; charset=utf-8") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def route(self) -> tuple[str, str] | None:
            match = ROUTE.match(self.path)
            return (match.group(1), match.group(2)) if match else None

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if self.path == "/healthz":
                return self.answer(200, b"OK")
            if self.path == "/metrics":
                return self.answer(200, cache.metrics().encode(), "text/plain; version=0.0.4")
            route = self.route()
            if not route or route[1] != TARBALL:
                return self.answer(404, b"not found\n")
            path = cache.path(route[0])
            if not path.exists():
                cache.count("miss")
                return self.answer(404, b"not cached\n")
            cache.count("hit")
            self.send_response(200)
            self.send_header("Content-Type", "application/gzip")
            self.send_header("Content-Length", str(path.stat().st_size))
            self.end_headers()
            with path.open("rb") as stream:
                while chunk := stream.read(CHUNK):
                    self.wfile.write(chunk)

        def do_POST(self) -> None:  # noqa: N802
            route = self.route()
            if not route or route[1] != CLAIM:
                return self.answer(404, b"not found\n")
            if cache.claim(route[0], time.monotonic()):
                return self.answer(201, b"claimed: build it and PUT the tarball\n")
            return self.answer(409, b"already cached or being built\n")

        def do_PUT(self) -> None:  # noqa: N802
            route = self.route()
            length = int(self.headers.get("Content-Length") or -1)
            if not route or route[1] != TARBALL:
                return self.answer(404, b"not found\n")
            if not 0 < length <= cache.max_bytes:
                self.close_connection = True
                return self.answer(413, f"a tarball must have 1 to {cache.max_bytes} bytes\n".encode())
            with tempfile.NamedTemporaryFile(dir=cache.root, delete=False) as temporary:
                remaining = length
                while remaining:
                    chunk = self.rfile.read(min(CHUNK, remaining))
                    if not chunk:
                        break
                    temporary.write(chunk)
                    remaining -= len(chunk)
            if remaining:
                os.unlink(temporary.name)
                return self.answer(400, b"the body ended early\n")
            os.replace(temporary.name, cache.path(route[0]))
            cache.count("store")
            return self.answer(201, b"stored\n")

        def log_message(self, format: str, *args) -> None:  # noqa: A002 - http.server's signature
            sys.stdout.write(f"{self.address_string()} {format % args}\n")

    return Handler


def main() -> int:
    root = Path(os.environ.get("DEPS_CACHE_DIR", "/var/cache/kubeless-deps"))
    root.mkdir(parents=True, exist_ok=True)
    cache = Cache(root, int(os.environ.get("DEPS_CACHE_MAX_BYTES", str(2 << 30))))
    server = ThreadingHTTPServer(("", int(os.environ.get("DEPS_CACHE_PORT", "8080"))), handler_for(cache))
    print(f"dependency cache serving {root} on :{server.server_port}", flush=True)
    server.serve_forever()
    return 0

