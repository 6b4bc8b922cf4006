"""HTTP on :8081 for the kubelet and Prometheus: /healthz and /metrics."""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log = logging.getLogger(__name__)

PROMETHEUS_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def serve(port: int, *, healthy: Callable[[], bool], metrics: Callable[[], str],
          host: str = "0.0.0.0") -> ThreadingHTTPServer:
    """Start the server on a daemon thread and return it (server.shutdown() stops it)."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            route = self.path.split("?", 1)[0]
            if route == "/healthz":
                ok = healthy()
                self._send(200 if ok else 503, "ok\n" if ok else "watches not running\n", "text/plain")
            elif route == "/metrics":
                self._send(200, metrics(), PROMETHEUS_TYPE)
            else:
                self._send(404, "not found\n", "text/plain")

        def _send(self, code: int, text: str, content_type: str) -> None:
            body = text.encode()
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args) -> None:  # noqa: A002 - the http.server API
            log.debug("%s " + format, self.address_string(), *args)

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    return server
