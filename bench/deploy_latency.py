#!/usr/bin/env python3
"""Deploy-to-first-call per runtime, with and without dependencies, and what the dependency cache saves.

    bench/deploy_latency.py [--deploys 5] [--runtimes python3.11,go1.26,nodejs18]

For each runtime: N deploys of a trivial function (each timed from before `function deploy` to the first call that
answers), and for Python also N deploys with a requirements.txt served by an in-cluster index (each a new
dependency file, so each first pod really runs pip), then one scale-up per deploy, timing the second replica from
`kubectl scale` to Ready: it takes the dependencies from the cache instead of running pip.
Runs against $KUBECONFIG, or the local cluster; images are already in containerd (nothing is pulled).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "e2e"))
sys.path.insert(0, str(Path(__file__).parent))

from function_latency import environment, percentile  # noqa: E402

SOURCES = {
    "python3.11": ("hello.py", "hello.hello", "def hello(event, context):\n    return event['data']\n"),
    "go1.26": ("hello.go", "hello.Hello", 'package kubeless\n\nimport "github.com/kubeless/kubeless/pkg/functions"\n\n'
               "func Hello(event functions.Event, context functions.Context) (string, error) {\n"
               "\treturn event.Data, nil\n}\n"),
    "nodejs18": ("hello.js", "hello.hello", "module.exports = { hello: (event) => event.data };\n"),
}
WITH_GREETING = "import greeting\n\ndef hello(event, context):\n    return greeting.greet(event['data'])\n"


class Bench:
    def __init__(self) -> None:
        self.env = environment()
        self.namespace = f"bench-{uuid.uuid4().hex[:6]}"
        self.folder = Path(tempfile.mkdtemp())

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(list(args), env=self.env, capture_output=True, text=True, check=check, timeout=600)

    def kubeless(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.run("kubectl", "kubeless", "function", *args, "-n", self.namespace, check=check)

    def deploy_to_call(self, name: str, runtime: str, source: Path, handler: str, *extra: str) -> float:
        started = time.monotonic()
        self.kubeless("deploy", name, "--runtime", runtime, "--from-file", str(source), "--handler", handler, *extra)
        while time.monotonic() - started < 300:
            called = self.kubeless("call", name, "--data", "ping", check=False)
            if called.returncode == 0:
                return time.monotonic() - started
            time.sleep(0.1)
        raise SystemExit(f"{name} never answered: {called.stderr}")

    def second_replica(self, name: str) -> float:
        started = time.monotonic()
        self.run("kubectl", "scale", "deployment", name, "-n", self.namespace, "--replicas=2")
        while time.monotonic() - started < 300:
            status = json.loads(self.run("kubectl", "get", "deployment", name, "-n", self.namespace, "-o",
                                         "json").stdout)["status"]
            if status.get("readyReplicas") == 2:
                return time.monotonic() - started
            time.sleep(0.1)
        raise SystemExit(f"{name}'s second replica never got ready")


def report(label: str, samples: list[float]) -> None:
    print(f"{label:52} n={len(samples):2}  p50 {percentile(samples, 0.5):6.2f} s  p95 {percentile(samples, 0.95):6.2f} s",
          flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deploys", type=int, default=5)
    parser.add_argument("--runtimes", default=",".join(SOURCES))
    args = parser.parse_args()
    bench = Bench()
    bench.run("kubectl", "create", "namespace", bench.namespace)
    try:
        for runtime in args.runtimes.split(","):
            file_name, handler, code = SOURCES[runtime]
            source = bench.folder / file_name
            source.write_text(code)
            samples = [bench.deploy_to_call(f"{runtime.replace('.', '')}-{i}", runtime, source, handler)
                       for i in range(args.deploys)]
            report(f"{runtime}: deploy to first call, no deps", samples)
        if "python3.11" in args.runtimes:
            from conftest import Cluster  # noqa: PLC0415 - the tests' in-cluster package index
            from package_index import serve_pypi  # noqa: PLC0415

            url = serve_pypi(Cluster(Path(bench.env["KUBECONFIG"]), "bench", bench.env), bench.namespace,
                             "localhost/kubeless/python:0.1.0")
            source = bench.folder / "hello.py"
            source.write_text(WITH_GREETING)
            cold, replicas = [], []
            for i in range(args.deploys):
                requirements = bench.folder / "requirements.txt"
                requirements.write_text(f"# {uuid.uuid4()}\ngreeting==1.0.0\n")  # a new cache key: pip runs
                name = f"deps-{i}"
                cold.append(bench.deploy_to_call(name, "python3.11", source, "hello.hello", "--dependencies",
                                                 str(requirements), "--env", f"PIP_INDEX_URL={url}",
                                                 "--env", f"PIP_TRUSTED_HOST={url.split('/')[2].split(':')[0]}"))
                replicas.append(bench.second_replica(name))
            report("python3.11: deploy to first call, with deps (pip runs)", cold)
            report("python3.11: second replica ready, deps from the cache", replicas)
    finally:
        bench.run("kubectl", "delete", "namespace", bench.namespace, "--wait=false", check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
