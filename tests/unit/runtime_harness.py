"""What the runtimes' unit tests share: how to start each runtime's server, HTTP to it, and stopping it.

A `Launcher` holds one runtime's command and environment: the Python script, the Node script, or the binary the Go
compile script built. test_runtime_contract.py starts each runtime on its contract function; each runtime's own
module starts the same runtime on a function of its own, for what only that runtime does.
"""
from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

RUNTIMES = Path(__file__).resolve().parents[2] / "runtimes"
PYTHON_RUNTIME = RUNTIMES / "python" / "kubeless_runtime.py"
NODE_RUNTIME = RUNTIMES / "nodejs" / "kubeless.js"
GO_RUNTIME = RUNTIMES / "go"

NODE = os.environ.get("KUBELESS_TEST_NODE") or shutil.which("node")
NODE_FLAGS = ["--no-force-async-hooks-checks"]  # as the image's CMD
NO_NODE = "node is not installed (set KUBELESS_TEST_NODE to use another)"
GO = shutil.which("go")
NO_GO = "go is not installed: the Go runtime compiles with the host's Go"
GO_MOD = "module function\n\ngo 1.14\n"  # the seed function's go.mod


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class RuntimeServer:
    process: subprocess.Popen
    port: int
    stdout: Path
    stderr: Path

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None, timeout: float = 10) -> Response:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return Response(response.status, response.headers, response.read())
        finally:
            connection.close()

    def metric(self, line_prefix: str) -> float:
        for line in self.request("GET", "/metrics").body.decode().splitlines():
            if line.startswith(line_prefix + " "):
                return float(line.split()[-1])
        return 0.0


@dataclass
class Refusal:
    """What a runtime that refused to start left: its exit code, its stderr and its termination log."""
    exit_code: int
    stderr: str
    termination_log: str


@dataclass(frozen=True)
class Launcher:
    """How to start one runtime's server: its command, and its environment but for FUNC_PORT."""
    argv: list[str]
    env: dict[str, str]
    logs: Path  # its stdout, stderr and termination log go here

    @property
    def termination_log(self) -> Path:
        return self.logs / "termination-log"

    def launch(self, **overrides: str | None) -> RuntimeServer:
        """Starts the server on a free port; an override of None removes the variable."""
        port = free_port()
        env = {**self.env, "FUNC_PORT": str(port), **overrides}
        return spawn(self.argv, self.logs, port, {key: value for key, value in env.items() if value is not None})

    @contextmanager
    def running(self, **overrides: str | None) -> Iterator[RuntimeServer]:
        """The server, healthy, for the block; it is killed after, whatever the block did to it."""
        server = self.launch(**overrides)
        try:
            yield wait_until_healthy(server)
        finally:
            stop(server.process)

    def refusal(self, **overrides: str | None) -> Refusal:
        """Starts a server that is expected to exit, and waits for it."""
        self.termination_log.write_text("")
        server = self.launch(**overrides)
        try:
            exit_code = server.process.wait(timeout=10)
        finally:
            stop(server.process)
        return Refusal(exit_code, server.stderr.read_text(), self.termination_log.read_text())


def contract_env(logs: Path, runtime: str, handler: str, module: str) -> dict[str, str]:
    """The variables the controller sets on a function's container, as the tests set them."""
    # The contract's variables come from the test alone, not from the shell that runs it.
    inherited = {key: value for key, value in os.environ.items()
                 if not key.startswith("FUNC_") and key not in ("MOD_NAME", "REQ_MB_LIMIT")}
    return {**inherited, "FUNC_HANDLER": handler, "MOD_NAME": module, "FUNC_HOST": "127.0.0.1", "FUNC_TIMEOUT": "5",
            "FUNC_RUNTIME": runtime, "FUNC_MEMORY_LIMIT": "128Mi",
            "FUNC_TERMINATION_LOG": str(logs / "termination-log")}


def python_runtime(function_dir: Path) -> Launcher:
    """The python3.11 runtime serving function.handle from function_dir."""
    env = {**contract_env(function_dir, "python3.11", "handle", "function"),
           "KUBELESS_INSTALL_VOLUME": str(function_dir)}
    return Launcher([sys.executable, str(PYTHON_RUNTIME)], env, function_dir)


def node_runtime(function_dir: Path) -> Launcher:
    """The nodejs18 runtime serving function.handle from function_dir."""
    assert NODE is not None, NO_NODE
    env = {**contract_env(function_dir, "nodejs18", "handle", "function"),
           "KUBELESS_INSTALL_VOLUME": str(function_dir)}
    return Launcher([NODE, *NODE_FLAGS, str(NODE_RUNTIME)], env, function_dir)


