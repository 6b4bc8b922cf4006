"""Tests of the Node.js function runtime, run as a real server subprocess over HTTP.

They use `node` from PATH, or the binary named by KUBELESS_TEST_NODE (e.g. Debian's node 18, the image's),
and skip when there is none. The npm test also needs `npm` on PATH; it installs from a registry served here.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tarfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest

from runtime_harness import Response, RuntimeServer, free_port, spawn, stop, wait_until_healthy

Runtime = RuntimeServer  # this module's name for a running server


RUNTIME_DIR = Path(__file__).resolve().parents[2] / "runtimes" / "nodejs"
RUNTIME = RUNTIME_DIR / "kubeless.js"
NPM_INSTALL = RUNTIME_DIR / "deps" / "npm-install.sh"
NODE = os.environ.get("KUBELESS_TEST_NODE") or shutil.which("node")
NODE_FLAGS = ["--no-force-async-hooks-checks"]  # as the image's CMD

pytestmark = pytest.mark.skipif(not NODE, reason="node is not installed (set KUBELESS_TEST_NODE to use another)")

FUNCTION_SOURCE = r"""
const sleep = (seconds) => new Promise((resolve) => setTimeout(resolve, seconds * 1000));

function describe(data) {
  if (Buffer.isBuffer(data)) return { type: 'Buffer', value: data.toString('hex') };
  if (data === null) return { type: 'null', value: null };
  return { type: Array.isArray(data) ? 'array' : typeof data, value: data };
}

const RESULTS = {
  '/text': () => 'hello',
  '/bytes': () => Buffer.from([0, 1]),
  '/json': () => ({ a: [1, 2] }),
  '/number': () => 42,
  '/undefined': () => undefined,
  '/null': () => null,
  '/promise': () => sleep(0.01).then(() => ({ later: true })),
  '/created': (event) => { event.extensions.response.statusCode = 201; return 'created'; },
  '/custom': (event) => {
    const response = event.extensions.response;
    response.statusCode = 202;
    response.setHeader('X-Custom', 'yes');
    response.setHeader('Content-Type', 'application/vnd.test+json');
    return { ok: true };
  },
  '/no-content': (event) => { event.extensions.response.statusCode = 204; return 'ignored'; },
  '/self': (event) => {
    event.extensions.response.writeHead(203, { 'Content-Type': 'text/x-self' });
    event.extensions.response.end('answered');
    return 'ignored';
  },
  '/self-later': (event) => sleep(0.05).then(() => { event.extensions.response.status(206).send('later'); }),
  '/express': (event) => { event.extensions.response.status(201).set('X-Express', '1').json({ express: true }); },
};

module.exports = {
  handle(event, context) {
    const request = event.extensions.request;
    if (RESULTS[request.path]) return RESULTS[request.path](event);
    switch (request.path) {
      case '/this': return this === module.exports;
      case '/throw': throw new TypeError('boom\nsecond line');
      case '/reject': return Promise.reject(new RangeError('nope'));
      case '/bad-status': event.extensions.response.statusCode = 99; return 'x';
      case '/bigint': return { n: 1n };
      case '/sleep': return sleep(Number(request.query.s)).then(() => 'slept');
      case '/loop': for (;;) {}
      case '/async-loop': return sleep(0.01).then(() => { for (;;) {} });
      case '/timer-loop': return new Promise(() => setTimeout(() => { for (;;) {} }, 10));
      case '/hang': return new Promise(() => {});
    }
    return {
      data: describe(event.data),
      event: Object.fromEntries(['event-id', 'event-type', 'event-time', 'event-namespace'].map((k) => [k, event[k]])),
      method: request.method,
      query: request.query,
      'x-test': request.get('X-TEST'),
      'body-length': request.body.length,
      context,
    };
  },
};
"""


def runtime_env(function_dir: Path, port: int, **overrides: str | None) -> dict[str, str]:
    """The runtime's environment; an override of None removes the variable."""
    env = dict(os.environ, FUNC_HANDLER="handle", MOD_NAME="function", FUNC_HOST="127.0.0.1",
               FUNC_PORT=str(port), KUBELESS_INSTALL_VOLUME=str(function_dir), FUNC_TIMEOUT="5",
               FUNC_RUNTIME="nodejs18", FUNC_MEMORY_LIMIT="128Mi", REQ_MB_LIMIT="0.001",
               FUNC_TERMINATION_LOG=str(function_dir / "termination-log"))
    env.update(overrides)
    return {key: value for key, value in env.items() if value is not None}


