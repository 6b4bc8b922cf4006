"""Tests of the Go runtime: its compile script, run on this machine's Go, and the server it builds, over HTTP.

The compile script runs as the `compile` init container would, on a temporary folder standing for /kubeless, with
the seed's function (hello.go + go.mod, unmodified) and with a function that exercises the contract. Builds use
this machine's Go build cache, so only the first run on a machine compiles the standard library.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest

from runtime_harness import Response, RuntimeServer, free_port, spawn, stop, wait_until_healthy

Server = RuntimeServer  # this module's name for a running server

GO_RUNTIME = Path(__file__).resolve().parents[2] / "runtimes" / "go"
COMPILE_SCRIPT = GO_RUNTIME / "compile" / "compile-function.sh"
GO = shutil.which("go")
pytestmark = pytest.mark.skipif(GO is None, reason="go is not installed: the Go runtime compiles with the host's Go")

SEED_GO_MOD = "module function\n\ngo 1.14\n"
SEED_HELLO_GO = '''package kubeless

import (
	"github.com/kubeless/kubeless/pkg/functions"
)

func Hello(event functions.Event, context functions.Context) (string, error) {
	return "hello world!", nil
}
'''

# Written for go 1.14, the seed's go line: no generics, no `any`.
CONTRACT_GO = '''package kubeless

import (
	"encoding/json"
	"errors"
	"io"
	"io/ioutil"
	"net/http"
	"strconv"
	"time"

	"github.com/kubeless/kubeless/pkg/functions"
)

func Contract(event functions.Event, context functions.Context) (string, error) {
	request, response := event.Extensions.Request, event.Extensions.Response
	switch request.URL.Path {
	case "/fail":
		return "", errors.New("boom\\nsecond line")
	case "/panic":
		panic("kaboom")
	case "/sleep":
		seconds, _ := strconv.ParseFloat(request.URL.Query().Get("s"), 64)
		time.Sleep(time.Duration(seconds * float64(time.Second)))
		return "slept", nil
	case "/write":
		response.Header().Set("Content-Type", "application/json")
		response.Header().Set("X-Custom", "yes")
		response.WriteHeader(http.StatusCreated)
		io.WriteString(response, `{"written": true}`)
		return "not sent", nil
	case "/status-only":
		response.WriteHeader(http.StatusAccepted)
		return "accepted", nil
	case "/header-only":
		response.Header().Set("X-Custom", "yes")
		return "with a header", nil
	case "/stream-then-hang":
		io.WriteString(response, "partial")
		response.(http.Flusher).Flush()
		time.Sleep(time.Second)
		return "", nil
	case "/abort":
		panic(http.ErrAbortHandler)
	}
	body, err := ioutil.ReadAll(request.Body)
	if err != nil {
		return "", err
	}
	deadline, _ := event.Extensions.Context.Deadline()
	result, err := json.Marshal(map[string]interface{}{
		"data": event.Data, "body": string(body), "method": request.Method, "query": request.URL.Query(),
		"event-id": event.EventID, "event-type": event.EventType, "event-time": event.EventTime,
		"event-namespace": event.EventNamespace, "x-test": request.Header.Get("x-TEST"),
		"context": context, "deadline-in": time.Until(deadline).Seconds(),
	})
	return string(result), err
}
'''


@dataclass
class Compilation:
    returncode: int
    output: str  # stdout and stderr, interleaved as a container log has them
    volume: Path

    @property
    def server(self) -> Path:
        return self.volume / "server"


@pytest.fixture(scope="module")
def go_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of every compilation: this machine's build cache, a module cache of the session."""
    assert GO is not None
    cache = subprocess.run([GO, "env", "GOCACHE"], capture_output=True, text=True, check=True).stdout.strip()
    return {"GOCACHE": cache, "GOPATH": str(tmp_path_factory.mktemp("gopath")),
            "KUBELESS_GO_MODULE": str(GO_RUNTIME / "kubeless"), "KUBELESS_GO_CACHE_SEED": "/nonexistent"}