def go_server(binary: Path, module: str, handler: str) -> Launcher:
    """The go1.26 server the compile step built: the handler is compiled in, its names are for the messages."""
    return Launcher([str(binary)], contract_env(binary.parent, "go1.26", handler, module), binary.parent)


# Kubernetes quantities as FUNC_MEMORY_LIMIT, and the bytes each runtime reads in them (0: no limit known); the Go
# runtime's config_test.go has the same table.
MEMORY_QUANTITIES = [
    ("", 0), ("0", 0), ("128Mi", 128 << 20), ("1Gi", 1 << 30), ("1.5Gi", 3 << 29), ("500M", 500_000_000),
    ("134217728", 134217728), ("2k", 2000), ("+5Ki", 5120), (".5Ki", 512), ("1e3", 1000), ("1E3", 1000),
    ("1E", 10 ** 18), ("128974848000m", 128974848), ("lots", 0), ("-1Mi", 0), ("1 Mi", 0), ("0x10", 0), ("Mi", 0),
    ("1e999", 0), ("\u0661\u0662Mi", 0),  # Arabic-Indic digits are not digits here
]
# The configuration a runtime refuses, and why (after "invalid configuration: ").
BAD_LIMITS = [
    ({"FUNC_HEADER_TIMEOUT": "0"}, "FUNC_HEADER_TIMEOUT must be at least 0.001, got '0'"),
    ({"FUNC_READ_TIMEOUT": "soon"}, "FUNC_READ_TIMEOUT must be a number, got 'soon'"),
    ({"FUNC_MAX_CONNECTIONS": "1.5"}, "FUNC_MAX_CONNECTIONS must be a number, got '1.5'"),
    ({"FUNC_MAX_CONNECTIONS": "0"}, "FUNC_MAX_CONNECTIONS must be at least 1, got '0'"),
    ({"FUNC_GRACE_PERIOD": "-1"}, "FUNC_GRACE_PERIOD must be at least 0, got '-1'"),
]


# --- the Go runtime's compile step ------------------------------------------------------------------------------

@dataclass
class Compilation:
    returncode: int
    output: str  # stdout and stderr, interleaved as a container log has them
    volume: Path

    @property
    def server(self) -> Path:
        return self.volume / "server"


def go_build_env(gopath: Path) -> dict[str, str]:
    """The environment of every compilation: this machine's build cache, a module cache of its own."""
    assert GO is not None, NO_GO
    cache = subprocess.run([GO, "env", "GOCACHE"], capture_output=True, text=True, check=True).stdout.strip()
    return {"GOCACHE": cache, "GOPATH": str(gopath),
            "KUBELESS_GO_MODULE": str(GO_RUNTIME / "kubeless"), "KUBELESS_GO_CACHE_SEED": "/nonexistent"}


def compile_function(go_env: dict[str, str], volume: Path, function_name: str, files: dict[str, str],
                     **env: str) -> Compilation:
    """Runs the compile script as the `compile` init container would, on volume standing for /kubeless."""
    volume.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (volume / name).write_text(text)
    result = subprocess.run(
        ["sh", str(GO_RUNTIME / "compile" / "compile-function.sh")], cwd=volume, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, timeout=240,
        env={**os.environ, **go_env, "KUBELESS_INSTALL_VOLUME": str(volume), "KUBELESS_FUNC_NAME": function_name,
             "KUBELESS_GO_BUILD_DIR": str(volume.parent / f"{volume.name}-build"), "HOME": str(volume.parent),
             **env})
    return Compilation(result.returncode, result.stdout, volume)


def compiled(go_env: dict[str, str], volume: Path, function_name: str, files: dict[str, str],
             **env: str) -> Compilation:
    compilation = compile_function(go_env, volume, function_name, files, **env)
    assert compilation.returncode == 0, compilation.output
    assert compilation.server.is_file()
    return compilation


# --- processes ----------------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def spawn(argv: list[str], logs: Path, port: int, env: dict[str, str]) -> RuntimeServer:
    """Start a server whose environment already names `port`; its output goes to files in `logs`."""
    stdout, stderr = logs / f"stdout-{port}.log", logs / f"stderr-{port}.log"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(argv, stdout=out, stderr=err, env=env)
    return RuntimeServer(process, port, stdout, stderr)


def wait_until_healthy(server: RuntimeServer) -> RuntimeServer:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"runtime exited with {server.process.returncode}: {server.stderr.read_text()}")
        try:
            if server.request("GET", "/healthz", timeout=1).status == 200:
                return server
        except OSError:
            time.sleep(0.02)
    pytest.fail("runtime did not become healthy")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.kill()
    process.wait(timeout=5)