def launch(function_dir: Path, **overrides: str | None) -> Runtime:
    port = free_port()
    return spawn([NODE, *NODE_FLAGS, str(RUNTIME)], function_dir, port, runtime_env(function_dir, port, **overrides))


def start_runtime(function_dir: Path, **overrides: str | None) -> Runtime:
    return wait_until_healthy(launch(function_dir, **overrides))


@pytest.fixture(scope="module")
def function_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("function")
    (directory / "function.js").write_text(FUNCTION_SOURCE)
    return directory


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
    assert result["data"] == {"type": "string", "value": ""}
    assert re.fullmatch(r"[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}", result["event"]["event-id"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", result["event"]["event-time"])
    assert result["event"]["event-type"] == ""
    assert result["event"]["event-namespace"] == ""
    assert result["context"] == {"function-name": "handle", "timeout": 5, "runtime": "nodejs18",
                                 "memory-limit": "128Mi"}


def test_event_fields_come_from_request_headers(runtime: Runtime) -> None:
    headers = {"event-id": "id-1", "event-type": "com.example.thing", "event-time": "2020-01-02T03:04:05Z",
               "event-namespace": "things.example.com", "X-Test": "case-insensitive"}
    result = runtime.request("PUT", "/event?a=1&a=2&b=", headers=headers).json()
    assert result["event"] == {"event-id": "id-1", "event-type": "com.example.thing",
                               "event-time": "2020-01-02T03:04:05Z", "event-namespace": "things.example.com"}
    assert result["method"] == "PUT"
    assert result["query"] == {"a": ["1", "2"], "b": ""}
    assert result["x-test"] == "case-insensitive"


def test_event_ids_are_unique(runtime: Runtime) -> None:
    ids = {runtime.request("GET", "/event").json()["event"]["event-id"] for _ in range(3)}
    assert len(ids) == 3


def test_function_is_called_as_a_method_of_its_module(runtime: Runtime) -> None:
    assert runtime.request("GET", "/this").body == b"true"


@pytest.mark.parametrize("content_type, body, expected", [
    ("application/json", b'{"a": 1}', {"type": "object", "value": {"a": 1}}),
    ("application/cloudevents+json; charset=utf-8", b"[1, 2]", {"type": "array", "value": [1, 2]}),
    ("Application/JSON; charset=latin-1", '"caf\u00e9"'.encode("latin-1"), {"type": "string", "value": "caf\u00e9"}),
    ("application/json", b"", {"type": "null", "value": None}),
    ("text/plain; charset=latin-1", b"caf\xe9", {"type": "string", "value": "caf\u00e9"}),
    ("text/csv", b"a,b", {"type": "string", "value": "a,b"}),
    (None, b"plain", {"type": "string", "value": "plain"}),
    ("application/x-www-form-urlencoded", b"a=1&b=2", {"type": "string", "value": "a=1&b=2"}),
    ("text/plain", b"\xff\xfe", {"type": "Buffer", "value": "fffe"}),
    ("application/octet-stream", b"\x00\x01", {"type": "Buffer", "value": "0001"}),
    ("image/png", b"\x89PNG", {"type": "Buffer", "value": "89504e47"}),
    ("application/octet-stream", b"", {"type": "string", "value": ""}),
])
def test_request_data_decoding(runtime: Runtime, content_type: str | None, body: bytes, expected: dict) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    result = runtime.request("POST", "/event", body=body, headers=headers).json()
    assert result["data"] == expected
    assert result["body-length"] == len(body)


def test_event_type_defaults_to_media_type(runtime: Runtime) -> None:
    result = runtime.request("POST", "/event", body=b"{}",
                             headers={"Content-Type": "application/json; charset=utf-8"}).json()
    assert result["event"]["event-type"] == "application/json"


def test_invalid_json_is_a_bad_request(runtime: Runtime) -> None:
    response = runtime.request("POST", "/event", body=b"{nope", headers={"Content-Type": "application/json"})
    assert response.status == 400
    assert response.body.startswith(b"invalid JSON body: ")


def test_chunked_request_body(runtime: Runtime) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", runtime.port, timeout=10)
    try:
        connection.request("POST", "/event", body=iter([b"hello ", b"world"]), encode_chunked=True,
                           headers={"Content-Type": "text/plain", "Transfer-Encoding": "chunked"})
        result = json.loads(connection.getresponse().read())
    finally:
        connection.close()
    assert result["data"] == {"type": "string", "value": "hello world"}


def test_body_over_the_limit_is_rejected(runtime: Runtime) -> None:
    # REQ_MB_LIMIT=0.001: 1048 bytes
    response = runtime.request("POST", "/event", body=b"x" * 2000, headers={"Content-Type": "text/plain"})
    assert (response.status, response.body) == (413, b"request body larger than 1048 bytes")
    connection = http.client.HTTPConnection("127.0.0.1", runtime.port, timeout=10)
    try:
        connection.request("POST", "/event", body=iter([b"x" * 1000, b"x" * 1000]), encode_chunked=True,
                           headers={"Transfer-Encoding": "chunked"})
        assert connection.getresponse().status == 413
    finally:
        connection.close()
    assert runtime.request("POST", "/event", body=b"x" * 1048).status == 200


def test_default_body_limit_is_one_megabyte(function_dir: Path) -> None:
    runtime = start_runtime(function_dir, REQ_MB_LIMIT=None)
    try:
        assert runtime.request("POST", "/event", body=b"x" * (1 << 20)).status == 200
        assert runtime.request("POST", "/event", body=b"x" * ((1 << 20) + 1)).status == 413
    finally:
        stop(runtime.process)


@pytest.mark.parametrize("path, status, content_type, body", [
    ("/text", 200, "text/plain; charset=utf-8", b"hello"),
    ("/bytes", 200, "application/octet-stream", b"\x00\x01"),
    ("/json", 200, "application/json", b'{"a":[1,2]}'),
    ("/number", 200, "application/json", b"42"),
    ("/undefined", 200, None, b""),
    ("/null", 200, None, b""),
    ("/promise", 200, "application/json", b'{"later":true}'),
    ("/created", 201, "text/plain; charset=utf-8", b"created"),
    ("/custom", 202, "application/vnd.test+json", b'{"ok":true}'),
    ("/no-content", 204, "text/plain; charset=utf-8", b""),
    ("/self", 203, "text/x-self", b"answered"),
    ("/self-later", 206, "text/plain; charset=utf-8", b"later"),
    ("/express", 201, "application/json", b'{"express":true}'),
])
def test_results_become_responses(runtime: Runtime, path: str, status: int,
                                  content_type: str | None, body: bytes) -> None:
    response = runtime.request("GET", path)
    assert (response.status, response.headers["Content-Type"], response.body) == (status, content_type, body)
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    if path != "/self":  # a function that calls writeHead itself frames its own response (here chunked)
        assert response.headers["Content-Length"] == (None if status == 204 else str(len(body)))


def test_headers_set_by_the_function_are_sent(runtime: Runtime) -> None:
    response = runtime.request("GET", "/custom")
    assert response.headers["X-Custom"] == "yes"
    assert response.headers.get_all("Content-Type") == ["application/vnd.test+json"]
    assert runtime.request("GET", "/express").headers["X-Express"] == "1"


@pytest.mark.parametrize("path, message", [
    ("/bad-status", b"RangeError: invalid status 99: must be an integer from 200 to 599"),
    ("/bigint", b"TypeError: Do not know how to serialize a BigInt"),
])
def test_invalid_results_are_server_errors(runtime: Runtime, path: str, message: bytes) -> None:
    response = runtime.request("GET", path)
    assert (response.status, response.body) == (500, message)


@pytest.mark.parametrize("path, message", [("/throw", b"TypeError: boom second line"),
                                           ("/reject", b"RangeError: nope")])
def test_exception_is_a_500_and_counted(runtime: Runtime, path: str, message: bytes) -> None:
    failures_before = runtime.metric('function_failures_total{method="PATCH"}')
    response = runtime.request("PATCH", path)
    assert (response.status, response.body) == (500, message)
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert runtime.metric('function_failures_total{method="PATCH"}') == failures_before + 1
    assert f"at Object.handle ({runtime.stderr.parent}" in runtime.stderr.read_text()
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
    bounds = re.findall(r'^function_duration_seconds_bucket\{method="DELETE",le="([^"]+)"\} \S+$', text, re.MULTILINE)
    assert bounds == ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "5.0", "10.0", "+Inf"]
    buckets = [float(value) for value in re.findall(
        r'^function_duration_seconds_bucket\{method="DELETE",le="[^"]+"\} (\S+)$', text, re.MULTILINE)]
    assert buckets == sorted(buckets)
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
    default = runtime.request("OPTIONS", "/")
    assert default.headers["Access-Control-Allow-Methods"] == "GET, POST, PUT, PATCH, DELETE, OPTIONS"


def test_keep_alive_serves_many_requests_on_one_connection(runtime: Runtime) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", runtime.port, timeout=10)
    try:
        connection.connect()
        first_socket = connection.sock
        for body in (b"one", b"two", b"three"):
            connection.request("POST", "/event", body=body)
            response = connection.getresponse()
            assert json.loads(response.read())["data"]["value"] == body.decode()
            assert response.getheader("Content-Length") is not None
        assert connection.sock is first_socket
    finally:
        connection.close()


def test_calls_run_concurrently(runtime: Runtime) -> None:
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda _: runtime.request("GET", "/sleep?s=1"), range(8)))
    assert [response.body for response in responses] == [b"slept"] * 8
    assert time.monotonic() - started < 1.6