def compile_function(go_env: dict[str, str], volume: Path, function_name: str, files: dict[str, str],
                     **env: str) -> Compilation:
    volume.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (volume / name).write_text(text)
    result = subprocess.run(
        ["sh", str(COMPILE_SCRIPT)], cwd=volume, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        timeout=240,
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


def launch(binary: Path, **overrides: str) -> Server:
    port = free_port()
    logs = binary.parent
    env = {**os.environ, "FUNC_HANDLER": "Contract", "MOD_NAME": "contract", "FUNC_HOST": "127.0.0.1",
           "FUNC_PORT": str(port), "FUNC_TIMEOUT": "5", "FUNC_RUNTIME": "go1.26", "FUNC_MEMORY_LIMIT": "128Mi",
           "FUNC_MEMFILE_MAX": "1024", "FUNC_TERMINATION_LOG": str(logs / "termination-log"), **overrides}
    return spawn([str(binary)], logs, port, env)


def start(binary: Path, **overrides: str) -> Server:
    return wait_until_healthy(launch(binary, **overrides))


@pytest.fixture(scope="module")
def seed(go_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Compilation:
    return compiled(go_env, tmp_path_factory.mktemp("seed") / "kubeless", "Hello",
                    {"hello.go": SEED_HELLO_GO, "go.mod": SEED_GO_MOD})


@pytest.fixture(scope="module")
def contract_binary(go_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return compiled(go_env, tmp_path_factory.mktemp("contract") / "kubeless", "Contract",
                    {"contract.go": CONTRACT_GO, "go.mod": SEED_GO_MOD}).server


@pytest.fixture(scope="module")
def server(contract_binary: Path) -> Iterator[Server]:
    server = start(contract_binary)
    yield server
    stop(server.process)


@pytest.fixture(scope="module")
def timeout_server(contract_binary: Path) -> Iterator[Server]:
    server = start(contract_binary, FUNC_TIMEOUT="0.3", FUNC_MAX_STUCK="2")
    yield server
    stop(server.process)


# --- compilation ------------------------------------------------------------------------------------------------

def test_seed_function_compiles_and_says_hello(seed: Compilation) -> None:
    assert "compiled " in seed.output.splitlines()[-1]
    assert (seed.volume / "go.mod").read_text() == SEED_GO_MOD  # the function's folder is left as it was
    server = start(seed.server, FUNC_HANDLER="Hello", MOD_NAME="hello")
    try:
        response = server.request("GET", "/")
        assert (response.status, response.body) == (200, b"hello world!")
        assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert server.stdout.read_text().startswith(f"serving hello.Hello on 127.0.0.1:{server.port}\n")
    finally:
        stop(server.process)


def test_compile_error_ends_the_output(go_env: dict[str, str], tmp_path: Path) -> None:
    broken = SEED_HELLO_GO.replace('return "hello world!", nil', "return 42, nil")
    compilation = compile_function(go_env, tmp_path / "kubeless", "Hello", {"hello.go": broken, "go.mod": SEED_GO_MOD})
    assert compilation.returncode != 0
    assert not compilation.server.exists()
    last_lines = compilation.output.strip().splitlines()[-2:]
    assert last_lines[0] == "# function"
    assert re.fullmatch(r"\./hello\.go:\d+:\d+: cannot use 42 .* as string value in return statement", last_lines[1])


@pytest.mark.parametrize("function_name, expected", [
    ("Goodbye", r"_kubeless_main/main\.go:\d+:\d+: undefined: function\.Goodbye"),
    ("hello", r"the function hello is not exported: .*"),
    ("Hello;rm", r"the function name 'Hello;rm' is not a Go identifier"),
])
def test_handler_that_cannot_be_called(go_env: dict[str, str], tmp_path: Path, function_name: str,
                                       expected: str) -> None:
    compilation = compile_function(go_env, tmp_path / "kubeless", function_name,
                                   {"hello.go": SEED_HELLO_GO, "go.mod": SEED_GO_MOD})
    assert compilation.returncode != 0
    assert re.fullmatch(expected, compilation.output.strip().splitlines()[-1])


def test_wrong_signature_is_named(go_env: dict[str, str], tmp_path: Path) -> None:
    source = 'package kubeless\n\nfunc Hello() string { return "hi" }\n'
    compilation = compile_function(go_env, tmp_path / "kubeless", "Hello", {"hello.go": source, "go.mod": ""})
    assert compilation.returncode != 0
    assert "cannot use function.Hello (value of type func() string) as functions.Handler value" in \
        compilation.output.strip().splitlines()[-1]


def test_empty_go_mod_becomes_module_function(go_env: dict[str, str], tmp_path: Path) -> None:
    compilation = compiled(go_env, tmp_path / "kubeless", "Hello", {"hello.go": SEED_HELLO_GO, "go.mod": " \n"})
    assert "of module function " in compilation.output


def test_replace_directives_of_the_function_apply(go_env: dict[str, str], tmp_path: Path) -> None:
    """Kubeless ignored them (kubeless/runtimes#84): here the function's folder is the main module."""
    user_go = GREETING_USER_GO.replace('"example.com/greeting"', '"example.com/greeting/local"')
    (tmp_path / "kubeless" / "local").mkdir(parents=True)
    (tmp_path / "kubeless" / "local" / "go.mod").write_text("module example.com/greeting/local\n\ngo 1.14\n")
    (tmp_path / "kubeless" / "local" / "greeting.go").write_text(
        'package greeting\n\nfunc For(name string) string { return "hi " + name }\n')
    go_mod = ("module function\n\ngo 1.14\n\nrequire example.com/greeting/local v1.2.3\n\n"
              "replace example.com/greeting/local => ./local\n")
    compilation = compiled(go_env, tmp_path / "kubeless", "Greet", {"greet.go": user_go, "go.mod": go_mod})
    server = start(compilation.server, FUNC_HANDLER="Greet", MOD_NAME="greet")
    try:
        assert server.request("POST", "/", body=b"there").body == b"hi there"
    finally:
        stop(server.process)


def serve_goproxy(root: Path) -> ThreadingHTTPServer:
    """A Go module proxy (GOPROXY protocol: <module>/@v/list, .info, .mod, .zip) serving files under root."""
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietFileHandler, directory=str(root)))
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    return proxy


class QuietFileHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def publish_module(root: Path, module: str, version: str, files: dict[str, str]) -> None:
    """Lays out one module version as a proxy serves it; the zip holds <module>@<version>/<file> (x/mod/zip)."""
    folder = root / module / "@v"
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "list").open("a") as listing:
        listing.write(version + "\n")
    (folder / f"{version}.info").write_text(json.dumps({"Version": version, "Time": "2024-01-02T03:04:05Z"}))
    (folder / f"{version}.mod").write_text(files["go.mod"])
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        for name, text in sorted(files.items()):
            zipped.writestr(f"{module}@{version}/{name}", text)
    (folder / f"{version}.zip").write_bytes(archive.getvalue())


