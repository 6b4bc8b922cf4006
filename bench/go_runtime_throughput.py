#!/usr/bin/env python3
"""Throughput of the Go function runtime against a bare net/http server.

The method is python_runtime_throughput.py's (whose helpers this imports): each server pinned to CPU 0 with
GOMAXPROCS=1, wrk pinned to CPU 1, and the CPU time per request read from /proc, which moves much less than req/s
when other work competes for CPU 0. The baseline is the least a net/http server does per request: a handler that
sets Content-Type and writes "hello". The runtime serves the function below, compiled by the runtime's own compile
script with this machine's Go; the gap between the two is the runtime's cost per call (event, deadline context,
the function's goroutine, metrics, access log).

Usage: python3 bench/go_runtime_throughput.py [--duration 10] [--connections 16]
Needs go, wrk (apt-get install -y wrk) and taskset. Traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from python_runtime_throughput import SERVER_CPU, WRK_CPU, free_port, measure, report

REPO = Path(__file__).resolve().parent.parent
COMPILE_SCRIPT = REPO / "runtimes" / "go" / "compile" / "compile-function.sh"
HANDLER_SOURCE = '''package kubeless

import "github.com/kubeless/kubeless/pkg/functions"

func Hello(event functions.Event, context functions.Context) (string, error) {
	return "hello", nil
}
'''
BARE_SOURCE = '''package main

import (
	"net/http"
	"os"
)

func main() {
	hello := []byte("hello")
	http.ListenAndServe("127.0.0.1:"+os.Args[1], http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write(hello)
	}))
}
'''


def go_cache() -> str:
    return subprocess.run(["go", "env", "GOCACHE"], capture_output=True, text=True, check=True).stdout.strip()


def build_runtime(work: Path) -> Path:
    volume = work / "kubeless"
    volume.mkdir()
    (volume / "hello.go").write_text(HANDLER_SOURCE)
    (volume / "go.mod").write_text("module function\n\ngo 1.14\n")
    subprocess.run(["sh", str(COMPILE_SCRIPT)], check=True, stdout=subprocess.DEVNULL, env=dict(
        os.environ, KUBELESS_INSTALL_VOLUME=str(volume), KUBELESS_FUNC_NAME="Hello",
        KUBELESS_GO_MODULE=str(REPO / "runtimes" / "go" / "kubeless"), KUBELESS_GO_BUILD_DIR=str(work / "build"),
        KUBELESS_GO_CACHE_SEED="/nonexistent", GOCACHE=go_cache(), GOPATH=str(work / "gopath")))
    return volume / "server"


def build_bare(work: Path) -> Path:
    folder = work / "bare"
    folder.mkdir()
    (folder / "main.go").write_text(BARE_SOURCE)
    (folder / "go.mod").write_text("module bare\n\ngo 1.22\n")
    subprocess.run(["go", "build", "-trimpath", "-o", "bare", "."], cwd=folder, check=True,
                   env=dict(os.environ, CGO_ENABLED="0", GOFLAGS="-buildvcs=false", GOTOOLCHAIN="local"))
    return folder / "bare"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    for tool in ("go", "wrk", "taskset"):
        if not shutil.which(tool):
            sys.exit(f"{tool} not found")

    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        runtime_binary, bare_binary = build_runtime(work), build_bare(work)
        one_cpu = dict(os.environ, GOMAXPROCS="1")
        bare_port = free_port()
        bare = measure("bare net/http", [str(bare_binary), str(bare_port)], one_cpu, bare_port,
                       args.duration, args.connections)
        runtime_port = free_port()
        runtime_env = dict(one_cpu, FUNC_HANDLER="Hello", MOD_NAME="hello", FUNC_HOST="127.0.0.1",
                           FUNC_PORT=str(runtime_port), FUNC_RUNTIME="go1.26")
        runtime = measure("kubeless go runtime", [str(runtime_binary)], runtime_env, runtime_port,
                          args.duration, args.connections)

    report(f"wrk -t1 -c{args.connections} -d{args.duration}s, server on CPU {SERVER_CPU} (GOMAXPROCS=1), "
           f"wrk on CPU {WRK_CPU}", bare, runtime)
    return 0


if __name__ == "__main__":
    sys.exit(main())
