"""What only the Go runtime does: its compile script, run on this machine's Go, and the server it builds, over HTTP.

The contract it shares with the other runtimes is tested in test_runtime_contract.py (its values: GOLANG there).
The compile script runs as the `compile` init container would, on a temporary folder standing for /kubeless, with
the seed's function (hello.go + go.mod, unmodified) and with functions of the tests. Builds use this machine's Go
build cache, so only the first run on a machine compiles the standard library.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import re
import subprocess
import threading
import time
import zipfile
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest

from runtime_harness import (GO, GO_MOD, GO_RUNTIME, NO_GO, Compilation, RuntimeServer, compile_function, compiled,
                             go_build_env, go_server)

pytestmark = pytest.mark.skipif(GO is None, reason=NO_GO)

SEED_HELLO_GO = """package kubeless

import (
	"github.com/kubeless/kubeless/pkg/functions"
)

func Hello(event functions.Event, context functions.Context) (string, error) {
	return "hello world!", nil
}
"""

# What Go's functions can do that the contract function does not: the request's context and Body, and the
# ResponseWriter. Written for go 1.14, the seed's go line: no generics, no `any`.
HANDLE_GO = r"""package kubeless

import (
	"encoding/json"
	"io"
	"io/ioutil"
	"net/http"
	"time"

	"github.com/kubeless/kubeless/pkg/functions"
)

func Handle(event functions.Event, context functions.Context) (string, error) {
	request, response := event.Extensions.Request, event.Extensions.Response
	switch request.URL.Path {
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
		"data": event.Data, "body": string(body), "deadline-in": time.Until(deadline).Seconds(),
	})
	return string(result), err
}
"""


@pytest.fixture(scope="module")
def go_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return go_build_env(tmp_path_factory.mktemp("gopath"))


@pytest.fixture(scope="module")
def seed(go_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Compilation:
    return compiled(go_env, tmp_path_factory.mktemp("seed") / "kubeless", "Hello",
                    {"hello.go": SEED_HELLO_GO, "go.mod": GO_MOD})


@pytest.fixture(scope="module")
def handle_binary(go_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return compiled(go_env, tmp_path_factory.mktemp("handle") / "kubeless", "Handle",
                    {"handle.go": HANDLE_GO, "go.mod": GO_MOD}).server


@pytest.fixture(scope="module")
def server(handle_binary: Path) -> Iterator[RuntimeServer]:
    with go_server(handle_binary, "handle", "Handle").running() as server:
        yield server


@pytest.fixture(scope="module")
def timeout_server(handle_binary: Path) -> Iterator[RuntimeServer]:
    with go_server(handle_binary, "handle", "Handle").running(FUNC_TIMEOUT="0.3", FUNC_MAX_STUCK="2") as server:
        yield server


# --- compilation ------------------------------------------------------------------------------------------------

def test_seed_function_compiles_and_says_hello(seed: Compilation) -> None:
    assert "compiled " in seed.output.splitlines()[-1]
    assert (seed.volume / "go.mod").read_text() == GO_MOD  # the function's folder is left as it was
    with go_server(seed.server, "hello", "Hello").running() as server:
        response = server.request("GET", "/")
        assert (response.status, response.body) == (200, b"hello world!")
        assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert server.stdout.read_text().startswith(f"serving hello.Hello on 127.0.0.1:{server.port}\n")


def test_compile_error_ends_the_output(go_env: dict[str, str], tmp_path: Path) -> None:
    broken = SEED_HELLO_GO.replace('return "hello world!", nil', "return 42, nil")
    compilation = compile_function(go_env, tmp_path / "kubeless", "Hello", {"hello.go": broken, "go.mod": GO_MOD})
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
                                   {"hello.go": SEED_HELLO_GO, "go.mod": GO_MOD})
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
    with go_server(compilation.server, "greet", "Greet").running() as server:
        assert server.request("POST", "/", body=b"there").body == b"hi there"


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
    with go_server(compilation.server, "greet", "Greet").running() as server:
        assert server.request("POST", "/", body=b"gopher").body == b"hello, gopher"


def test_third_party_module_without_goproxy_fails_with_a_hint(go_env: dict[str, str], tmp_path: Path) -> None:
    compilation = compile_function(go_env, tmp_path / "kubeless", "Greet",
                                   {"greet.go": GREETING_USER_GO, "go.mod": GREETING_GO_MOD},
                                   GOPATH=str(tmp_path / "empty-gopath"))  # the session's has example.com/greeting
    assert compilation.returncode != 0
    assert "set KUBELESS_GOPROXY" in compilation.output
    assert "module lookup disabled by GOPROXY=off" in compilation.output.strip().splitlines()[-1]


# --- the server ----------------------------------------------------------------------------------------------

def test_server_package_unit_tests(go_env: dict[str, str]) -> None:
    """Go tests of what HTTP does not show well: the configuration's parsing and the histogram's buckets."""
    # The compile script's flags, so that the standard library compiled for the functions serves here too.
    result = subprocess.run([GO, "test", "-trimpath", "-gcflags=all=-dwarf=false", "./..."],
                            cwd=GO_RUNTIME / "kubeless", capture_output=True, text=True,
                            timeout=120, env={**os.environ, "GOCACHE": go_env["GOCACHE"], "GOPROXY": "off",
                                              "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=mod", "CGO_ENABLED": "0"})
    assert result.returncode == 0, result.stdout + result.stderr


def test_extensions_context_carries_func_timeout(server: RuntimeServer) -> None:
    assert 4 < server.request("GET", "/event").json()["deadline-in"] <= 5


@pytest.mark.parametrize("content_type, body", [
    ("application/json", b'{"a": 1}'),
    ("text/plain; charset=utf-8", "caf\u00e9".encode()),
    (None, b"plain"),
])
def test_data_is_the_body_as_a_string(server: RuntimeServer, content_type: str | None, body: bytes) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    result = server.request("POST", "/event", body=body, headers=headers).json()
    assert result["data"] == result["body"] == body.decode()  # the request's Body can be read again


def test_function_that_writes_its_response_owns_it(server: RuntimeServer) -> None:
    response = server.request("GET", "/write")
    assert (response.status, response.body) == (201, b'{"written": true}')
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["X-Custom"] == "yes"
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_function_that_sets_status_or_headers_only(server: RuntimeServer) -> None:
    response = server.request("GET", "/status-only")
    assert (response.status, response.body) == (202, b"accepted")
    response = server.request("GET", "/header-only")
    assert (response.status, response.body, response.headers["X-Custom"]) == (200, b"with a header", "yes")
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"


def test_function_can_abort_the_connection(server: RuntimeServer) -> None:
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        server.request("GET", "/abort")
    assert server.request("GET", "/healthz").status == 200


def test_timeout_after_the_function_started_writing_cuts_the_connection(timeout_server: RuntimeServer) -> None:
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
