"""What the runtimes' unit tests share: a runtime server started on a free port, HTTP to it, and stopping it.

Each runtime's test module knows how to start its own server (a Python script, a Node script, a compiled Go
binary); everything after that is the same contract, talked to the same way.
"""
from __future__ import annotations

import http.client
import json
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


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