def test_concurrent_calls_each_get_their_own_answer(runtime: Runtime) -> None:
    # calls that arrive together share one vm frame (one turn of the event loop): none may get another's answer
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda n: runtime.request("POST", f"/event?n={n}", body=str(n).encode()).json(),
                                range(64)))
    assert [(result["query"]["n"], result["data"]["value"]) for result in results] == [
        (str(n), str(n)) for n in range(64)]


def test_access_log_line_per_request(runtime: Runtime) -> None:
    path = f"/log-{uuid.uuid4().hex}"
    runtime.request("GET", path)
    deadline = time.monotonic() + 2
    while not re.search(rf"^\d{{4}}-\S+Z GET {path} 200 \d+\.\d{{3}}ms$", runtime.stdout.read_text(), re.MULTILINE):
        assert time.monotonic() < deadline, "no access log line"
        time.sleep(0.02)


@pytest.mark.parametrize("path, seconds", [
    ("/loop", (0.3, 0.8)),  # the synchronous part: interrupted at the deadline
    ("/async-loop", (1.0, 1.6)),  # after an await, or in a timer: terminated after max(timeout, 1 s)
    ("/timer-loop", (1.0, 1.6)),
])
def test_cpu_loop_is_stopped_with_408_and_server_keeps_serving(timeout_runtime: Runtime, path: str,
                                                               seconds: tuple[float, float]) -> None:
    failures_before = timeout_runtime.metric('function_failures_total{method="GET"}')
    with ThreadPoolExecutor(2) as pool:
        started = time.monotonic()
        looping = pool.submit(timeout_runtime.request, "GET", path)
        time.sleep(0.1)  # a request that waits while the loop holds the event loop
        waiting = timeout_runtime.request("GET", "/sleep?s=0.05")
        response = looping.result()
        elapsed = time.monotonic() - started
    assert (response.status, response.body) == (408, b"Function timed out after 0.3 s")
    assert response.headers["Connection"] == "close"
    assert seconds[0] <= elapsed < seconds[1]
    assert (waiting.status, waiting.body) == (200, b"slept")
    assert timeout_runtime.metric('function_failures_total{method="GET"}') >= failures_before + 1
    assert timeout_runtime.request("GET", "/text").body == b"hello"
    assert timeout_runtime.process.poll() is None


