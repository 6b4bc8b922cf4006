#!/usr/bin/env python3
"""How long `kubectl kubeless` takes to start, for the built zipapp and for the source tree.

    bench/plugin_startup.py [--runs 15] [--functions 100]

Measures, each as the median (and the best) of --runs wall-clock runs:
- `kubectl kubeless --help` and `version` (target 150 ms): no cluster, and no API client imported;
- `kubectl kubeless function ls` in a scratch namespace holding --functions Function objects (target 500 ms),
  created directly with kubectl (a runtime the catalogue lacks: the controller only marks them, no pod starts) and
  deleted at the end;
- the first run of a new build, which extracts the zipapp (fresh SHIV_ROOT; target 1.5 s);
- the same commands from the source tree (`python -m kubectl_kubeless`), and the floor under all of them: the
  interpreter's own start and kubectl's.
Each command runs three ways: through kubectl (what users type), the zipapp directly, and the zipapp directly with
the interpreter's real folder first on PATH (the zipapp's `#!/usr/bin/env python3` otherwise finds whatever
`python3` comes first, a pyenv shim here, which is itself a program to start).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PLUGIN = REPO / "dist" / "kubectl-kubeless"
sys.path.insert(0, str(Path(__file__).parent))

from function_latency import environment  # noqa: E402


def timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(argv, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {result.returncode}: {result.stderr.strip()[-500:]}")
    return elapsed * 1000


def measure(argv: list[str], env: dict[str, str], runs: int) -> tuple[float, float]:
    timed(argv, env)  # warm the page cache and the shiv cache
    samples = [timed(argv, env) for _ in range(runs)]
    return statistics.median(samples), min(samples)


def real_python3(env: dict[str, str]) -> tuple[str, str]:
    """The python3 that `/usr/bin/env python3` finds, and the interpreter it finally runs."""
    found = shutil.which("python3", path=env["PATH"]) or "python3"
    real = subprocess.run([found, "-c", "import sys; print(sys.executable)"], env=env, capture_output=True,
                          text=True).stdout.strip()
    return found, real


def create_functions(env: dict[str, str], namespace: str, count: int) -> None:
    items = [{"apiVersion": "kubeless.io/v1beta1", "kind": "Function",
              "metadata": {"name": f"fn-{index:03d}", "namespace": namespace,
                           "labels": {"created-by": "kubeless", "function": f"fn-{index:03d}"}},
              "spec": {"handler": "hello.handler", "runtime": "nosuchruntime0.0", "function": "x", "deps": "",
                       "timeout": "180"}} for index in range(count)]
    subprocess.run(["kubectl", "create", "namespace", namespace], env=env, check=True, capture_output=True)
    subprocess.run(["kubectl", "create", "-f", "-"], env=env, check=True, capture_output=True,
                   input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}), text=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--functions", type=int, default=100)
    args = parser.parse_args()
    subprocess.run([str(REPO / "hack" / "build-plugin.sh")], check=True, stdout=subprocess.DEVNULL)
    venv = subprocess.run([str(REPO / "hack" / "deps.sh")], check=True, capture_output=True, text=True).stdout.strip()
    env = environment()
    shiv_root = Path(tempfile.mkdtemp(prefix="shiv-"))
    env["SHIV_ROOT"] = str(shiv_root)
    found, real = real_python3(env)
    direct_env = {**env, "PATH": os.pathsep.join([str(Path(real).parent), env["PATH"]])}

    with zipfile.ZipFile(PLUGIN) as archive:
        members = len(archive.namelist())
    print(f"zipapp: {PLUGIN.stat().st_size / 1e6:.2f} MB, {members} files; python3 on PATH: {found} -> {real}")
    print(f"PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', '')!r}; {args.runs} runs each; "
          "median (best) in ms\n")

    # the first run of a new build: a fresh SHIV_ROOT each time
    firsts = []
    for _ in range(3):
        fresh = tempfile.mkdtemp(prefix="shiv-first-")
        firsts.append(timed([str(PLUGIN), "version"], {**direct_env, "SHIV_ROOT": fresh}))
        shutil.rmtree(fresh)
    rows = [("first run (extraction), `version`", statistics.median(firsts), min(firsts), 1500)]

    namespace = f"pkg-bench-{uuid.uuid4().hex[:6]}"
    create_functions(env, namespace, args.functions)
    try:
        listed = subprocess.run(["kubectl", "kubeless", "function", "ls", "-n", namespace], env=env,
                                capture_output=True, text=True, check=True).stdout
        assert len(listed.splitlines()) == args.functions + 1, listed
        commands = [("--help", ["--help"], 150), ("version", ["version"], 150),
                    (f"function ls ({args.functions} functions)", ["function", "ls", "-n", namespace], 500)]
        for label, argv, budget in commands:
            for how, command, run_env in (
                    ("kubectl kubeless", ["kubectl", "kubeless", *argv], env),
                    ("zipapp", [str(PLUGIN), *argv], env),
                    ("zipapp, real python3", [str(PLUGIN), *argv], direct_env),
                    ("source tree", [f"{venv}/bin/python", "-m", "kubectl_kubeless", *argv], env)):
                median, best = measure(command, {**run_env, "PYTHONPATH": str(REPO)} if how == "source tree"
                                       else run_env, args.runs)
                rows.append((f"{label}: {how}", median, best, budget))
    finally:
        subprocess.run(["kubectl", "delete", "namespace", namespace, "--wait=false"], env=env, capture_output=True)
        shutil.rmtree(shiv_root, ignore_errors=True)
    for label, argv in (("floor: python3 -c pass (PATH's)", [found, "-c", "pass"]),
                        ("floor: python3 -c pass (real)", [real, "-c", "pass"]),
                        ("floor: kubectl version --client", ["kubectl", "version", "--client"])):
        median, best = measure(argv, env, args.runs)
        rows.append((label, median, best, None))

    width = max(len(label) for label, *_ in rows) + 2
    for label, median, best, budget in rows:
        verdict = "" if budget is None else ("  ok" if median <= budget else f"  over {budget} ms")
        print(f"{label:<{width}}{median:7.0f} ({best:4.0f}){verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