GREETING_USER_GO = '''package kubeless

import (

	"example.com/greeting"
	"github.com/kubeless/kubeless/pkg/functions"
)

func Greet(event functions.Event, context functions.Context) (string, error) {
	return greeting.For(event.Data), nil
}
'''
GREETING_GO_MOD = "module function\n\ngo 1.14\n\nrequire example.com/greeting v1.0.0\n"


def test_third_party_module_comes_from_kubeless_goproxy(go_env: dict[str, str], tmp_path: Path) -> None:
    publish_module(tmp_path / "proxy", "example.com/greeting", "v1.0.0", {
        "go.mod": "module example.com/greeting\n\ngo 1.14\n",
        "greeting.go": 'package greeting\n\nfunc For(name string) string { return "hello, " + name }\n'})
    proxy = serve_goproxy(tmp_path / "proxy")
    try:
        compilation = compiled(go_env, tmp_path / "kubeless", "Greet", {"greet.go": GREETING_USER_GO,
                                                                      "go.mod": GREETING_GO_MOD},
                               KUBELESS_GOPROXY=f"http://127.0.0.1:{proxy.server_address[1]}")
    finally:
        proxy.shutdown()
        proxy.server_close()
    server = start(compilation.server, FUNC_HANDLER="Greet", MOD_NAME="greet")
    try:
        assert server.request("POST", "/", body=b"gopher").body == b"hello, gopher"
    finally:
        stop(server.process)