def test_loop_among_concurrent_calls_stops_only_its_own(timeout_runtime: Runtime) -> None:
    with ThreadPoolExecutor(8) as pool:
        paths = ["/text"] * 3 + ["/loop"] + ["/text"] * 4
        responses = list(pool.map(lambda path: timeout_runtime.request("GET", path), paths))
    assert [response.status for response in responses] == [200] * 3 + [408] + [200] * 4
    assert {response.body for response in responses} == {b"hello", b"Function timed out after 0.3 s"}


def test_sync_loop_costs_no_stuck_call(timeout_runtime: Runtime) -> None:
    stuck_before = timeout_runtime.metric("function_stuck_calls")
    assert timeout_runtime.request("GET", "/loop").status == 408
    assert timeout_runtime.metric("function_stuck_calls") == stuck_before


def test_async_timeout_answers_408_and_counts_stuck_calls(function_dir: Path) -> None:
    runtime = start_runtime(function_dir, FUNC_TIMEOUT="0.3", FUNC_MAX_STUCK="2")
    try:
        failures_before = runtime.metric('function_failures_total{method="GET"}')
        started = time.monotonic()
        with ThreadPoolExecutor(2) as pool:
            responses = list(pool.map(lambda _: runtime.request("GET", "/sleep?s=1.2"), range(2)))
        assert time.monotonic() - started < 1.0
        for response in responses:
            assert (response.status, response.body) == (408, b"Function timed out after 0.3 s")
            assert response.headers["Connection"] == "close"
        assert runtime.metric('function_failures_total{method="GET"}') == failures_before + 2
        assert runtime.metric("function_stuck_calls") == 2
        assert runtime.request("GET", "/healthz").status == 503
        assert runtime.request("GET", "/text").body == b"hello"

        deadline = time.monotonic() + 5
        while runtime.metric("function_stuck_calls") != 0:
            assert time.monotonic() < deadline, "stuck calls never finished"
            time.sleep(0.05)
        assert runtime.request("GET", "/healthz").status == 200
        assert "discarded the late result of GET /sleep?s=1.2" in runtime.stderr.read_text()
        assert runtime.request("GET", "/hang").status == 408
        assert runtime.metric("function_stuck_calls") == 1  # a promise that never settles stays stuck
    finally:
        stop(runtime.process)


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
        assert result[0].headers["Connection"] == "close"
        assert "GET /sleep?s=0.8 200 " in runtime.stdout.read_text()
    finally:
        stop(runtime.process)


