"""What only the Node.js function runtime does, run as a real server subprocess over HTTP.

The contract it shares with the other runtimes is tested in test_runtime_contract.py (its values: NODEJS there).
The tests use `node` from PATH, or the binary named by KUBELESS_TEST_NODE (e.g. Debian's node 18, the image's),
and skip when there is none. The npm test also needs `npm` on PATH; it installs from a registry served here.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest

from kubeless_api import contract
from runtime_harness import (BAD_LIMITS, MEMORY_QUANTITIES, NO_NODE, NODE, NODE_RUNTIME, Launcher, RuntimeServer,
                             node_runtime)

NPM_INSTALL = NODE_RUNTIME.parent / "deps" / "npm-install.sh"

pytestmark = pytest.mark.skipif(not NODE, reason=NO_NODE)

FUNCTION_SOURCE = r"""
const sleep = (seconds) => new Promise((resolve) => setTimeout(resolve, seconds * 1000));

const RESULTS = {
  '/text': () => 'hello',
  '/null': () => null,
  '/promise': () => sleep(0.01).then(() => ({ later: true })),
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
      case '/sleep': return sleep(Number(request.query.s)).then(() => 'slept');
      case '/loop': for (;;) {}
      case '/async-loop': return sleep(0.01).then(() => { for (;;) {} });
      case '/timer-loop': return new Promise(() => setTimeout(() => { for (;;) {} }, 10));
      case '/hang': return new Promise(() => {});
    }
    return { query: request.query, data: event.data };
  },
};
"""


@pytest.fixture(scope="module")
def function(tmp_path_factory: pytest.TempPathFactory) -> Launcher:
    directory = tmp_path_factory.mktemp("function")
    (directory / "function.js").write_text(FUNCTION_SOURCE)
    return node_runtime(directory)


@pytest.fixture(scope="module")
def runtime(function: Launcher) -> Iterator[RuntimeServer]:
    with function.running() as server:
        yield server


@pytest.fixture(scope="module")
def timeout_runtime(function: Launcher) -> Iterator[RuntimeServer]:
    with function.running(FUNC_TIMEOUT="0.3", FUNC_MAX_STUCK="2") as server:
        yield server


def test_function_is_called_as_a_method_of_its_module(runtime: RuntimeServer) -> None:
    assert runtime.request("GET", "/this").body == b"true"


@pytest.mark.parametrize("path, status, content_type, body, content_length", [
    ("/null", 200, None, b"", "0"),
    ("/promise", 200, "application/json", b'{"later":true}', "14"),
    ("/self", 203, "text/x-self", b"answered", None),  # a function that calls writeHead frames its own response
    ("/self-later", 206, "text/plain; charset=utf-8", b"later", "5"),  # Express's res.status().send()
    ("/express", 201, "application/json", b'{"express":true}', "16"),  # and res.set().json()
])
def test_promises_and_the_response_object_become_responses(runtime: RuntimeServer, path: str, status: int,
                                                           content_type: str | None, body: bytes,
                                                           content_length: str | None) -> None:
    response = runtime.request("GET", path)
    assert (response.status, response.headers["Content-Type"], response.body) == (status, content_type, body)
    assert (response.headers["Access-Control-Allow-Origin"], response.headers["Content-Length"]) == (
        "*", content_length)


def test_express_set_sends_the_header(runtime: RuntimeServer) -> None:
    assert runtime.request("GET", "/express").headers["X-Express"] == "1"


def test_concurrent_calls_each_get_their_own_answer(runtime: RuntimeServer) -> None:
    # calls that arrive together share one vm frame (one turn of the event loop): none may get another's answer
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda n: runtime.request("POST", f"/event?n={n}", body=str(n).encode()).json(),
                                range(64)))
    assert [(result["query"]["n"], result["data"]) for result in results] == [(str(n), str(n)) for n in range(64)]


@pytest.mark.parametrize("overrides, limit", [
    ({"REQ_MB_LIMIT": "0.001"}, 1048),  # Kubeless's variable for its Node runtime, in MiB
    ({"REQ_MB_LIMIT": "0.001", "FUNC_MEMFILE_MAX": "1024"}, 1024),  # only when FUNC_MEMFILE_MAX is unset
])
def test_req_mb_limit_counts_without_func_memfile_max(function: Launcher, overrides: dict[str, str],
                                                      limit: int) -> None:
    with function.running(**overrides) as server:
        response = server.request("POST", "/event", body=b"x" * 2000, headers={"Content-Type": "text/plain"})
        assert (response.status, response.body) == (413, b"request body larger than %d bytes" % limit)
        assert server.request("POST", "/event", body=b"x" * limit).status == 200


def evaluate(script: str, value: Any) -> Any:
    """Runs `script` with the runtime's entry point as `kubeless` and `value` as `input`; what it prints, as JSON."""
    program = (f"const kubeless = require({json.dumps(str(NODE_RUNTIME))});\n"
               "const input = JSON.parse(require('fs').readFileSync(0, 'utf8'));\n" + script)
    result = subprocess.run([NODE, "-e", program], input=json.dumps(value), capture_output=True, text=True,
                            timeout=10, check=True)
    return json.loads(result.stdout)