def test_third_party_module_without_goproxy_fails_with_a_hint(go_env: dict[str, str], tmp_path: Path) -> None:
    compilation = compile_function(go_env, tmp_path / "kubeless", "Greet",
                                   {"greet.go": GREETING_USER_GO, "go.mod": GREETING_GO_MOD},
                                   GOPATH=str(tmp_path / "empty-gopath"))  # the session's has example.com/greeting
    assert compilation.returncode != 0
    assert "set KUBELESS_GOPROXY" in compilation.output
    assert "module lookup disabled by GOPROXY=off" in compilation.output.strip().splitlines()[-1]


# --- the server's contract ---------------------------------------------------------------------------------------

def test_server_package_unit_tests(go_env: dict[str, str]) -> None:
    """Go tests of what HTTP does not show well: the configuration's parsing and the histogram's buckets."""
    # The compile script's flags, so that the standard library compiled for the functions serves here too.
    result = subprocess.run([GO, "test", "-trimpath", "-gcflags=all=-dwarf=false", "./..."],
                            cwd=GO_RUNTIME / "kubeless", capture_output=True, text=True,
                            timeout=120, env={**os.environ, "GOCACHE": go_env["GOCACHE"], "GOPROXY": "off",
                                              "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=mod", "CGO_ENABLED": "0"})
    assert result.returncode == 0, result.stdout + result.stderr


