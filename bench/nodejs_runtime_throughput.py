#!/usr/bin/env python3
"""Throughput of the Node.js function runtime against a bare Node.js HTTP server.

The method is bench/python_runtime_throughput.py's, whose helpers it uses: both servers are pinned to CPU 0 and
wrk to CPU 1 (`wrk -t1 -c16 -d10s --latency`), and the CPU time each server spends per request is read from
/proc. The baseline is the least a Node server does per request: `http.createServer` answering a constant body
with Content-Type and Content-Length, no access log. The runtime serves
`module.exports = { hello: () => "hello" }`, started as its image starts it.

Usage: python3 bench/nodejs_runtime_throughput.py [--duration 10] [--connections 16] [--node PATH]
Needs node, wrk (apt-get install -y wrk) and taskset. Traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from python_runtime_throughput import SERVER_CPU, WRK_CPU, free_port, measure, report  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
RUNTIME = REPO / "runtimes" / "nodejs" / "kubeless.js"
NODE_FLAGS = ["--no-force-async-hooks-checks"]  # as in runtimes/nodejs/image.toml
HANDLER_SOURCE = 'module.exports = { hello: (event, context) => "hello" };\n'
BARE_SERVER = """
const http = require('http');
http.createServer((req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': 5 });
  res.end('hello');
}).listen(Number(process.argv[1]), '127.0.0.1');
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--node", default=shutil.which("node") or "node", help="the node binary to measure")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk not found: apt-get install -y wrk")

    bare_port = free_port()
    bare = measure("bare node http", [args.node, "-e", BARE_SERVER, str(bare_port)],
                   dict(os.environ), bare_port, args.duration, args.connections)
    with tempfile.TemporaryDirectory() as function_dir:
        Path(function_dir, "hello.js").write_text(HANDLER_SOURCE)
        runtime_port = free_port()
        runtime_env = dict(os.environ, FUNC_HANDLER="hello", MOD_NAME="hello", FUNC_HOST="127.0.0.1",
                           FUNC_PORT=str(runtime_port), KUBELESS_INSTALL_VOLUME=function_dir)
        runtime = measure("kubeless nodejs runtime", [args.node, *NODE_FLAGS, str(RUNTIME)],
                          runtime_env, runtime_port, args.duration, args.connections)

    report(f"wrk -t1 -c{args.connections} -d{args.duration}s, server on CPU {SERVER_CPU}, wrk on CPU {WRK_CPU}, "
           f"node {args.node}", bare, runtime)
    return 0


if __name__ == "__main__":
    sys.exit(main())