def test_sigint_stops_too(function_dir: Path) -> None:
    runtime = start_runtime(function_dir)
    try:
        runtime.process.send_signal(signal.SIGINT)
        assert runtime.process.wait(timeout=5) == 0
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
    ("require('no-such-package-xyz');\n",
     "cannot load handler broken.handle: Error: Cannot find module 'no-such-package-xyz'"),
    ("module.exports = { other() {} };\n",
     "cannot load handler broken.handle: TypeError: {dir}/broken.js exports neither a function nor an object "
     "with a function handle"),
    ("module.exports = { handle: 3 };\n", "cannot load handler broken.handle: TypeError: "),
    ("module.exports = { handle(event, context {} };\n",
     "cannot load handler broken.handle: SyntaxError: Unexpected token '{' ({dir}/broken.js:1)"),
    ("throw new Error('no config');\n", "cannot load handler broken.handle: Error: no config"),
])
def test_unloadable_handler_exits_1_with_message(tmp_path: Path, module_source: str, expected: str) -> None:
    (tmp_path / "broken.js").write_text(module_source)
    exit_code, stderr, termination_log = run_failing_start(tmp_path, MOD_NAME="broken")
    expected = expected.replace("{dir}", str(tmp_path))
    assert exit_code == 1
    assert expected in stderr
    assert termination_log.startswith(expected)
    assert len(termination_log.strip().splitlines()) == 1


def test_missing_module_exits_1(tmp_path: Path) -> None:
    exit_code, stderr, _ = run_failing_start(tmp_path, MOD_NAME="absent")
    assert exit_code == 1
    assert f"cannot load handler absent.handle: Error: Cannot find module '{tmp_path}/absent.js'" in stderr


def test_function_exported_directly_or_as_an_es_module(tmp_path: Path) -> None:
    (tmp_path / "direct.js").write_text("module.exports = (event) => `direct ${event.data}`;\n")
    (tmp_path / "esm").mkdir()
    (tmp_path / "esm" / "package.json").write_text('{"type": "module"}')
    (tmp_path / "esm" / "module.js").write_text("export function handle(event) { return `esm ${event.data}`; }\n")
    for directory, module, expected in ((tmp_path, "direct", b"direct x"), (tmp_path / "esm", "module", b"esm x")):
        runtime = start_runtime(directory, MOD_NAME=module)
        try:
            assert runtime.request("POST", "/", body=b"x").body == expected
        finally:
            stop(runtime.process)