def test_healthz_answers_ok_with_cors(server: Server) -> None:
    response = server.request("GET", "/healthz")
    assert (response.status, response.body) == (200, b"OK")
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_event_defaults_and_context(server: Server) -> None:
    result = server.request("GET", "/event").json()
    assert result["data"] == "" and result["body"] == ""
    assert re.fullmatch(r"[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}", result["event-id"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", result["event-time"])
    assert result["event-type"] == "" and result["event-namespace"] == ""
    assert result["context"] == {"FunctionName": "Contract", "Timeout": "5", "Runtime": "go1.26",
                                 "MemoryLimit": "128Mi"}
    assert 4 < result["deadline-in"] <= 5  # Extensions.Context carries FUNC_TIMEOUT


def test_event_fields_come_from_request_headers(server: Server) -> None:
    headers = {"event-id": "id-1", "event-type": "com.example.thing", "event-time": "2020-01-02T03:04:05Z",
               "event-namespace": "things.example.com", "X-Test": "case-insensitive"}
    result = server.request("PUT", "/event?a=1&a=2&b=", headers=headers).json()
    assert {key: result[key] for key in headers if key.startswith("event-")} == {
        "event-id": "id-1", "event-type": "com.example.thing", "event-time": "2020-01-02T03:04:05Z",
        "event-namespace": "things.example.com"}
    assert result["method"] == "PUT"
    assert result["query"] == {"a": ["1", "2"], "b": [""]}
    assert result["x-test"] == "case-insensitive"


def test_event_ids_are_unique(server: Server) -> None:
    assert len({server.request("GET", "/event").json()["event-id"] for _ in range(3)}) == 3


@pytest.mark.parametrize("content_type, body", [
    ("application/json", b'{"a": 1}'),
    ("text/plain; charset=utf-8", "caf\u00e9".encode()),
    (None, b"plain"),
])
def test_data_is_the_body_as_a_string(server: Server, content_type: str | None, body: bytes) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    result = server.request("POST", "/event", body=body, headers=headers).json()
    assert result["data"] == result["body"] == body.decode()  # the request's Body can be read again
    assert result["event-type"] == (content_type.split(";")[0] if content_type else "")


def test_chunked_request_body(server: Server) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.request("POST", "/event", body=iter([b"hello ", b"world"]), encode_chunked=True,
                           headers={"Transfer-Encoding": "chunked"})
        assert json.loads(connection.getresponse().read())["data"] == "hello world"
    finally:
        connection.close()


def test_body_over_memfile_max_is_rejected(server: Server) -> None:
    response = server.request("POST", "/event", body=b"x" * 2000)
    assert (response.status, response.body) == (413, b"request body larger than 1024 bytes")
    assert server.request("POST", "/event", body=b"x" * 1024).status == 200


def test_error_is_a_500_and_counted(server: Server) -> None:
    failures_before = server.metric('function_failures_total{method="PATCH"}')
    response = server.request("PATCH", "/fail")
    assert (response.status, response.body) == (500, b"Error: boom second line")
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert server.metric('function_failures_total{method="PATCH"}') == failures_before + 1
    assert "contract.Contract failed on PATCH /fail: boom" in server.stderr.read_text()


def test_panic_is_a_500_and_the_server_survives(server: Server) -> None:
    failures_before = server.metric('function_failures_total{method="POST"}')
    response = server.request("POST", "/panic")
    assert (response.status, response.body) == (500, b"Panic: kaboom")
    assert server.metric('function_failures_total{method="POST"}') == failures_before + 1
    assert "panic in contract.Contract: kaboom" in server.stderr.read_text()
    assert server.request("GET", "/event").status == 200


def test_function_that_writes_its_response_owns_it(server: Server) -> None:
    response = server.request("GET", "/write")
    assert (response.status, response.body) == (201, b'{"written": true}')
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["X-Custom"] == "yes"
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_function_that_sets_status_or_headers_only(server: Server) -> None:
    response = server.request("GET", "/status-only")
    assert (response.status, response.body) == (202, b"accepted")
    response = server.request("GET", "/header-only")
    assert (response.status, response.body, response.headers["X-Custom"]) == (200, b"with a header", "yes")
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"


def test_function_can_abort_the_connection(server: Server) -> None:
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        server.request("GET", "/abort")
    assert server.request("GET", "/healthz").status == 200


def test_metrics_are_prometheus_text(server: Server) -> None:
    for _ in range(3):
        server.request("DELETE", "/event")
    response = server.request("GET", "/metrics")
    assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    text = response.body.decode()
    for name, kind in [("function_calls_total", "counter"), ("function_failures_total", "counter"),
                       ("function_duration_seconds", "histogram"), ("function_stuck_calls", "gauge")]:
        assert f"# HELP {name} " in text
        assert f"# TYPE {name} {kind}" in text
    assert server.metric('function_calls_total{method="DELETE"}') >= 3
    bounds = re.findall(r'^function_duration_seconds_bucket\{method="DELETE",le="([^"]+)"\} \S+$', text, re.MULTILINE)
    assert bounds == ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "5.0", "10.0", "+Inf"]
    buckets = [float(value) for value in re.findall(
        r'^function_duration_seconds_bucket\{method="DELETE",le="[^"]+"\} (\S+)$', text, re.MULTILINE)]
    assert buckets == sorted(buckets)
    assert buckets[-1] == server.metric('function_duration_seconds_count{method="DELETE"}')
    assert server.metric('function_duration_seconds_sum{method="DELETE"}') > 0
    assert server.metric("function_stuck_calls") == 0


def test_healthz_metrics_and_preflight_are_not_calls(server: Server) -> None:
    calls_before = server.metric('function_calls_total{method="GET"}')
    server.request("GET", "/healthz")
    server.request("OPTIONS", "/")
    assert server.metric('function_calls_total{method="GET"}') == calls_before
    assert 'method="OPTIONS"' not in server.request("GET", "/metrics").body.decode()


def test_cors_preflight(server: Server) -> None:
    response = server.request("OPTIONS", "/anything", headers={
        "Origin": "https://example.com", "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "content-type, x-token"})
    assert response.status == 204
    assert response.headers["Access-Control-Allow-Methods"] == "PUT"
    assert response.headers["Access-Control-Allow-Headers"] == "content-type, x-token"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    response = server.request("OPTIONS", "/")
    assert response.headers["Access-Control-Allow-Methods"] == "GET, POST, PUT, PATCH, DELETE, OPTIONS"


def test_keep_alive_serves_many_requests_on_one_connection(server: Server) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.connect()
        first_socket = connection.sock
        for body in (b"one", b"two", b"three"):
            connection.request("POST", "/event", body=body)
            response = connection.getresponse()
            assert json.loads(response.read())["data"] == body.decode()
        assert connection.sock is first_socket
    finally:
        connection.close()


def test_calls_run_concurrently(server: Server) -> None:
    started = time.monotonic()
    with ThreadPoolExecutor(20) as pool:
        responses = list(pool.map(lambda _: server.request("GET", "/sleep?s=0.5"), range(20)))
    assert [response.body for response in responses] == [b"slept"] * 20
    assert time.monotonic() - started < 1.5


def test_access_log_line_per_request(server: Server) -> None:
    path = f"/log-{uuid.uuid4().hex}?q=1"
    server.request("GET", path)
    deadline = time.monotonic() + 2
    while not re.search(rf"^\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\dZ GET {re.escape(path)} 200 \d+\.\d{{3}}ms$",
                        server.stdout.read_text(), re.MULTILINE):
        assert time.monotonic() < deadline, "no access log line"
        time.sleep(0.02)


def test_timeout_answers_408_and_the_server_keeps_serving(timeout_server: Server) -> None:
    failures_before = timeout_server.metric('function_failures_total{method="GET"}')
    started = time.monotonic()
    with ThreadPoolExecutor(2) as pool:
        responses = list(pool.map(lambda _: timeout_server.request("GET", "/sleep?s=1.2"), range(2)))
    assert time.monotonic() - started < 1.0
    for response in responses:
        assert (response.status, response.body) == (408, b"Function timed out after 0.3 s")
        assert response.headers["Connection"] == "close"
        assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert timeout_server.metric('function_failures_total{method="GET"}') == failures_before + 2
    assert timeout_server.metric("function_stuck_calls") == 2
    assert timeout_server.request("GET", "/healthz").status == 503
    assert timeout_server.request("GET", "/event").status == 200

    deadline = time.monotonic() + 5
    while timeout_server.metric("function_stuck_calls") != 0:
        assert time.monotonic() < deadline, "stuck calls never finished"
        time.sleep(0.05)
    assert timeout_server.request("GET", "/healthz").status == 200
    assert "discarded the late result of GET /sleep?s=1.2" in timeout_server.stderr.read_text()
    assert timeout_server.process.poll() is None


def test_timeout_after_the_function_started_writing_cuts_the_connection(timeout_server: Server) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", timeout_server.port, timeout=10)
    try:
        started = time.monotonic()
        connection.request("GET", "/stream-then-hang")
        response = connection.getresponse()
        assert response.status == 200
        with pytest.raises(http.client.IncompleteRead):
            response.read()
        assert time.monotonic() - started < 0.9  # at the deadline, not when the function returns
    finally:
        connection.close()
    assert timeout_server.request("GET", "/event").status == 200


def test_sigterm_lets_running_call_finish(contract_binary: Path) -> None:
    server = start(contract_binary)
    try:
        result: list[Response] = []
        caller = threading.Thread(target=lambda: result.append(server.request("GET", "/sleep?s=0.8")))
        caller.start()
        time.sleep(0.3)
        server.process.send_signal(signal.SIGTERM)
        caller.join(timeout=5)
        assert server.process.wait(timeout=5) == 0
        assert result and (result[0].status, result[0].body) == (200, b"slept")
        assert "GET /sleep?s=0.8 200 " in server.stdout.read_text()  # the access log is flushed at exit
    finally:
        stop(server.process)


@pytest.mark.parametrize("overrides, expected", [
    ({"FUNC_TIMEOUT": "soon"}, "invalid configuration: FUNC_TIMEOUT must be a number, got 'soon'"),
    ({"FUNC_MAX_STUCK": "0"}, "invalid configuration: FUNC_MAX_STUCK must be at least 1, got '0'"),
])
def test_bad_configuration_exits_1_with_message(contract_binary: Path, overrides: dict[str, str],
                                                expected: str) -> None:
    termination_log = contract_binary.parent / "termination-log"
    termination_log.write_text("")
    server = launch(contract_binary, **overrides)
    try:
        assert server.process.wait(timeout=10) == 1
    finally:
        stop(server.process)
    assert expected in server.stderr.read_text()
    assert termination_log.read_text() == expected + "\n"


def test_port_in_use_exits_1(contract_binary: Path) -> None:
    with socket.socket() as occupant:
        occupant.bind(("127.0.0.1", 0))
        occupant.listen()
        port = occupant.getsockname()[1]
        server = launch(contract_binary, FUNC_PORT=str(port))
        try:
            assert server.process.wait(timeout=10) == 1
        finally:
            stop(server.process)
    assert f"cannot listen on 127.0.0.1:{port}: " in server.stderr.read_text()
