"""Dependencies built once: the cache server's protocol, and the init containers that use it."""
from __future__ import annotations

import http.client
import json
import threading
from dataclasses import replace
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from kubeless_api.config import KubelessConfig
from kubeless_controller.functions import render
from kubeless_depcache import protocol
from kubeless_depcache.server import Cache, handler_for

REPO = Path(__file__).resolve().parents[2]
CATALOGUE = json.loads((REPO / "kubeless_api" / "catalogue.json").read_text())
KEY = "python3.11-" + "ab" * 32


@pytest.fixture
def server(tmp_path: Path):
    cache = Cache(tmp_path, max_bytes=1000)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(cache))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_port
    httpd.shutdown()
    httpd.server_close()


def request(port: int, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    connection.request(method, path, body=body)
    response = connection.getresponse()
    return response.status, response.read()


def test_first_claim_wins_then_the_stored_tarball_is_served(server: int):
    assert request(server, "GET", f"/v1/{KEY}.tar.gz")[0] == 404
    assert request(server, "POST", f"/v1/{KEY}/claim")[0] == 201
    assert request(server, "POST", f"/v1/{KEY}/claim")[0] == 409
    assert request(server, "PUT", f"/v1/{KEY}.tar.gz", b"tarball")[0] == 201
    assert request(server, "GET", f"/v1/{KEY}.tar.gz") == (200, b"tarball")
    assert request(server, "POST", f"/v1/{KEY}/claim")[0] == 409  # cached: nobody needs to build it
    metrics = request(server, "GET", "/metrics")[1].decode()
    assert 'outcome="store"} 1' in metrics and 'outcome="hit"} 1' in metrics and "kubeless_deps_cache_entries 1" in metrics


@pytest.mark.parametrize("path", ["/v1/../etc/passwd.tar.gz", "/v1/python3.11-xyz.tar.gz", "/v1/KEY.tar.gz", "/x"])
def test_only_well_formed_keys_are_accepted(server: int, path: str):
    assert request(server, "PUT", path, b"x")[0] == 404


def test_oversized_tarballs_are_refused(server: int):
    assert request(server, "PUT", f"/v1/{KEY}.tar.gz", b"x" * 1001)[0] == 413
    assert request(server, "GET", f"/v1/{KEY}.tar.gz")[0] == 404


def test_a_stale_claim_can_be_taken_over(tmp_path: Path):
    cache = Cache(tmp_path, max_bytes=10)
    assert cache.claim(KEY, now=0.0)
    assert not cache.claim(KEY, now=protocol.CLAIM_SECONDS - 1)
    assert cache.claim(KEY, now=protocol.CLAIM_SECONDS + 1)


def function(deps: str = "requests==2.0\n", content_type: str = "text") -> dict:
    return {"metadata": {"name": "hello", "namespace": "ns", "uid": "u1", "labels": {}},
            "spec": {"handler": "hello.hello", "runtime": "python3.11", "function": "def hello(e, c): pass\n",
                     "function-content-type": content_type, "deps": deps}}


def init_names(fn: dict, config: KubelessConfig) -> list[str]:
    deployment = render.deployment(fn, render.find_runtime(CATALOGUE, "python3.11"), config)
    return [c["name"] for c in deployment["spec"]["template"]["spec"]["initContainers"]]


BASE = KubelessConfig(provision_image="localhost/kubeless/provision:test")
CACHED = replace(BASE, deps_cache_url="http://cache:8080")


def test_the_cache_wraps_install_only_when_configured_and_needed():
    assert init_names(function(), BASE) == ["prepare", "install"]
    assert init_names(function(), CACHED) == ["prepare", "deps-fetch", "install", "deps-store"]
    assert init_names(function(deps=""), CACHED) == ["prepare"]
    # an archive that carries its own deps file: the spec cannot name its content, so no cache key
    assert init_names(function(content_type="base64+zip+deps"), CACHED) == ["prepare", "install"]


def test_the_cache_key_follows_the_dependencies_and_the_installer():
    runtime = render.find_runtime(CATALOGUE, "python3.11")
    install = runtime.phases["installation"]
    key = protocol.key(runtime.id, install["image"], install["command"], "a==1\n")
    assert key.startswith("python3.11-") and protocol.ROUTE.match(f"/v1/{key}.tar.gz")
    assert key == protocol.key(runtime.id, install["image"], install["command"], "a==1\n")
    assert key != protocol.key(runtime.id, install["image"], install["command"], "a==2\n")
    assert key != protocol.key(runtime.id, install["image"], install["command"] + " -q", "a==1\n")


def test_install_env_reaches_the_install_step_and_the_function_env_wins():
    fn = function()
    fn["spec"]["deployment"] = {"spec": {"template": {"spec": {"containers": [
        {"env": [{"name": "PIP_INDEX_URL", "value": "http://mine/simple/"}]}]}}}}
    config = replace(BASE, install_env={"PIP_INDEX_URL": "http://site/simple/", "PIP_TRUSTED_HOST": "site"})
    deployment = render.deployment(fn, render.find_runtime(CATALOGUE, "python3.11"), config)
    install = next(c for c in deployment["spec"]["template"]["spec"]["initContainers"] if c["name"] == "install")
    values = [e["value"] for e in install["env"] if e["name"] == "PIP_INDEX_URL"]
    assert values == ["http://site/simple/", "http://mine/simple/"]  # Kubernetes takes the last one
    assert {"name": "PIP_TRUSTED_HOST", "value": "site"} in install["env"]