def test_memory_limit_quantities() -> None:
    quantities = [quantity for quantity, _ in MEMORY_QUANTITIES]
    read = evaluate("console.log(JSON.stringify(input.map(kubeless.memoryLimitBytes)))", quantities)
    assert list(zip(quantities, read)) == MEMORY_QUANTITIES


def test_bad_limits_are_refused_and_defaults() -> None:
    script = """console.log(JSON.stringify(input.map((env) => {
      try { const c = kubeless.configFromEnv(env); return [c.headerTimeout, c.readTimeout, c.maxConnections,
        c.gracePeriod, c.maxBodyBytes]; } catch (error) { return error.message; }
    })));"""
    results = evaluate(script, [env for env, _ in BAD_LIMITS] + [{}])
    defaults = [contract.DEFAULT_HEADER_TIMEOUT, contract.DEFAULT_READ_TIMEOUT, contract.DEFAULT_MAX_CONNECTIONS,
                contract.DEFAULT_GRACE_PERIOD, contract.DEFAULT_BODY_LIMIT]
    assert results == [expected for _, expected in BAD_LIMITS] + [defaults]


def test_req_mb_limit_must_be_a_number(function: Launcher) -> None:
    expected = "invalid configuration: REQ_MB_LIMIT must be a number, got 'lots'"
    refusal = function.refusal(REQ_MB_LIMIT="lots")
    assert (refusal.exit_code, refusal.termination_log) == (1, expected + "\n")
    assert expected in refusal.stderr


@pytest.mark.parametrize("path, seconds", [
    ("/loop", (0.3, 0.8)),  # the synchronous part: interrupted at the deadline
    ("/async-loop", (1.0, 1.6)),  # after an await, or in a timer: terminated after max(timeout, 1 s)
    ("/timer-loop", (1.0, 1.6)),
])
def test_cpu_loop_is_stopped_with_408_and_server_keeps_serving(timeout_runtime: RuntimeServer, path: str,
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


def test_loop_among_concurrent_calls_stops_only_its_own(timeout_runtime: RuntimeServer) -> None:
    with ThreadPoolExecutor(8) as pool:
        paths = ["/text"] * 3 + ["/loop"] + ["/text"] * 4
        responses = list(pool.map(lambda path: timeout_runtime.request("GET", path), paths))
    assert [response.status for response in responses] == [200] * 3 + [408] + [200] * 4
    assert {response.body for response in responses} == {b"hello", b"Function timed out after 0.3 s"}


def test_sync_loop_costs_no_stuck_call(timeout_runtime: RuntimeServer) -> None:
    stuck_before = timeout_runtime.metric("function_stuck_calls")
    assert timeout_runtime.request("GET", "/loop").status == 408
    assert timeout_runtime.metric("function_stuck_calls") == stuck_before


def test_promise_that_never_settles_stays_stuck(function: Launcher) -> None:
    with function.running(FUNC_TIMEOUT="0.3", FUNC_MAX_STUCK="2") as server:
        assert server.request("GET", "/hang").status == 408
        assert server.metric("function_stuck_calls") == 1


def test_function_exported_directly_or_as_an_es_module(tmp_path: Path) -> None:
    (tmp_path / "direct.js").write_text("module.exports = (event) => `direct ${event.data}`;\n")
    (tmp_path / "esm").mkdir()
    (tmp_path / "esm" / "package.json").write_text('{"type": "module"}')
    (tmp_path / "esm" / "module.js").write_text("export function handle(event) { return `esm ${event.data}`; }\n")
    for directory, module, expected in ((tmp_path, "direct", b"direct x"), (tmp_path / "esm", "module", b"esm x")):
        with node_runtime(directory).running(MOD_NAME=module) as server:
            assert server.request("POST", "/", body=b"x").body == expected


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
    with node_runtime(volume).running(NODE_PATH=str(volume / "node_modules")) as server:
        assert server.request("POST", "/", body=b"ab").body == b"***ab"


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
