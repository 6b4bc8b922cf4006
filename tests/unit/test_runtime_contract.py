"""The runtime contract, run against each runtime's real server over HTTP: python3.11, nodejs18 and go1.26.

Every test runs on every runtime, except where the contract itself leaves one out: Go's event data is the body as
a string and a Go function returns a string, so decoding the body and typed results are for Python and Node (TYPED).
Where the runtimes differ in a detail (the data types' names, the event-id format, the body of a 500), the value
each must give is in its Flavour below, not in the tests. What only one runtime does is in test_<runtime>_runtime.py.
"""

from __future__ import annotations

import http.client
import itertools
import json
import re
import select
import signal
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from kubeless_api.contract import RESERVE_CONNECTIONS
from runtime_harness import (GO, GO_MOD, NO_GO, NO_NODE, NODE, Launcher, Response, RuntimeServer, compiled,
                             go_build_env, go_server, node_runtime, python_runtime, stop, wait_until_healthy)

# Each contract function answers the same paths: /event echoes the event as JSON, /text says hello, /sleep?s=N
# sleeps N seconds, /fail fails with "boom\nsecond line"; each also fails and returns results in its language's
# other ways (the Flavour's failures, invalid_results and the RESULTS below).
PYTHON_CONTRACT = r'''
import time


def describe(data):
    if isinstance(data, bytes):
        return {"type": "bytes", "value": data.hex()}
    return {"type": type(data).__name__, "value": data}


RESULTS = {
    "/text": lambda: "hello",
    "/bytes": lambda: b"\x00\x01",
    "/json": lambda: {"a": [1, 2]},
    "/number": lambda: 42,
    "/none": lambda: None,
    "/created": lambda: ("created", 201),
    "/custom": lambda: ({"ok": True}, 202, {"X-Custom": "yes", "content-type": "application/vnd.test+json"}),
    "/no-content": lambda: ("ignored", 204),
    "/bad-status": lambda: ("x", 99),
    "/bad-header": lambda: ("x", 200, {"X-Bad": "a\r\nInjected: 1"}),
}


def handle(event, context):
    request = event["extensions"]["request"]
    if request.path in RESULTS:
        return RESULTS[request.path]()
    if request.path == "/fail":
        raise ValueError("boom\nsecond line")
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

NODE_CONTRACT = r"""
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
  '/none': () => undefined,
  '/created': (response) => { response.statusCode = 201; return 'created'; },
  '/custom': (response) => {
    response.statusCode = 202;
    response.setHeader('X-Custom', 'yes');
    response.setHeader('Content-Type', 'application/vnd.test+json');
    return { ok: true };
  },
  '/no-content': (response) => { response.statusCode = 204; return 'ignored'; },
  '/bad-status': (response) => { response.statusCode = 99; return 'x'; },
  '/bigint': () => ({ n: 1n }),
};

module.exports = {
  handle(event, context) {
    const request = event.extensions.request;
    if (RESULTS[request.path]) return RESULTS[request.path](event.extensions.response);
    switch (request.path) {
      case '/fail': throw new TypeError('boom\nsecond line');
      case '/reject': return Promise.reject(new RangeError('nope'));
      case '/sleep': return sleep(Number(request.query.s)).then(() => 'slept');
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

# Written for go 1.14, the seed's go line: no generics, no `any`.
GO_CONTRACT = r"""package kubeless

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/ioutil"
	"strconv"
	"time"

	"github.com/kubeless/kubeless/pkg/functions"
)

func Contract(event functions.Event, context functions.Context) (string, error) {
	request := event.Extensions.Request
	switch request.URL.Path {
	case "/text":
		return "hello", nil
	case "/fail":
		return "", errors.New("boom\nsecond line")
	case "/panic":
		panic("kaboom")
	case "/sleep":
		seconds, _ := strconv.ParseFloat(request.URL.Query().Get("s"), 64)
		time.Sleep(time.Duration(seconds * float64(time.Second)))
		return "slept", nil
	}
	body, err := ioutil.ReadAll(request.Body)
	if err != nil {
		return "", err
	}
	result, err := json.Marshal(map[string]interface{}{
		"data": map[string]interface{}{"type": fmt.Sprintf("%T", event.Data), "value": event.Data},
		"event": map[string]string{"event-id": event.EventID, "event-type": event.EventType,
			"event-time": event.EventTime, "event-namespace": event.EventNamespace},
		"method": request.Method, "query": request.URL.Query(), "x-test": request.Header.Get("x-TEST"),
		"body-length": len(body), "context": context,
	})
	return string(result), err
}
"""


def compiled_go_server(volume: Path) -> Launcher:
    return go_server(compiled(go_build_env(volume.parent / "gopath"), volume, "Contract", {}).server,
                     "contract", "Contract")


@dataclass(frozen=True)
class Flavour:
    """One runtime's side of the contract: how it serves a function, and its values where the runtimes differ."""
    id: str
    missing: str | None  # why it cannot run on this machine
    suffix: str  # of a function's file, as in the runtime catalogue
    files: dict[str, str]  # the contract function
    runtime: Callable[[Path], Launcher]  # the runtime serving the function in a folder (compiled first, for Go)
    type_names: dict[str, str]  # the contract's names of data types, as the function's describe() says them
    context: dict[str, Any]
    query: dict[str, Any]  # of ?a=1&a=2&b=
    failures: list[tuple[str, bytes, str]]  # path, the 500's body, what stderr shows ({dir}: the function's folder)
    listen_error: str  # after "cannot listen on <host>:<port>: " when the port is taken
    invalid_results: list[tuple[str, bytes]] = field(default_factory=list)  # path, the 500's body
    json_separators: tuple[str, str] = (",", ":")
    keep_alive: str | None = None  # the Connection header of a response on a connection kept open
    malformed: tuple[str, ...] = ("Connection: close", "Access-Control-Allow-Origin: *")  # headers of a 400
    # what a connection whose head was cut off part way (FUNC_HEADER_TIMEOUT=0.5) gets before it is closed: the
    # start of the status line and the end of the body, or b"" for nothing
    late_head: tuple[tuple[bytes, bytes], ...] = ((b"HTTP/1.1 408 ", b"request head not received within 0.5 s"),)
    idle_buffer: float = 0  # seconds a kept-alive connection may idle beyond FUNC_HEADER_TIMEOUT
    # MOD_NAME, the source of the module's file (None: no file), the message: for a runtime that loads the module
    unloadable: list[tuple[str, str | None, str]] = field(default_factory=list)


PYTHON = Flavour(
    id="python3.11", missing=None, suffix=".py", files={"function.py": PYTHON_CONTRACT}, runtime=python_runtime,
    type_names={"object": "dict", "array": "list", "string": "str", "null": "NoneType", "bytes": "bytes"},
    context={"function-name": "handle", "timeout": 5, "runtime": "python3.11", "memory-limit": "128Mi"},
    query={"a": ["1", "2"], "b": [""]},
    failures=[("/fail", b"ValueError: boom second line", "Traceback")], listen_error="OSError",
    invalid_results=[("/bad-status", b"ValueError: invalid status 99: must be an int from 200 to 599"),
                     ("/bad-header", b"ValueError: response header 'X-Bad' contains a line break")],
    json_separators=(", ", ": "),  # json.dumps's
    unloadable=[
        ("broken", "import no_such_package_xyz\ndef handle(event, context): pass\n",
         "cannot load handler broken.handle: ModuleNotFoundError: No module named 'no_such_package_xyz'"),
        ("broken", "def other(event, context): pass\n",
         "cannot load handler broken.handle: AttributeError: module 'broken' has no attribute 'handle'"),
        ("broken", "handle = 3\n", "cannot load handler broken.handle: TypeError: broken.handle is not callable"),
        ("broken", "def handle(event, context:\n", "cannot load handler broken.handle: SyntaxError"),
        ("", None, "cannot load handler .handle: ValueError: MOD_NAME and FUNC_HANDLER must be set"),
    ])

NODEJS = Flavour(
    id="nodejs18", missing=None if NODE else NO_NODE, suffix=".js",
    files={"function.js": NODE_CONTRACT}, runtime=node_runtime,
    type_names={"object": "object", "array": "array", "string": "string", "null": "null", "bytes": "Buffer"},
    context={"function-name": "handle", "timeout": 5, "runtime": "nodejs18", "memory-limit": "128Mi"},
    query={"a": ["1", "2"], "b": ""},  # a name given once is a string, as in Express
    keep_alive="keep-alive",
    idle_buffer=1.0,  # Node 20 adds a second to keepAliveTimeout, past its "Keep-Alive: timeout=" header
    failures=[("/fail", b"TypeError: boom second line", "at Object.handle ({dir}"),
              ("/reject", b"RangeError: nope", "at Object.handle ({dir}")],
    listen_error="Error: listen EADDRINUSE",
    invalid_results=[("/bad-status", b"RangeError: invalid status 99: must be an integer from 200 to 599"),
                     ("/bigint", b"TypeError: Do not know how to serialize a BigInt")],
    unloadable=[
        ("broken", "require('no-such-package-xyz');\n",
         "cannot load handler broken.handle: Error: Cannot find module 'no-such-package-xyz'"),
        ("broken", "module.exports = { other() {} };\n",
         "cannot load handler broken.handle: TypeError: {dir}/broken.js exports neither a function nor an object "
         "with a function handle"),
        ("broken", "module.exports = { handle: 3 };\n", "cannot load handler broken.handle: TypeError: "),
        ("broken", "module.exports = { handle(event, context {} };\n",
         "cannot load handler broken.handle: SyntaxError: Unexpected token '{' ({dir}/broken.js:1)"),
        ("broken", "throw new Error('no config');\n", "cannot load handler broken.handle: Error: no config"),
        ("", None, "cannot load handler .handle: Error: MOD_NAME and FUNC_HANDLER must be set"),
        ("absent", None, "cannot load handler absent.handle: Error: Cannot find module '{dir}/absent.js'"),
    ])

GOLANG = Flavour(
    id="go1.26", missing=None if GO else NO_GO, suffix=".go", files={"contract.go": GO_CONTRACT, "go.mod": GO_MOD},
    runtime=compiled_go_server,
    type_names={"string": "string"},  # Kubeless's Go Event.Data is a string
    context={"FunctionName": "Contract", "Timeout": "5", "Runtime": "go1.26", "MemoryLimit": "128Mi"},
    query={"a": ["1", "2"], "b": [""]},
    failures=[("/fail", b"Error: boom second line", "contract.Contract failed on PATCH /fail: boom"),
              ("/panic", b"Panic: kaboom", "panic in contract.Contract: kaboom")],
    listen_error="",
    malformed=("Connection: close",),  # net/http answers what it cannot parse before the server sees it
    late_head=((b"", b""), (b"HTTP/1.1 400 ", b"400 Bad Request")))  # net/http's: 400 if a line was cut short

FLAVOURS = {flavour.id: flavour for flavour in (PYTHON, NODEJS, GOLANG)}
# Go's event data is the body as a string and a Go function returns a string: test_go_runtime.py has its side.
TYPED = [PYTHON.id, NODEJS.id]  # the runtimes whose event data and results have types


def each_flavour(table: str) -> list[Any]:
    """Parameters (flavour, *row) for every row of every flavour's `table`, for the flavour fixture."""
    return [pytest.param(flavour.id, *row, id=f"{flavour.id}-{number}")
            for flavour in FLAVOURS.values() for number, row in enumerate(getattr(flavour, table))]


@pytest.fixture(scope="module", params=list(FLAVOURS))
def flavour(request: pytest.FixtureRequest) -> Flavour:
    flavour = FLAVOURS[request.param]
    if flavour.missing:
        pytest.skip(flavour.missing)
    return flavour


@pytest.fixture(scope="module")
def contract(flavour: Flavour, tmp_path_factory: pytest.TempPathFactory) -> Launcher:
    """The flavour's runtime on its contract function, written (and compiled) once per module."""
    folder = tmp_path_factory.mktemp(flavour.id) / "kubeless"
    folder.mkdir()
    for name, text in flavour.files.items():
        (folder / name).write_text(text)
    return flavour.runtime(folder)


@pytest.fixture(scope="module")
def runtime(contract: Launcher) -> Iterator[RuntimeServer]:
    with contract.running(FUNC_MEMFILE_MAX="1024") as server:
        yield server


@pytest.fixture(scope="module")
def timeout_runtime(contract: Launcher) -> Iterator[RuntimeServer]:
    with contract.running(FUNC_TIMEOUT="0.3", FUNC_MAX_STUCK="2") as server:
        yield server


@pytest.fixture(scope="module")
def guarded_runtime(contract: Launcher) -> Iterator[RuntimeServer]:
    with contract.running(FUNC_HEADER_TIMEOUT="0.5", FUNC_READ_TIMEOUT="0.5") as server:
        yield server


def data(flavour: Flavour, kind: str, value: Any) -> dict[str, Any]:
    """The function's description of event data of the contract's `kind`, in the flavour's names."""
    return {"type": flavour.type_names[kind], "value": value}


# --- the event --------------------------------------------------------------------------------------------------

def test_healthz_answers_ok_with_cors(runtime: RuntimeServer) -> None:
    response = runtime.request("GET", "/healthz")
    assert (response.status, response.body) == (200, b"OK")
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_event_defaults_and_context(flavour: Flavour, runtime: RuntimeServer) -> None:
    result = runtime.request("GET", "/event").json()
    assert result["data"] == data(flavour, "string", "")
    assert result["body-length"] == 0
    assert re.fullmatch(r"[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}", result["event"]["event-id"])  # a UUID 4
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", result["event"]["event-time"])
    assert result["event"]["event-type"] == ""
    assert result["event"]["event-namespace"] == ""
    assert result["context"] == flavour.context


def test_event_fields_come_from_request_headers(flavour: Flavour, runtime: RuntimeServer) -> None:
    headers = {"event-id": "id-1", "event-type": "com.example.thing", "event-time": "2020-01-02T03:04:05Z",
               "event-namespace": "things.example.com", "X-Test": "case-insensitive"}
    result = runtime.request("PUT", "/event?a=1&a=2&b=", headers=headers).json()
    assert result["event"] == {"event-id": "id-1", "event-type": "com.example.thing",
                               "event-time": "2020-01-02T03:04:05Z", "event-namespace": "things.example.com"}
    assert result["method"] == "PUT"
    assert result["query"] == flavour.query
    assert result["x-test"] == "case-insensitive"


def test_event_ids_are_unique(runtime: RuntimeServer) -> None:
    ids = {runtime.request("GET", "/event").json()["event"]["event-id"] for _ in range(3)}
    assert len(ids) == 3


@pytest.mark.parametrize("content_type, event_type", [
    ("application/json", "application/json"),
    ("application/json; charset=utf-8", "application/json"),
    ("text/plain; charset=utf-8", "text/plain"),
    (None, ""),
])
def test_event_type_defaults_to_media_type(runtime: RuntimeServer, content_type: str | None,
                                           event_type: str) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    result = runtime.request("POST", "/event", body=b"{}", headers=headers).json()
    assert result["event"]["event-type"] == event_type


@pytest.mark.parametrize("flavour", TYPED, indirect=True)
@pytest.mark.parametrize("content_type, body, kind, value", [
    ("application/json", b'{"a": 1}', "object", {"a": 1}),
    ("application/cloudevents+json; charset=utf-8", b"[1, 2]", "array", [1, 2]),
    ("Application/JSON; charset=latin-1", '"caf\u00e9"'.encode("latin-1"), "string", "caf\u00e9"),
    ("application/json", b"", "null", None),
    ("text/plain; charset=latin-1", b"caf\xe9", "string", "caf\u00e9"),
    ("text/csv", b"a,b", "string", "a,b"),
    (None, b"plain", "string", "plain"),
    ("application/x-www-form-urlencoded", b"a=1&b=2", "string", "a=1&b=2"),
    ("text/plain", b"\xff\xfe", "bytes", "fffe"),
    ("application/octet-stream", b"\x00\x01", "bytes", "0001"),
    ("image/png", b"\x89PNG", "bytes", "89504e47"),
    ("application/octet-stream", b"", "string", ""),
])
def test_request_data_decoding(flavour: Flavour, runtime: RuntimeServer, content_type: str | None, body: bytes,
                               kind: str, value: Any) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    result = runtime.request("POST", "/event", body=body, headers=headers).json()
    assert result["data"] == data(flavour, kind, value)
    assert result["body-length"] == len(body)


@pytest.mark.parametrize("flavour", TYPED, indirect=True)
def test_invalid_json_is_a_bad_request(runtime: RuntimeServer) -> None:
    response = runtime.request("POST", "/event", body=b"{nope", headers={"Content-Type": "application/json"})
    assert response.status == 400
    assert response.body.startswith(b"invalid JSON body: ")


def test_chunked_request_body(flavour: Flavour, runtime: RuntimeServer) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", runtime.port, timeout=10)
    try:
        connection.request("POST", "/event", body=iter([b"hello ", b"world"]), encode_chunked=True,
                           headers={"Content-Type": "text/plain", "Transfer-Encoding": "chunked"})
        result = json.loads(connection.getresponse().read())
    finally:
        connection.close()
    assert result["data"] == data(flavour, "string", "hello world")


# --- the body limit: FUNC_MEMFILE_MAX bytes, 100 MiB by default -------------------------------------------------

def test_body_over_func_memfile_max_is_refused(runtime: RuntimeServer) -> None:
    # the runtime fixture sets FUNC_MEMFILE_MAX=1024
    response = runtime.request("POST", "/event", body=b"x" * 2000, headers={"Content-Type": "text/plain"})
    assert (response.status, response.body) == (413, b"request body larger than 1024 bytes")
    connection = http.client.HTTPConnection("127.0.0.1", runtime.port, timeout=10)
    try:
        connection.request("POST", "/event", body=iter([b"x" * 1000, b"x" * 1000]), encode_chunked=True,
                           headers={"Transfer-Encoding": "chunked"})
        assert connection.getresponse().status == 413
    finally:
        connection.close()
    assert runtime.request("POST", "/event", body=b"x" * 1024).status == 200


def test_body_limit_without_func_memfile_max_is_over_2_mib(contract: Launcher) -> None:
    # Kubeless's Node runtime refused bodies over 1 MiB by default (REQ_MB_LIMIT); all three now allow 100 MiB.
    with contract.running() as server:
        size = (2 << 20) + 1
        response = server.request("POST", "/event", body=b"x" * size, headers={"Content-Type": "text/plain"})
        assert response.status == 200, response.body[:200]
        assert response.json()["body-length"] == size


def body_limit(server: RuntimeServer) -> int:
    """The limit the 413 names, for a Content-Length no runtime allows (and no body sent)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.putrequest("POST", "/event")
        connection.putheader("Content-Length", str(10 ** 15))
        connection.endheaders()
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    assert response.status == 413, body
    return int(re.fullmatch(rb"request body larger than (\d+) bytes", body).group(1))


def test_body_limit_follows_the_memory_limit(contract: Launcher, guarded_runtime: RuntimeServer) -> None:
    # without FUNC_MEMFILE_MAX, a quarter of FUNC_MEMORY_LIMIT (the guarded runtime's is the tests' 128Mi), at most
    # 100 MiB; FUNC_MEMFILE_MAX as given, even over the quarter (quantities: test_<runtime>_runtime.py)
    cases = [({"FUNC_MEMORY_LIMIT": "1Gi"}, 100 << 20), ({"FUNC_MEMORY_LIMIT": "0"}, 100 << 20),
             ({"FUNC_MEMORY_LIMIT": "16Mi", "FUNC_MEMFILE_MAX": str(8 << 20)}, 8 << 20)]
    servers = [contract.launch(**env) for env, _ in cases]  # started together, then asked one by one
    try:
        limits = [body_limit(wait_until_healthy(server)) for server in servers]
    finally:
        for server in servers:
            stop(server.process)
    assert limits == [limit for _, limit in cases]
    assert body_limit(guarded_runtime) == 32 << 20


# --- results and failures ---------------------------------------------------------------------------------------

RESULTS = [  # path, status, Content-Type, body (JSON as a value: the runtimes space it differently)
    ("/text", 200, "text/plain; charset=utf-8", b"hello"),
    ("/bytes", 200, "application/octet-stream", b"\x00\x01"),
    ("/json", 200, "application/json", {"a": [1, 2]}),
    ("/number", 200, "application/json", 42),
    ("/none", 200, None, b""),
    ("/created", 201, "text/plain; charset=utf-8", b"created"),
    ("/custom", 202, "application/vnd.test+json", {"ok": True}),
    ("/no-content", 204, "text/plain; charset=utf-8", b""),
]


@pytest.mark.parametrize("flavour", TYPED, indirect=True)
@pytest.mark.parametrize("path, status, content_type, body", RESULTS)
def test_results_become_responses(flavour: Flavour, runtime: RuntimeServer, path: str, status: int,
                                  content_type: str | None, body: Any) -> None:
    if not isinstance(body, bytes):
        body = json.dumps(body, separators=flavour.json_separators).encode()
    response = runtime.request("GET", path)
    assert (response.status, response.headers["Content-Type"], response.body) == (status, content_type, body)
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["Content-Length"] == (None if status == 204 else str(len(body)))


@pytest.mark.parametrize("flavour", TYPED, indirect=True)
def test_headers_set_by_the_function_are_sent(runtime: RuntimeServer) -> None:
    response = runtime.request("GET", "/custom")
    assert response.headers["X-Custom"] == "yes"
    assert response.headers.get_all("Content-Type") == ["application/vnd.test+json"]


@pytest.mark.parametrize("flavour, path, body", each_flavour("invalid_results"), indirect=["flavour"])
def test_invalid_results_are_server_errors(runtime: RuntimeServer, path: str, body: bytes) -> None:
    response = runtime.request("GET", path)
    assert (response.status, response.body) == (500, body)
    assert "Injected" not in response.headers


@pytest.mark.parametrize("flavour, path, body, trace", each_flavour("failures"), indirect=["flavour"])
def test_failure_is_a_500_and_counted(runtime: RuntimeServer, path: str, body: bytes, trace: str) -> None:
    failures_before = runtime.metric('function_failures_total{method="PATCH"}')
    response = runtime.request("PATCH", path)
    assert (response.status, response.body) == (500, body)
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert runtime.metric('function_failures_total{method="PATCH"}') == failures_before + 1
    assert trace.replace("{dir}", str(runtime.stderr.parent)) in runtime.stderr.read_text()
    assert runtime.request("GET", "/text").status == 200


# --- metrics, CORS, HTTP ----------------------------------------------------------------------------------------

def test_metrics_are_prometheus_text(runtime: RuntimeServer) -> None:
    for _ in range(3):
        runtime.request("DELETE", "/text")
    response = runtime.request("GET", "/metrics")
    assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
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


def test_healthz_metrics_and_preflight_are_not_calls(runtime: RuntimeServer) -> None:
    calls_before = runtime.metric('function_calls_total{method="GET"}')
    runtime.request("GET", "/healthz")
    runtime.request("OPTIONS", "/")
    assert runtime.metric('function_calls_total{method="GET"}') == calls_before
    assert 'method="OPTIONS"' not in runtime.request("GET", "/metrics").body.decode()


def test_cors_preflight(runtime: RuntimeServer) -> None:
    response = runtime.request("OPTIONS", "/anything", headers={
        "Origin": "https://example.com", "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "content-type, x-token"})
    assert response.status == 204
    assert response.headers["Access-Control-Allow-Methods"] == "PUT"
    assert response.headers["Access-Control-Allow-Headers"] == "content-type, x-token"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    default = runtime.request("OPTIONS", "/")
    assert default.headers["Access-Control-Allow-Methods"] == "GET, POST, PUT, PATCH, DELETE, OPTIONS"


def test_malformed_request_gets_400_and_close(flavour: Flavour, runtime: RuntimeServer) -> None:
    with socket.create_connection(("127.0.0.1", runtime.port), timeout=5) as raw:
        raw.sendall(b"NONSENSE\r\n\r\n")
        reply = b""
        while chunk := raw.recv(4096):
            reply += chunk
    status_line, *headers = reply.split(b"\r\n\r\n")[0].decode().split("\r\n")
    assert status_line.startswith("HTTP/1.1 400 ")
    assert set(flavour.malformed) <= set(headers)


def test_keep_alive_serves_many_requests_on_one_connection(flavour: Flavour, runtime: RuntimeServer) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", runtime.port, timeout=10)
    try:
        connection.connect()
        first_socket = connection.sock
        for body in (b"one", b"two", b"three"):
            connection.request("POST", "/event", body=body)
            response = connection.getresponse()
            assert json.loads(response.read())["data"]["value"] == body.decode()
            assert response.getheader("Connection") == flavour.keep_alive
            assert response.getheader("Content-Length") is not None
        assert connection.sock is first_socket
    finally:
        connection.close()


def test_calls_run_concurrently(runtime: RuntimeServer) -> None:
    started = time.monotonic()
    with ThreadPoolExecutor(20) as pool:
        responses = list(pool.map(lambda _: runtime.request("GET", "/sleep?s=1"), range(20)))
    assert [response.body for response in responses] == [b"slept"] * 20
    assert time.monotonic() - started < 1.6


def test_access_log_line_per_request(runtime: RuntimeServer) -> None:
    path = f"/log-{uuid.uuid4().hex}?q=1"
    runtime.request("GET", path)
    deadline = time.monotonic() + 2
    while not re.search(rf"^\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\dZ GET {re.escape(path)} 200 \d+\.\d{{3}}ms$",
                        runtime.stdout.read_text(), re.MULTILINE):
        assert time.monotonic() < deadline, "no access log line"
        time.sleep(0.02)


# --- slow clients and the connection bound ----------------------------------------------------------------------

def trickle(port: int, head: bytes, drip: Iterator[int] | bytes = b"", every: float = 0.1,
            limit: float = 5.0) -> tuple[bytes, float]:
    """A slow client: sends `head` at once, then a byte of `drip` every `every` s, until the server closes the
    connection. What the server answered, and when it closed (seconds after the head)."""
    reply = b""
    drip = iter(drip)
    with socket.create_connection(("127.0.0.1", port), timeout=limit) as client:
        started = time.monotonic()
        try:
            client.sendall(head)
            while time.monotonic() - started < limit:
                if select.select([client], [], [], every)[0]:
                    chunk = client.recv(65536)
                    if not chunk:
                        break
                    reply += chunk
                elif (byte := next(drip, None)) is not None:
                    client.send(bytes([byte]))
            else:
                pytest.fail(f"the server did not close the connection of a slow client; it answered {reply!r}")
        except (ConnectionResetError, BrokenPipeError):
            pass
    return reply, time.monotonic() - started


def test_slow_clients_are_cut_off_while_others_are_served(flavour: Flavour, guarded_runtime: RuntimeServer) -> None:
    # FUNC_HEADER_TIMEOUT=0.5 and FUNC_READ_TIMEOUT=0.5; each slow client sends a byte every 0.1 s, which no
    # timeout between bytes would ever stop
    port = guarded_runtime.port
    with ThreadPoolExecutor(4) as pool:
        silent = pool.submit(trickle, port, b"")  # opens a connection, sends nothing
        slow_head = pool.submit(trickle, port, b"GET /text HTTP/1.1\r\nHost: x\r\n", itertools.cycle(b"X-Slow: 1\r\n"))
        slow_body = pool.submit(trickle, port, b"POST /event HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n",
                                b"x" * 1000)
        idle = pool.submit(trickle, port, b"GET /text HTTP/1.1\r\nHost: x\r\n\r\n")  # kept alive, then idle
        served = []
        for _ in range(5):  # meanwhile, other clients are served
            served.append(guarded_runtime.request("GET", "/text").body)
            time.sleep(0.08)
        results = {name: future.result() for name, future in
                   [("silent", silent), ("slow head", slow_head), ("slow body", slow_body), ("idle", idle)]}
    assert served == [b"hello"] * 5
    for name, (reply, seconds) in results.items():
        late = flavour.idle_buffer if name == "idle" else 0
        assert 0.4 <= seconds < 1.5 + late, f"{name}: closed after {seconds:.2f} s, not about {0.5 + late} s"
    assert results["silent"][0] == b""
    reply = results["slow head"][0]
    assert any(reply.startswith(start) and reply.endswith(end) if start else reply == b""
               for start, end in flavour.late_head), reply
    reply = results["slow body"][0]
    assert reply.startswith(b"HTTP/1.1 408 ") and reply.endswith(b"request body not received within 0.5 s")
    assert re.match(rb"HTTP/1.1 200 .*hello$", results["idle"][0], re.DOTALL)
    assert guarded_runtime.process.poll() is None


def test_connections_beyond_the_bound_get_probes_only(contract: Launcher) -> None:
    with contract.running(FUNC_MAX_CONNECTIONS="2") as server, ThreadPoolExecutor(2) as pool:
        calls = [pool.submit(server.request, "GET", "/sleep?s=0.7") for _ in range(2)]
        time.sleep(0.2)  # the two connections are taken
        started = time.monotonic()
        health = server.request("GET", "/healthz", timeout=2)
        metrics = server.request("GET", "/metrics", timeout=2)
        refused = server.request("GET", "/text", timeout=2)
        answered = time.monotonic() - started
        reserve = [socket.create_connection(("127.0.0.1", server.port), timeout=2)
                   for _ in range(RESERVE_CONNECTIONS)]
        try:
            time.sleep(0.1)  # accepted: the reserve is full
            beyond, beyond_closed = trickle(server.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        finally:
            for connection in reserve:
                connection.close()
        slept = [call.result().body for call in calls]
        deadline = time.monotonic() + 3  # the places are given back as the connections close
        while (again := server.request("GET", "/text")).status == 503 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert answered < 1  # not after the calls
    assert (health.status, health.body, health.headers["Connection"]) == (200, b"OK", "close")
    assert metrics.status == 200 and b"function_calls_total" in metrics.body
    assert (refused.status, refused.body, refused.headers["Connection"]) == (503, b"too many connections", "close")
    assert refused.headers["Access-Control-Allow-Origin"] == "*"
    assert (beyond, beyond_closed < 0.5) == (b"", True)  # closed at once, not after the reserve's second
    assert slept == [b"slept"] * 2
    assert (again.status, again.body) == (200, b"hello")


# --- timeouts and stopping --------------------------------------------------------------------------------------

def test_timeout_answers_408_and_counts_stuck_calls(timeout_runtime: RuntimeServer) -> None:
    failures_before = timeout_runtime.metric('function_failures_total{method="GET"}')
    started = time.monotonic()
    with ThreadPoolExecutor(2) as pool:
        responses = list(pool.map(lambda _: timeout_runtime.request("GET", "/sleep?s=1.2"), range(2)))
    assert time.monotonic() - started < 1.0
    for response in responses:
        assert (response.status, response.body) == (408, b"Function timed out after 0.3 s")
        assert response.headers["Connection"] == "close"
        assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert timeout_runtime.metric('function_failures_total{method="GET"}') == failures_before + 2
    assert timeout_runtime.metric("function_stuck_calls") == 2
    assert timeout_runtime.request("GET", "/healthz").status == 503
    assert timeout_runtime.request("GET", "/text").body == b"hello"

    deadline = time.monotonic() + 5
    while timeout_runtime.metric("function_stuck_calls") != 0:
        assert time.monotonic() < deadline, "stuck calls never finished"
        time.sleep(0.05)
    assert timeout_runtime.request("GET", "/healthz").status == 200
    assert "discarded the late result of GET /sleep?s=1.2" in timeout_runtime.stderr.read_text()
    assert timeout_runtime.process.poll() is None


def test_sigterm_lets_running_call_finish(contract: Launcher) -> None:
    with contract.running() as server:
        result: list[Response] = []
        caller = threading.Thread(target=lambda: result.append(server.request("GET", "/sleep?s=0.8")))
        caller.start()
        time.sleep(0.3)
        server.process.send_signal(signal.SIGTERM)
        caller.join(timeout=5)
        assert server.process.wait(timeout=5) == 0
        assert result and (result[0].status, result[0].body) == (200, b"slept")
        assert result[0].headers["Connection"] == "close"
        assert "GET /sleep?s=0.8 200 " in server.stdout.read_text()  # the access log is flushed at exit


def refuses_connections(port: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except (ConnectionRefusedError, ConnectionResetError):  # reset: it was in the backlog of a closing socket
            return True
        time.sleep(0.02)
    return False


def test_sigterm_drains_calls_for_the_grace_period(contract: Launcher) -> None:
    # FUNC_GRACE_PERIOD is the pod's terminationGracePeriodSeconds; the drain ends a tenth of it (at most 1 s) early
    patient, hasty = contract.launch(FUNC_GRACE_PERIOD="10"), contract.launch(FUNC_GRACE_PERIOD="0.5")
    try:
        for server in (patient, hasty):
            wait_until_healthy(server)
        with ThreadPoolExecutor(2) as pool:
            finishing = pool.submit(patient.request, "GET", "/sleep?s=1.2")
            cut_short = pool.submit(hasty.request, "GET", "/sleep?s=4")
            time.sleep(0.2)
            signalled = time.monotonic()
            patient.process.send_signal(signal.SIGTERM)
            hasty.process.send_signal(signal.SIGTERM)
            refusing = refuses_connections(patient.port, within=1)
            hasty_code, hasty_exit = hasty.process.wait(timeout=5), time.monotonic() - signalled
            response, answered = finishing.result(timeout=5), time.monotonic() - signalled
            patient_code, patient_exit = patient.process.wait(timeout=5), time.monotonic() - signalled
            with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
                cut_short.result(timeout=5)
    finally:
        for server in (patient, hasty):
            stop(server.process)
    assert refusing  # new connections are refused while the call runs on
    assert (response.status, response.body) == (200, b"slept")
    assert (patient_code, hasty_code) == (0, 0)
    assert patient_exit - answered < 1.5  # once its call is done, not at the end of the drain
    assert 0.3 < hasty_exit < 1.5  # after 0.45 s, not after its call's 4 s


def test_sigint_stops_too(contract: Launcher) -> None:
    with contract.running() as server:
        server.process.send_signal(signal.SIGINT)
        assert server.process.wait(timeout=5) == 0


# --- refusing to start ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("overrides, expected", [
    ({"FUNC_TIMEOUT": "soon"}, "invalid configuration: FUNC_TIMEOUT must be a number, got 'soon'"),
    ({"FUNC_TIMEOUT": "0"}, "invalid configuration: FUNC_TIMEOUT must be at least 0.001, got '0'"),
    ({"FUNC_MAX_STUCK": "0"}, "invalid configuration: FUNC_MAX_STUCK must be at least 1, got '0'"),
    ({"FUNC_PORT": "80.5"}, "invalid configuration: FUNC_PORT must be a number, got '80.5'"),
    ({"FUNC_MEMFILE_MAX": "-1"}, "invalid configuration: FUNC_MEMFILE_MAX must be at least 0, got '-1'"),
    # the other limits' refusals: test_<runtime>_runtime.py
    ({"FUNC_MAX_CONNECTIONS": "0"}, "invalid configuration: FUNC_MAX_CONNECTIONS must be at least 1, got '0'"),
])
def test_bad_configuration_exits_1_with_message(contract: Launcher, overrides: dict[str, str],
                                                expected: str) -> None:
    refusal = contract.refusal(**overrides)
    assert refusal.exit_code == 1
    assert expected in refusal.stderr
    assert refusal.termination_log == expected + "\n"


def test_port_in_use_exits_1(flavour: Flavour, contract: Launcher) -> None:
    with socket.socket() as occupant:
        occupant.bind(("127.0.0.1", 0))
        occupant.listen()
        port = occupant.getsockname()[1]
        refusal = contract.refusal(FUNC_PORT=str(port))
    assert refusal.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}: {flavour.listen_error}" in refusal.stderr


@pytest.mark.parametrize("flavour, module, source, expected", each_flavour("unloadable"), indirect=["flavour"])
def test_unloadable_handler_exits_1_with_message(flavour: Flavour, tmp_path: Path, module: str, source: str | None,
                                                 expected: str) -> None:
    if source is not None:
        (tmp_path / f"{module}{flavour.suffix}").write_text(source)
    refusal = flavour.runtime(tmp_path).refusal(MOD_NAME=module)
    expected = expected.replace("{dir}", str(tmp_path))
    assert refusal.exit_code == 1
    assert expected in refusal.stderr
    assert refusal.termination_log.startswith(expected)
    assert len(refusal.termination_log.strip().splitlines()) == 1