@pytest.mark.parametrize("overrides, expected", [
    ({"FUNC_TIMEOUT": "soon"}, "invalid configuration: FUNC_TIMEOUT must be a number, got 'soon'"),
    ({"FUNC_TIMEOUT": "0"}, "invalid configuration: FUNC_TIMEOUT must be at least 0.001, got '0'"),
    ({"FUNC_MAX_STUCK": "0"}, "invalid configuration: FUNC_MAX_STUCK must be at least 1, got '0'"),
    ({"FUNC_PORT": "80.5"}, "invalid configuration: FUNC_PORT must be a number, got '80.5'"),
    ({"REQ_MB_LIMIT": "lots"}, "invalid configuration: REQ_MB_LIMIT must be a number, got 'lots'"),
    ({"MOD_NAME": ""}, "cannot load handler .handle: Error: MOD_NAME and FUNC_HANDLER must be set"),
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
    assert f"cannot listen on 127.0.0.1:{port}: Error: listen EADDRINUSE" in stderr


# --- dependencies: the `install` step against a registry served here ---------------------------------------------

def package_tarball(name: str, version: str, index_js: str) -> bytes:
    """An npm package archive: package/package.json and package/index.js, gzipped."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        files = {"package/package.json": json.dumps({"name": name, "version": version, "main": "index.js"}),
                 "package/index.js": index_js}
        for path, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class Registry(ThreadingHTTPServer):
    """The two npm registry documents npm install reads: a packument and a tarball."""

    def __init__(self, packages: dict[str, dict[str, bytes]]) -> None:
        super().__init__(("127.0.0.1", 0), RegistryHandler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}/"
        self.documents: dict[str, tuple[str, bytes]] = {}
        self.requests: list[str] = []
        for name, versions in packages.items():
            packument: dict[str, Any] = {"name": name, "dist-tags": {"latest": max(versions)}, "versions": {}}
            for version, tarball in versions.items():
                path = f"/{name}/-/{name}-{version}.tgz"
                self.documents[path] = ("application/octet-stream", tarball)
                packument["versions"][version] = {
                    "name": name, "version": version, "dist": {
                        "tarball": self.url.rstrip("/") + path,
                        "shasum": hashlib.sha1(tarball).hexdigest(),
                        "integrity": "sha512-" + base64.b64encode(hashlib.sha512(tarball).digest()).decode()}}
            self.documents[f"/{name}"] = ("application/json", json.dumps(packument).encode())


class RegistryHandler(BaseHTTPRequestHandler):
    server: Registry

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        content_type, body = self.server.documents.get(self.path, ("application/json", b""))
        self.send_response(200 if body else 404)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def registry() -> Iterator[Registry]:
    server = Registry({"left-pad-local": {"1.0.0": package_tarball(
        "left-pad-local", "1.0.0", "module.exports = (text, width) => String(text).padStart(width, '*');\n")}})
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def npm_install(install_volume: Path, **env: str) -> subprocess.CompletedProcess:
    clean_env = {key: value for key, value in os.environ.items()
                 if not key.lower().startswith(("npm_config_", "http_proxy", "https_proxy", "kubeless_npm"))}
    clean_env.update(KUBELESS_INSTALL_VOLUME=str(install_volume),
                     KUBELESS_DEPS_FILE=str(install_volume / "package.json"),
                     HOME=str(install_volume.parent / "home"), PATH=f"{Path(NODE).parent}:{os.environ['PATH']}", **env)
    return subprocess.run(["sh", str(NPM_INSTALL)], cwd=install_volume, env=clean_env, capture_output=True,
                          text=True, timeout=120)


needs_npm = pytest.mark.skipif(not shutil.which("npm"), reason="npm is not installed")


@needs_npm
@pytest.mark.parametrize("variable", ["KUBELESS_NPM_REGISTRY", "npm_config_registry"])
def test_npm_install_from_the_registry_and_require(tmp_path: Path, registry: Registry, variable: str) -> None:
    volume = tmp_path / "kubeless"
    volume.mkdir()
    (volume / "package.json").write_text(json.dumps({"dependencies": {"left-pad-local": "1.0.0"}}))
    (volume / "function.js").write_text(
        "const pad = require('left-pad-local');\nmodule.exports = { handle: (event) => pad(event.data, 5) };\n")
    result = npm_install(volume, **{variable: registry.url})
    assert result.returncode == 0, result.stderr
    assert (volume / "node_modules" / "left-pad-local" / "index.js").is_file()
    assert "/left-pad-local" in registry.requests
    runtime = start_runtime(volume, NODE_PATH=str(volume / "node_modules"))
    try:
        assert runtime.request("POST", "/", body=b"ab").body == b"***ab"
    finally:
        stop(runtime.process)


@needs_npm
def test_npm_install_without_a_registry_stays_offline(tmp_path: Path) -> None:
    volume = tmp_path / "kubeless"
    volume.mkdir()
    (volume / "package.json").write_text(json.dumps({"dependencies": {}}))
    result = npm_install(volume)
    assert result.returncode == 0, result.stderr
    (volume / "package.json").write_text(json.dumps({"dependencies": {"left-pad-local": "1.0.0"}}))
    started = time.monotonic()
    result = npm_install(volume)
    assert result.returncode != 0
    assert "ENOTCACHED" in result.stdout + result.stderr
    assert "no npm registry (KUBELESS_NPM_REGISTRY or npm_config_registry): installing offline" in result.stderr
    assert time.monotonic() - started < 30
