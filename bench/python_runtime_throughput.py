#!/usr/bin/env python3
"""Throughput of the Python function runtime against a bare stdlib HTTP server.

Both servers are pinned to CPU 0 and wrk to CPU 1, so the figures compare the
cost per request of the servers, not how well they share cores with the load
generator. CPU time per request (from /proc) is printed too: it moves much less
than req/s when other work competes for CPU 0. The baseline is the least a stdlib
server does per request: a ThreadingHTTPServer speaking HTTP/1.1 (keep-alive)
with a constant body, no access log and TCP_NODELAY. The runtime serves
`def hello(event, context): return "hello"`.

Usage: python3 bench/python_runtime_throughput.py [--duration 10] [--connections 16]
Needs wrk (apt-get install -y wrk) and taskset. Traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RUNTIME = REPO / "runtimes" / "python" / "kubeless_runtime.py"
HANDLER_SOURCE = 'def hello(event, context):\n    return "hello"\n'
SERVER_CPU, WRK_CPU = "0", "1"
LATENCY_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


class ConstantHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Head and body leave in two writes; with Nagle on, the second waits for the
    # client's delayed ACK (~40 ms) and the baseline collapses to a few hundred req/s.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", "5")
        self.end_headers()
        self.wfile.write(b"hello")

    def log_message(self, format: str, *args: object) -> None:
        pass


def serve_bare(port: int) -> None:
    ThreadingHTTPServer(("127.0.0.1", port), ConstantHandler).serve_forever()


@dataclass
class Result:
    name: str
    requests_per_second: float
    p99_ms: float
    cpu_us_per_request: float
    errors: str


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_serving(port: int, server: subprocess.Popen, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"server exited with code {server.returncode}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            connection.request("GET", "/")
            if connection.getresponse().read() == b"hello":
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server on port {port} not ready after {timeout} s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def parse_wrk(name: str, output: str, cpu_used: float) -> Result:
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    p99 = re.search(r"^\s*99%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.MULTILINE)
    if not rate or not p99 or not total:
        raise RuntimeError(f"cannot parse wrk output:\n{output}")
    errors = [line.strip() for line in output.splitlines()
              if line.strip().startswith(("Socket errors", "Non-2xx"))]
    return Result(name, float(rate.group(1)), float(p99.group(1)) * LATENCY_UNITS[p99.group(2)],
                  cpu_used * 1e6 / max(int(total.group(1)), 1), "; ".join(errors) or "none")


def measure(name: str, server_command: list[str], env: dict[str, str], port: int,
            duration: int, connections: int) -> Result:
    server = subprocess.Popen(["taskset", "-c", SERVER_CPU, *server_command], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_serving(port, server)
        cpu_before = cpu_seconds(server.pid)  # taskset execs the server: same pid
        wrk = subprocess.run(
            ["taskset", "-c", WRK_CPU, "wrk", "-t1", f"-c{connections}", f"-d{duration}s",
             "--latency", f"http://127.0.0.1:{port}/"],
            capture_output=True, text=True, check=True)
        return parse_wrk(name, wrk.stdout, cpu_seconds(server.pid) - cpu_before)
    finally:
        server.terminate()
        server.wait(timeout=10)


def report(heading: str, bare: Result, runtime: Result) -> None:
    """The table every runtime's benchmark prints: the bare server against the runtime, and their ratio."""
    print(heading)
    print(f"{'server':<26} {'req/s':>10} {'p99 ms':>8} {'CPU us/req':>10}  errors")
    for result in (bare, runtime):
        print(f"{result.name:<26} {result.requests_per_second:>10.0f} {result.p99_ms:>8.2f} "
              f"{result.cpu_us_per_request:>10.1f}  {result.errors}")
    print(f"ratio runtime/bare: {runtime.requests_per_second / bare.requests_per_second:.2f} req/s, "
          f"{bare.cpu_us_per_request / runtime.cpu_us_per_request:.2f} by CPU per request")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--bare-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_server:
        serve_bare(args.bare_server)
        return 0
    if not shutil.which("wrk"):
        sys.exit("wrk not found: apt-get install -y wrk")

    bare_port = free_port()
    bare = measure("bare ThreadingHTTPServer", [sys.executable, __file__, "--bare-server", str(bare_port)],
                   dict(os.environ), bare_port, args.duration, args.connections)
    with tempfile.TemporaryDirectory() as function_dir:
        Path(function_dir, "hello.py").write_text(HANDLER_SOURCE)
        runtime_port = free_port()
        runtime_env = dict(os.environ, FUNC_HANDLER="hello", MOD_NAME="hello", FUNC_HOST="127.0.0.1",
                           FUNC_PORT=str(runtime_port), KUBELESS_INSTALL_VOLUME=function_dir)
        runtime = measure("kubeless python runtime", [sys.executable, str(RUNTIME)],
                          runtime_env, runtime_port, args.duration, args.connections)

    report(f"wrk -t1 -c{args.connections} -d{args.duration}s, server on CPU {SERVER_CPU}, wrk on CPU {WRK_CPU}",
           bare, runtime)
    return 0


if __name__ == "__main__":
    sys.exit(main())
