"""Tests of the Python function runtime, run as a real server subprocess over HTTP."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

import pytest

from runtime_harness import Response, RuntimeServer, free_port, spawn, stop, wait_until_healthy

Runtime = RuntimeServer  # this module's name for a running server

RUNTIME = Path(__file__).resolve().parents[2] / "runtimes" / "python" / "kubeless_runtime.py"

FUNCTION_SOURCE = '''
import time


def describe(data):
    if isinstance(data, bytes):
        return {"type": "bytes", "value": data.hex()}
    return {"type": type(data).__name__, "value": data}

RESULTS = {
    "/text": lambda: "hello",
    "/bytes": lambda: b"\\x00\\x01",
    "/json": lambda: {"a": [1, 2]},
    "/number": lambda: 42,
    "/none": lambda: None,
    "/created": lambda: ("created", 201),
    "/custom": lambda: ({"ok": True}, 202, {"X-Custom": "yes", "content-type": "application/vnd.test+json"}),
    "/no-content": lambda: ("ignored", 204),
    "/bad-header": lambda: ("x", 200, {"X-Bad": "a\\r\\nInjected: 1"}),
    "/bad-status": lambda: ("x", 99),
}

def handle(event, context):
    request = event["extensions"]["request"]
    if request.path in RESULTS:
        return RESULTS[request.path]()
    if request.path == "/raise":
        raise ValueError("boom")
    if request.path == "/sleep":
        time.sleep(float(request.query["s"][0]))
        return "slept"
    return {
        "data": describe(event["data"]),
        "event": {key: event[key] for key in ("event-id", "event-type", "event-time", "event-namespace")},
        "method": request.method,
        "query": request.query,
        "x-test": request.headers.get("x-TEST"),
        "body-length": len(request.body),
        "context": context,
    }
'''


def runtime_env(function_dir: Path, port: int, **overrides: str) -> dict[str, str]:
    env = dict(os.environ, FUNC_HANDLER="handle", MOD_NAME="function", FUNC_HOST="127.0.0.1",
               FUNC_PORT=str(port), KUBELESS_INSTALL_VOLUME=str(function_dir), FUNC_TIMEOUT="5",
               FUNC_RUNTIME="python3.11", FUNC_MEMORY_LIMIT="128Mi", FUNC_MEMFILE_MAX="1024",
               FUNC_TERMINATION_LOG=str(function_dir / "termination-log"))
    env.update(overrides)
    return env


def launch(function_dir: Path, **overrides: str) -> Runtime:
    port = free_port()
    return spawn([sys.executable, str(RUNTIME)], function_dir, port, runtime_env(function_dir, port, **overrides))


@pytest.fixture(scope="module")
def function_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("function")
    (directory / "function.py").write_text(FUNCTION_SOURCE)
    return directory


def start_runtime(function_dir: Path, **overrides: str) -> Runtime:
    return wait_until_healthy(launch(function_dir, **overrides))


@pytest.fixture(scope="module")
def runtime(function_dir: Path) -> Iterator[Runtime]:
    runtime = start_runtime(function_dir)
    yield runtime
    stop(runtime.process)


@pytest.fixture(scope="module")
def timeout_runtime(function_dir: Path) -> Iterator[Runtime]:
    runtime = start_runtime(function_dir, FUNC_TIMEOUT="0.3", FUNC_MAX_STUCK="2")
    yield runtime
    stop(runtime.process)


def test_healthz_answers_ok_with_cors(runtime: Runtime) -> None:
    response = runtime.request("GET", "/healthz")
    assert (response.status, response.body) == (200, b"OK")
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_event_defaults_and_context(runtime: Runtime) -> None:
    result = runtime.request("GET", "/event").json()
    assert result["data"] == {"type": "str", "value": ""}
    assert re.fullmatch(r"[0-9a-f]{32}", result["event"]["event-id"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", result["event"]["event-time"])
    assert result["event"]["event-type"] == ""
    assert result["event"]["event-namespace"] == ""
    assert result["context"] == {"function-name": "handle", "timeout": 5, "runtime": "python3.11",
                                 "memory-limit": "128Mi"}


def test_event_fields_come_from_request_headers(runtime: Runtime) -> None:
    headers = {"event-id": "id-1", "event-type": "com.example.thing", "event-time": "2020-01-02T03:04:05Z",
               "event-namespace": "things.example.com", "X-Test": "case-insensitive"}
    result = runtime.request("PUT", "/event?a=1&a=2&b=", headers=headers).json()
    assert result["event"] == {"event-id": "id-1", "event-type": "com.example.thing",
                               "event-time": "2020-01-02T03:04:05Z", "event-namespace": "things.example.com"}
    assert result["method"] == "PUT"
    assert result["query"] == {"a": ["1", "2"], "b": [""]}
    assert result["x-test"] == "case-insensitive"


def test_event_ids_are_unique(runtime: Runtime) -> None:
    ids = {runtime.request("GET", "/event").json()["event"]["event-id"] for _ in range(3)}
    assert len(ids) == 3


@pytest.mark.parametrize("content_type, body, expected", [
    ("application/json", b'{"a": 1}', {"type": "dict", "value": {"a": 1}}),
    ("application/cloudevents+json; charset=utf-8", b"[1, 2]", {"type": "list", "value": [1, 2]}),
    ("Application/JSON; charset=latin-1", '"caf\u00e9"'.encode("latin-1"), {"type": "str", "value": "caf\u00e9"}),
    ("application/json", b"", {"type": "NoneType", "value": None}),
    ("text/plain; charset=latin-1", b"caf\xe9", {"type": "str", "value": "caf\u00e9"}),
    ("text/csv", b"a,b", {"type": "str", "value": "a,b"}),
    (None, b"plain", {"type": "str", "value": "plain"}),
    ("application/x-www-form-urlencoded", b"a=1&b=2", {"type": "str", "value": "a=1&b=2"}),
    ("text/plain", b"\xff\xfe", {"type": "bytes", "value": "fffe"}),
    ("application/octet-stream", b"\x00\x01", {"type": "bytes", "value": "0001"}),
    ("image/png", b"\x89PNG", {"type": "bytes", "value": "89504e47"}),
    ("application/octet-stream", b"", {"type": "str", "value": ""}),
])
def test_request_data_decoding(runtime: Runtime, content_type: str | None, body: bytes, expected: dict) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    result = runtime.request("POST", "/event", body=body, headers=headers).json()
    assert result["data"] == expected
    assert result["body-length"] == len(body)


def test_event_type_defaults_to_media_type(runtime: Runtime) -> None:
    result = runtime.request("POST", "/event", body=b"{}", headers={"Content-Type": "application/json"}).json()
    assert result["event"]["event-type"] == "application/json"


def test_invalid_json_is_a_bad_request(runtime: Runtime) -> None:
    response = runtime.request("POST", "/event", body=b"{nope", headers={"Content-Type": "application/json"})
    assert response.status == 400
    assert response.body.startswith(b"invalid JSON body")


def test_chunked_request_body(runtime: Runtime) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", runtime.port, timeout=10)
    try:
        connection.request("POST", "/event", body=iter([b"hello ", b"world"]), encode_chunked=True,
                           headers={"Content-Type": "text/plain", "Transfer-Encoding": "chunked"})
        result = json.loads(connection.getresponse().read())
    finally:
        connection.close()
    assert result["data"] == {"type": "str", "value": "hello world"}


def test_body_over_memfile_max_is_rejected(runtime: Runtime) -> None:
    response = runtime.request("POST", "/event", body=b"x" * 2000, headers={"Content-Type": "text/plain"})
    assert response.status == 413
    assert runtime.request("POST", "/event", body=b"x" * 1024).status == 200


@pytest.mark.parametrize("path, status, content_type, body", [
    ("/text", 200, "text/plain; charset=utf-8", b"hello"),
    ("/bytes", 200, "application/octet-stream", b"\x00\x01"),
    ("/json", 200, "application/json", b'{"a": [1, 2]}'),
    ("/number", 200, "application/json", b"42"),
    ("/none", 200, None, b""),
    ("/created", 201, "text/plain; charset=utf-8", b"created"),
    ("/custom", 202, "application/vnd.test+json", b'{"ok": true}'),
    ("/no-content", 204, "text/plain; charset=utf-8", b""),
])
def test_return_values_become_responses(runtime: Runtime, path: str, status: int,
                                        content_type: str | None, body: bytes) -> None:
    response = runtime.request("GET", path)
    assert (response.status, response.headers["Content-Type"], response.body) == (status, content_type, body)
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["Content-Length"] == (None if status == 204 else str(len(body)))


def test_custom_headers_are_sent(runtime: Runtime) -> None:
    response = runtime.request("GET", "/custom")
    assert response.headers["X-Custom"] == "yes"
    assert response.headers.get_all("Content-Type") == ["application/vnd.test+json"]


@pytest.mark.parametrize("path", ["/bad-header", "/bad-status"])
def test_invalid_results_are_server_errors(runtime: Runtime, path: str) -> None:
    response = runtime.request("GET", path)
    assert response.status == 500
    assert response.body.startswith(b"ValueError: ")
    assert "Injected" not in response.headers


def test_exception_is_a_500_and_counted(runtime: Runtime) -> None:
    failures_before = runtime.metric('function_failures_total{method="PATCH"}')
    response = runtime.request("PATCH", "/raise")
    assert (response.status, response.body) == (500, b"ValueError: boom")
    assert runtime.metric('function_failures_total{method="PATCH"}') == failures_before + 1
    assert "Traceback" in runtime.stderr.read_text()
    assert runtime.request("GET", "/text").status == 200


def test_metrics_are_prometheus_text(runtime: Runtime) -> None:
    for _ in range(3):
        runtime.request("DELETE", "/text")
    response = runtime.request("GET", "/metrics")
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = response.body.decode()
    for name, kind in [("function_calls_total", "counter"), ("function_failures_total", "counter"),
                       ("function_duration_seconds", "histogram"), ("function_stuck_calls", "gauge")]:
        assert f"# HELP {name} " in text
        assert f"# TYPE {name} {kind}" in text
    assert runtime.metric('function_calls_total{method="DELETE"}') >= 3
    buckets = [float(value) for value in re.findall(
        r'^function_duration_seconds_bucket\{method="DELETE",le="[^"]+"\} (\S+)$', text, re.MULTILINE)]
    assert buckets == sorted(buckets) and len(buckets) == 12
    assert buckets[-1] == runtime.metric('function_duration_seconds_count{method="DELETE"}')
    assert runtime.metric('function_duration_seconds_sum{method="DELETE"}') > 0
    assert runtime.metric("function_stuck_calls") == 0


def test_malformed_request_gets_400_and_close(runtime: Runtime) -> None:
    with socket.create_connection(("127.0.0.1", runtime.port), timeout=5) as raw:
        raw.sendall(b"NONSENSE\r\n\r\n")
        reply = b""
        while chunk := raw.recv(4096):
            reply += chunk
    head = reply.split(b"\r\n\r\n")[0].decode()
    assert head.startswith("HTTP/1.1 400 ")
    assert "Connection: close" in head and "Access-Control-Allow-Origin: *" in head


def test_cors_preflight(runtime: Runtime) -> None:
    response = runtime.request("OPTIONS", "/anything", headers={
        "Origin": "https://example.com", "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "content-type, x-token"})
    assert response.status == 204
    assert response.headers["Access-Control-Allow-Methods"] == "PUT"
    assert response.headers["Access-Control-Allow-Headers"] == "content-type, x-token"
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_keep_alive_serves_many_requests_on_one_connection(runtime: Runtime) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", runtime.port, timeout=10)
    try:
        connection.connect()
        first_socket = connection.sock
        for body in (b"one", b"two", b"three"):
            connection.request("POST", "/event", body=body)
            response = connection.getresponse()
            assert json.loads(response.read())["data"]["value"] == body.decode()
            assert response.getheader("Connection") is None
        assert connection.sock is first_socket
    finally:
        connection.close()


def test_calls_run_concurrently(runtime: Runtime) -> None:
    started = time.monotonic()
    with ThreadPoolExecutor(2) as pool:
        responses = list(pool.map(lambda _: runtime.request("GET", "/sleep?s=1"), range(2)))
    assert [response.body for response in responses] == [b"slept", b"slept"]
    assert time.monotonic() - started < 1.6


def test_access_log_line_per_request(runtime: Runtime) -> None:
    path = f"/log-{uuid.uuid4().hex}"
    runtime.request("GET", path)
    deadline = time.monotonic() + 2
    while f"GET {path} 200 " not in runtime.stdout.read_text():
        assert time.monotonic() < deadline, "no access log line"
        time.sleep(0.02)


def test_timeout_answers_408_and_counts_stuck_calls(timeout_runtime: Runtime) -> None:
    failures_before = timeout_runtime.metric('function_failures_total{method="GET"}')
    started = time.monotonic()
    with ThreadPoolExecutor(2) as pool:
        responses = list(pool.map(lambda _: timeout_runtime.request("GET", "/sleep?s=1.2"), range(2)))
    assert time.monotonic() - started < 1.0
    for response in responses:
        assert (response.status, response.body) == (408, b"Function timed out after 0.3 s")
        assert response.headers["Connection"] == "close"
    assert timeout_runtime.metric('function_failures_total{method="GET"}') == failures_before + 2
    assert timeout_runtime.metric("function_stuck_calls") == 2
    assert timeout_runtime.request("GET", "/healthz").status == 503
    assert timeout_runtime.request("GET", "/text").body == b"hello"

    deadline = time.monotonic() + 5
    while timeout_runtime.metric("function_stuck_calls") != 0:
        assert time.monotonic() < deadline, "stuck calls never finished"
        time.sleep(0.05)
    assert timeout_runtime.request("GET", "/healthz").status == 200
    assert "discarded the late result" in timeout_runtime.stderr.read_text()


def test_sigterm_lets_running_call_finish(function_dir: Path) -> None:
    runtime = start_runtime(function_dir)
    try:
        result: list[Response] = []
        caller = threading.Thread(target=lambda: result.append(runtime.request("GET", "/sleep?s=0.8")))
        caller.start()
        time.sleep(0.3)
        runtime.process.send_signal(signal.SIGTERM)
        caller.join(timeout=5)
        assert runtime.process.wait(timeout=5) == 0
        assert result and (result[0].status, result[0].body) == (200, b"slept")
    finally:
        stop(runtime.process)


def run_failing_start(function_dir: Path, **overrides: str) -> tuple[int, str, str]:
    termination_log = function_dir / "termination-log"
    termination_log.write_text("")
    server = launch(function_dir, **overrides)
    process, stderr = server.process, server.stderr
    try:
        exit_code = process.wait(timeout=10)
    finally:
        stop(process)
    return exit_code, stderr.read_text(), termination_log.read_text()


@pytest.mark.parametrize("module_source, expected", [
    ("import no_such_package_xyz\ndef handle(event, context): pass\n",
     "cannot load handler broken.handle: ModuleNotFoundError: No module named 'no_such_package_xyz'"),
    ("def other(event, context): pass\n",
     "cannot load handler broken.handle: AttributeError: module 'broken' has no attribute 'handle'"),
    ("handle = 3\n", "cannot load handler broken.handle: TypeError: broken.handle is not callable"),
    ("def handle(event, context:\n", "cannot load handler broken.handle: SyntaxError"),
])
def test_unloadable_handler_exits_1_with_message(tmp_path: Path, module_source: str, expected: str) -> None:
    (tmp_path / "broken.py").write_text(module_source)
    exit_code, stderr, termination_log = run_failing_start(tmp_path, MOD_NAME="broken")
    assert exit_code == 1
    assert expected in stderr
    assert termination_log.startswith(expected)
    assert len(termination_log.strip().splitlines()) == 1


@pytest.mark.parametrize("overrides, expected", [
    ({"MOD_NAME": "kubeless_runtime"}, "cannot load handler kubeless_runtime.handle: ValueError: the module name"),
    ({"FUNC_TIMEOUT": "soon"}, "invalid configuration: FUNC_TIMEOUT must be a number, got 'soon'"),
    ({"FUNC_MAX_STUCK": "0"}, "invalid configuration: FUNC_MAX_STUCK must be at least 1, got '0'"),
])
def test_bad_configuration_exits_1_with_message(function_dir: Path, overrides: dict[str, str],
                                                expected: str) -> None:
    exit_code, stderr, termination_log = run_failing_start(function_dir, **overrides)
    assert exit_code == 1
    assert expected in stderr
    assert termination_log.startswith(expected)


def test_port_in_use_exits_1(function_dir: Path) -> None:
    with socket.socket() as occupant:
        occupant.bind(("127.0.0.1", 0))
        occupant.listen()
        port = occupant.getsockname()[1]
        exit_code, stderr, _ = run_failing_start(function_dir, FUNC_PORT=str(port))
    assert exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}: OSError" in stderr
