"""One runtime contract, checked against every runtime of the catalogue the same way."""
from __future__ import annotations

import concurrent.futures
import json
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import Cluster
from support import wait_until

FUNCTIONS = Path(__file__).parent / "functions"


@dataclass(frozen=True)
class Runtime:
    id: str
    source: str
    handlers: dict[str, str]  # role -> handler name in the source

    def handler(self, role: str) -> str:
        return f"contract.{self.handlers[role]}"


RUNTIMES = [
    Runtime("python3.11", "contract.py", {"echo": "echo", "info": "info", "fail": "fail", "slow": "slow"}),
    Runtime("go1.26", "contract.go", {"echo": "Echo", "info": "Info", "fail": "Fail", "slow": "Slow"}),
    Runtime("nodejs18", "contract.js", {"echo": "echo", "info": "info", "fail": "fail", "slow": "slow"}),
]


@pytest.fixture(scope="module", params=RUNTIMES, ids=lambda r: r.id)
def deployed(request: pytest.FixtureRequest, plugin: Cluster):
    """The contract's four functions of one runtime, deployed once for all of its tests."""
    runtime: Runtime = request.param
    namespace = f"contract-{runtime.id.replace('.', '-')}-{int(time.time()) % 100000}"
    plugin.kubectl("create", "namespace", namespace)
    wait_until("the default service account", lambda: plugin.kubectl(
        "get", "serviceaccount", "default", "-n", namespace, check=False).returncode == 0, timeout=30)
    for role in runtime.handlers:
        plugin.run("kubectl", "kubeless", "function", "deploy", role, "-n", namespace, "--runtime", runtime.id,
                   "--from-file", str(FUNCTIONS / runtime.source), "--handler", runtime.handler(role),
                   *(["--timeout", "2"] if role == "slow" else []))
    for role in runtime.handlers:
        plugin.kubectl("wait", "--for=condition=Ready", f"function/{role}", "-n", namespace, "--timeout=180s",
                       timeout=200)
    yield runtime, namespace
    plugin.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def call(cluster: Cluster, namespace: str, name: str, *data: str, check: bool = True):
    return cluster.run("kubectl", "kubeless", "function", "call", name, "-n", namespace,
                       *(("--data", data[0]) if data else ()), check=check, timeout=60)


def test_data_text_and_json(plugin: Cluster, deployed):
    _, namespace = deployed
    assert call(plugin, namespace, "echo", "hello, world!").stdout == "hello, world!\n"
    assert json.loads(call(plugin, namespace, "echo", '{"answer": 42}').stdout) == {"answer": 42}


def test_event_and_context_fields(plugin: Cluster, deployed):
    runtime, namespace = deployed
    fields = json.loads(call(plugin, namespace, "info", "x").stdout)
    assert fields["event-namespace"] == "cli.kubeless.io"
    assert fields["event-id"]
    assert fields["function-name"] == runtime.handlers["info"]
    assert fields["runtime"] == runtime.id
    assert float(fields["timeout"]) == 180


def test_healthz_and_metrics(plugin: Cluster, deployed):
    _, namespace = deployed
    call(plugin, namespace, "echo", "count me")
    proxy = f"/api/v1/namespaces/{namespace}/services/echo:http-function-port/proxy"
    assert plugin.kubectl("get", "--raw", f"{proxy}/healthz").stdout.strip() == "OK"
    metrics = plugin.kubectl("get", "--raw", f"{proxy}/metrics").stdout
    for name in ("function_calls_total{", "function_failures_total", "function_duration_seconds_bucket{"):
        assert name in metrics
    assert 'method="POST"' in metrics


def test_an_error_is_a_500_and_the_server_keeps_serving(plugin: Cluster, deployed):
    _, namespace = deployed
    for _ in range(2):
        failed = call(plugin, namespace, "fail", check=False)
        assert failed.returncode == 1 and "500" in failed.stderr and "contract failure" in failed.stderr


def test_a_call_past_the_timeout_is_a_408(plugin: Cluster, deployed):
    _, namespace = deployed
    timed_out = call(plugin, namespace, "slow", "30", check=False)
    assert timed_out.returncode == 1 and "408" in timed_out.stderr
    assert call(plugin, namespace, "slow", "0").stdout == "done\n"  # still serving


def test_calls_run_concurrently(plugin: Cluster, deployed):
    _, namespace = deployed
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: call(plugin, namespace, "slow", "1.5").stdout, range(4)))
    assert answers == ["done\n"] * 4
    assert time.monotonic() - started < 5  # four 1.5 s calls, one after the other, would take 6 s and more
