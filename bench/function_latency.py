#!/usr/bin/env python3
"""Deploy-to-first-call and warm `function call` wall time, measured the way a user feels them.

Runs `kubectl kubeless` (dist/ first on PATH) against $KUBECONFIG (or the local cluster), in a scratch namespace.
    bench/function_latency.py [--deploys 10] [--calls 20]
Prints p50/p95 for each. Deploy-to-first-call starts before `function deploy` and ends at the first call that
answers with the right body (the image is already in containerd: no pull is ever made).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HELLO = "def hello(event, context):\n    return event['data']\n"


def environment() -> dict[str, str]:
    env = dict(os.environ)
    cluster = [sys.executable, str(REPO / "hack" / "localcluster" / "cluster.py")]
    if "KUBECONFIG" not in env:
        env["KUBECONFIG"] = subprocess.run([*cluster, "kubeconfig"], capture_output=True, text=True).stdout.strip()
        bins = subprocess.run([*cluster, "bins"], capture_output=True, text=True).stdout.split()
        env["PATH"] = os.pathsep.join([*bins, env["PATH"]])
    env["PATH"] = os.pathsep.join([str(REPO / "dist"), env["PATH"]])
    return env


Run = Callable[..., subprocess.CompletedProcess]


@contextmanager
def scratch(timeout: float = 300) -> Iterator[tuple[Run, str, Path]]:
    """What a bench on a cluster needs: `run` (a command with the cluster's environment, output captured, failing
    unless check=False), a namespace of its own that goes afterwards, and a folder for the function's source."""
    env = environment()

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(list(args), env=env, capture_output=True, text=True, check=check, timeout=timeout)

    namespace = f"bench-{uuid.uuid4().hex[:6]}"
    run("kubectl", "create", "namespace", namespace)
    try:
        yield run, namespace, Path(tempfile.mkdtemp())
    finally:
        run("kubectl", "delete", "namespace", namespace, "--wait=false", check=False)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deploys", type=int, default=10)
    parser.add_argument("--calls", type=int, default=20)
    args = parser.parse_args()
    with scratch() as (run, namespace, folder):
        source = folder / "hello.py"
        source.write_text(HELLO)
        kubeless = ("kubectl", "kubeless", "function")
        deploys = []
        for index in range(args.deploys):
            name = f"hello-{index}"
            started = time.monotonic()
            run(*kubeless, "deploy", name, "-n", namespace, "--runtime", "python3.11", "--from-file", str(source),
                "--handler", "hello.hello")
            deadline = started + 120
            while time.monotonic() < deadline:
                called = run(*kubeless, "call", name, "-n", namespace, "--data", "ping", check=False)
                if called.returncode == 0 and called.stdout == "ping\n":
                    break
                time.sleep(0.1)
            else:
                raise SystemExit(f"{name} never answered: {called.stderr}")
            deploys.append(time.monotonic() - started)
            run(*kubeless, "delete", name, "-n", namespace)
        calls = []
        run(*kubeless, "deploy", "warm", "-n", namespace, "--runtime", "python3.11", "--from-file", str(source),
            "--handler", "hello.hello", "--wait")
        run(*kubeless, "call", "warm", "-n", namespace, "--data", "ping")
        for _ in range(args.calls):
            started = time.monotonic()
            run(*kubeless, "call", "warm", "-n", namespace, "--data", "ping")
            calls.append(time.monotonic() - started)
    for label, samples in (("deploy to first successful call", deploys), ("warm `function call` (CLI included)", calls)):
        print(f"{label:40} n={len(samples):3}  p50 {percentile(samples, 0.5):6.2f} s  "
              f"p95 {percentile(samples, 0.95):6.2f} s  mean {statistics.mean(samples):6.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
