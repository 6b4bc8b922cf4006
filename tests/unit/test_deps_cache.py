"""Dependencies built once, and nobody else's: the cache server's protocol, how it learns whose a token is (a
TokenReview, answered here by a fake API server on loopback), the init containers' scripts, the key that names a
build, and the pod volume that carries the token."""
from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import socket
import subprocess
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from kubeless_api import contract, meta
from kubeless_api.config import KubelessConfig
from kubeless_api.resources import path as api_path
from kubeless_controller.functions import render
from kubeless_depcache import protocol
from kubeless_depcache.server import Cache, ReviewFailed, TokenReviewer, Verdicts, handler_for
from test_controller_reconcile import FakeApi, make_controller
from test_controller_reconcile import function as reconciled_function

REPO = Path(__file__).resolve().parents[2]
CATALOGUE = json.loads((REPO / "kubeless_api" / "catalogue.json").read_text())
KEY = "python3.11-" + "ab" * 32 + "@ns"
SHARED_KEY = "python3.11-" + "ef" * 32
TOKEN = "token-of-ns"          # a function pod's of namespace ns
THIEF = "token-of-other"       # a pod's of namespace other
CACHE_TOKEN = "the-cache's-own-token"


# --- a fake API server: TokenReviews only ----------------------------------------------------------------------

class FakeReviews:
    """Answers POST tokenreviews as the API server does, for the tokens in `tokens` (token: (user name,
    audiences)); records each review's token. `failing`: answer 500."""
    REVIEWS = "/apis/authentication.k8s.io/v1/tokenreviews"

    def __init__(self):
        self.tokens = {TOKEN: ("system:serviceaccount:ns:default", [protocol.AUDIENCE]),
                       THIEF: ("system:serviceaccount:other:default", [protocol.AUDIENCE]),
                       "api-audience": ("system:serviceaccount:ns:default", ["https://kubernetes.default.svc"]),
                       "no-audience": ("system:serviceaccount:ns:default", []),
                       "a-user": ("alice", [protocol.AUDIENCE])}
        self.reviewed: list[str] = []
        self.bearers: list[str] = []
        self.failing = False
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.bearers.append(self.headers["Authorization"])
                fake.reviewed.append(review["spec"]["token"])
                assert self.path == fake.REVIEWS and review["kind"] == "TokenReview"
                assert review["spec"]["audiences"] == [protocol.AUDIENCE]
                user, audiences = fake.tokens.get(review["spec"]["token"], (None, []))
                status = {"authenticated": True, "user": {"username": user}, "audiences": audiences} if user \
                    else {"authenticated": False, "error": "invalid bearer token"}
                body = b"etcd is down" if fake.failing else json.dumps({**review, "status": status}).encode()
                self.send_response(500 if fake.failing else 201)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args) -> None:  # noqa: A002 - http.server's signature
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def reviewer(self, token_file: Path) -> TokenReviewer:
        return TokenReviewer("127.0.0.1", self.httpd.server_port, token_file=token_file, context=None)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def reviews():
    fake = FakeReviews()
    yield fake
    fake.close()


class Server:
    def __init__(self, cache: Cache, port: int):
        self.cache, self.port = cache, port

    def request(self, method: str, path: str, body: bytes | None = None, *, token: str | None = TOKEN,
                headers: dict | None = None) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        headers = dict(headers or {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if method == "PUT" and body is not None:
            headers.setdefault(protocol.DIGEST_HEADER, hashlib.sha256(body).hexdigest())
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()


def serve(cache: Cache):
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(cache))
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    return httpd


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def server(tmp_path: Path, reviews: FakeReviews, clock: Clock):
    root = tmp_path / "cache"
    root.mkdir()
    (tmp_path / "sa-token").write_text(CACHE_TOKEN + "\n")
    cache = Cache(root, max_bytes=1000, verdicts=Verdicts(reviews.reviewer(tmp_path / "sa-token").namespace_of,
                                                          clock=clock))
    httpd = serve(cache)
    yield Server(cache, httpd.server_port)
    httpd.shutdown()
    httpd.server_close()


# --- the server ------------------------------------------------------------------------------------------------

def test_first_claim_wins_then_the_stored_tarball_is_served_with_its_sha256(server: Server):
    assert server.request("GET", f"/v1/{KEY}.tar.gz")[0] == 404
    assert server.request("POST", f"/v1/{KEY}/claim")[0] == 201
    assert server.request("POST", f"/v1/{KEY}/claim")[0] == 409
    assert server.request("PUT", f"/v1/{KEY}.tar.gz", b"tarball")[0] == 201
    assert server.request("GET", f"/v1/{KEY}.tar.gz") == (200, b"tarball")
    assert server.request("GET", f"/v1/{KEY}.sha256") == (200, hashlib.sha256(b"tarball").hexdigest().encode() + b"\n")
    assert server.request("POST", f"/v1/{KEY}/claim")[0] == 409  # cached: nobody needs to build it
    metrics = server.request("GET", "/metrics", token=None)[1].decode()
    assert 'outcome="store"} 1' in metrics and 'outcome="hit"} 1' in metrics and "kubeless_deps_cache_entries 1" in metrics


@pytest.mark.parametrize("method, path", [("GET", f"/v1/{KEY}.tar.gz"), ("GET", f"/v1/{KEY}.sha256"),
                                          ("POST", f"/v1/{KEY}/claim"), ("PUT", f"/v1/{KEY}.tar.gz")])
def test_every_request_needs_a_token_of_the_namespace_that_owns_the_key(server: Server, method: str, path: str):
    body = b"poison" if method == "PUT" else None
    assert server.request(method, path, body, token=None)[0] == 401
    assert server.request(method, path, body, headers={"Authorization": f"Basic {TOKEN}"}, token=None)[0] == 401
    assert server.request(method, path, body, token=THIEF)[0] == 403, "another namespace's"
    assert server.request(method, path, body, token="api-audience")[0] == 403, "a token for the API server"
    assert server.request(method, path, body, token="no-audience")[0] == 403, "an API server blind to audiences"
    assert server.request(method, path, body, token="a-user")[0] == 403, "no service account's"
    assert server.request(method, path, body, token="forged")[0] == 403
    # nothing was claimed or stored: the owner still builds and stores its own
    assert server.request("POST", f"/v1/{KEY}/claim")[0] == 201
    assert server.request("PUT", f"/v1/{KEY}.tar.gz", b"tarball")[0] == 201
    assert 'outcome="unauthorized"} 7' in server.request("GET", "/metrics", token=None)[1].decode()


def test_a_stored_tarball_is_read_by_its_own_namespace_only(server: Server):
    assert server.request("PUT", f"/v1/{KEY}.tar.gz", b"private packages")[0] == 201
    assert server.request("GET", f"/v1/{KEY}.tar.gz", token=THIEF)[0] == 403
    assert server.request("GET", f"/v1/{KEY}.sha256", token=THIEF)[0] == 403
    assert server.request("GET", f"/v1/{KEY}.tar.gz") == (200, b"private packages")


def test_a_shared_key_is_open_to_every_namespace_but_still_written_once(server: Server):
    assert server.request("POST", f"/v1/{SHARED_KEY}/claim", token="forged")[0] == 403
    assert server.request("POST", f"/v1/{SHARED_KEY}/claim", token="api-audience")[0] == 403
    assert server.request("POST", f"/v1/{SHARED_KEY}/claim", token=THIEF)[0] == 201
    assert server.request("PUT", f"/v1/{SHARED_KEY}.tar.gz", b"first", token=THIEF)[0] == 201
    assert server.request("PUT", f"/v1/{SHARED_KEY}.tar.gz", b"second")[0] == 409
    assert server.request("GET", f"/v1/{SHARED_KEY}.tar.gz") == (200, b"first")


def test_a_verdict_is_held_for_a_while_by_the_tokens_hash(server: Server, reviews: FakeReviews, clock: Clock):
    for _ in range(3):
        assert server.request("POST", f"/v1/{KEY}/claim")[0] in (201, 409)
        assert server.request("GET", f"/v1/{KEY}.tar.gz", token=THIEF)[0] == 403
    assert reviews.reviewed == [TOKEN, THIEF], "one review per token"
    assert reviews.bearers == [f"Bearer {CACHE_TOKEN}"] * 2, "as the cache's own service account"
    held = repr(server.cache.verdicts._held)
    assert TOKEN not in held and hashlib.sha256(TOKEN.encode()).hexdigest() in held
    clock.now = Verdicts.VERDICT_SECONDS
    reviews.tokens.pop(TOKEN)  # its pod is gone: the token no longer authenticates
    assert server.request("POST", f"/v1/{KEY}/claim")[0] == 403
    assert reviews.reviewed == [TOKEN, THIEF, TOKEN]


def test_without_a_review_nothing_is_served_or_stored(server: Server, reviews: FakeReviews):
    reviews.failing = True
    assert server.request("POST", f"/v1/{KEY}/claim")[0] == 503
    assert server.request("PUT", f"/v1/{KEY}.tar.gz", b"tarball")[0] == 503
    reviews.failing = False  # a failed review is not held
    assert server.request("POST", f"/v1/{KEY}/claim")[0] == 201
    assert not server.cache.path(KEY).exists()


def test_an_unreachable_api_server_is_a_failed_review(tmp_path: Path):
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    (tmp_path / "sa-token").write_text(CACHE_TOKEN)
    reviewer = TokenReviewer("127.0.0.1", port, token_file=tmp_path / "sa-token", context=None, timeout=2)
    with pytest.raises(ReviewFailed):
        reviewer.namespace_of(TOKEN)


def test_the_caches_own_token_is_read_at_each_review(tmp_path: Path, reviews: FakeReviews):
    own = tmp_path / "sa-token"
    own.write_text("first\n")
    reviewer = reviews.reviewer(own)
    assert reviewer.namespace_of(TOKEN) == "ns"
    own.write_text("renewed\n")  # the kubelet renews it
    assert reviewer.namespace_of(THIEF) == "other"
    assert reviews.bearers == ["Bearer first", "Bearer renewed"]


def test_the_reviewer_in_a_pod_uses_the_pods_service_account(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(KeyError):
        TokenReviewer.in_cluster()


def test_held_verdicts_are_bounded(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(Verdicts, "MAX_HELD", 2)
    verdicts = Verdicts(lambda token: "ns")
    for token in ("a", "b", "c"):
        assert verdicts.namespace_of(token) == "ns"
    assert len(verdicts._held) == 2


def test_the_owner_of_a_key_and_the_namespace_of_a_service_account():
    assert protocol.owner(KEY) == "ns" and protocol.owner(SHARED_KEY) is None
    assert protocol.token_namespace("system:serviceaccount:team-a:builder") == "team-a"
    for not_one in ("alice", "system:serviceaccount:team-a", "system:serviceaccount::x", "system:node:n1"):
        assert protocol.token_namespace(not_one) is None


def test_an_entry_is_never_replaced(server: Server):
    assert server.request("PUT", f"/v1/{KEY}.tar.gz", b"tarball")[0] == 201
    status, answer = server.request("PUT", f"/v1/{KEY}.tar.gz", b"poison")
    assert (status, answer) == (409, b"already stored: entries are never replaced\n")
    assert server.request("GET", f"/v1/{KEY}.tar.gz") == (200, b"tarball")
    assert server.request("GET", f"/v1/{KEY}.sha256")[1] == hashlib.sha256(b"tarball").hexdigest().encode() + b"\n"


def test_a_put_must_carry_the_sha256_of_its_body(server: Server):
    path = f"/v1/{KEY}.tar.gz"
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    connection.request("PUT", path, body=b"tarball", headers={"Authorization": f"Bearer {TOKEN}"})
    assert connection.getresponse().status == 400
    assert server.request("PUT", path, b"tarball", headers={protocol.DIGEST_HEADER: "0" * 64})[0] == 400
    assert not server.cache.path(KEY).exists()
    assert not [p for p in server.cache.root.iterdir() if p.name.startswith(".upload-")], "no upload left behind"


@pytest.mark.parametrize("path", ["/v1/../etc/passwd.tar.gz", "/v1/python3.11-xyz.tar.gz", "/v1/KEY.tar.gz", "/x",
                                  f"/v1/{SHARED_KEY}@NS.tar.gz", f"/v1/{SHARED_KEY}@-ns.tar.gz",
                                  f"/v1/{SHARED_KEY}@ns@other.tar.gz", f"/v1/{SHARED_KEY}@.tar.gz"])
def test_only_well_formed_keys_are_accepted(server: Server, path: str):
    assert server.request("PUT", path, b"x")[0] == 404


def test_oversized_tarballs_are_refused(server: Server):
    assert server.request("PUT", f"/v1/{KEY}.tar.gz", b"x" * 1001)[0] == 413
    assert server.request("GET", f"/v1/{KEY}.tar.gz")[0] == 404


def put_asking_first(port: int, token: str) -> bytes:
    """A PUT as curl sends a large body: headers only, `Expect: 100-continue`, and the body only after a 100."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.sendall(f"PUT /v1/{KEY}.tar.gz HTTP/1.1\r\nHost: cache\r\nContent-Length: 500\r\n"
                           f"Expect: 100-continue\r\nAuthorization: Bearer {token}\r\n"
                           f"{protocol.DIGEST_HEADER}: {'0' * 64}\r\n\r\n".encode())
        return connection.recv(200)


def test_a_refused_put_is_answered_before_its_body_is_sent(server: Server):
    assert put_asking_first(server.port, THIEF).startswith(b"HTTP/1.1 403 ")
    assert put_asking_first(server.port, TOKEN).startswith(b"HTTP/1.1 100 ")
    assert server.request("PUT", f"/v1/{KEY}.tar.gz", b"tarball")[0] == 201
    assert put_asking_first(server.port, TOKEN).startswith(b"HTTP/1.1 409 ")


def test_a_stale_claim_can_be_taken_over(tmp_path: Path):
    cache = Cache(tmp_path, max_bytes=10, verdicts=Verdicts(lambda token: None))
    assert cache.claim(KEY, now=0.0)
    assert not cache.claim(KEY, now=protocol.CLAIM_SECONDS - 1)
    assert cache.claim(KEY, now=protocol.CLAIM_SECONDS + 1)


def test_any_character_in_a_header_is_a_refusal_not_a_crash(server: Server):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    connection.putrequest("POST", f"/v1/{KEY}/claim")
    connection.putheader("Authorization", "Bearer é".encode("latin-1"))
    connection.putheader("Content-Length", "0")
    connection.endheaders()
    assert connection.getresponse().status == 403
    assert server.request("PUT", f"/v1/{KEY}.tar.gz", b"tarball",
                          headers={protocol.DIGEST_HEADER: ("é" * 64).encode("latin-1")})[0] == 400


# --- the init containers' scripts, run with the machine's sh, curl, tar and sha256sum --------------------------

needs_tools = pytest.mark.skipif(not all(shutil.which(tool) for tool in ("sh", "curl", "tar", "sha256sum")),
                                 reason="needs sh, curl, tar and sha256sum")


def pod_volume(tmp_path: Path, name: str) -> Path:
    """A function's volume as prepare leaves it: the code, nothing else."""
    volume = tmp_path / name
    volume.mkdir()
    (volume / "hello.py").write_text("import greeting\n")
    return volume


def run_script(script: str, volume: Path, server: Server, *, key: str = KEY, token: str = TOKEN) -> str:
    """The script as in a pod, with this machine's folders for the volume, the projected token and /tmp."""
    work = volume.parent / f"{volume.name}-tmp"
    work.mkdir(exist_ok=True)
    token_dir = volume.parent / f"{volume.name}-token"
    token_dir.mkdir(exist_ok=True)
    (token_dir / protocol.TOKEN_FILE).write_text(token)
    text = (script.replace("/tmp/", f"{work}/").replace(protocol.TOKEN_DIR, str(token_dir))
            .replace(f"cd {meta.INSTALL_VOLUME}\n", f"cd {volume}\n"))
    result = subprocess.run(["sh", "-c", text], capture_output=True, text=True, timeout=60, env={
        "PATH": os.environ["PATH"], "DEPS_CACHE_URL": f"http://127.0.0.1:{server.port}", "DEPS_KEY": key})
    assert result.returncode == 0, result.stderr
    assert "Bearer" not in result.stdout + result.stderr
    return result.stdout


@needs_tools
def test_the_first_pod_builds_and_stores_the_next_unpacks(server: Server, tmp_path: Path):
    server.cache.max_bytes = 1 << 20
    first = pod_volume(tmp_path, "first")
    assert "building dependencies" in run_script(protocol.FETCH_SCRIPT, first, server)
    (first / "lib").mkdir()
    (first / "lib" / "greeting.py").write_text("def greet(name): return name\n")  # what install adds
    assert "stored dependencies" in run_script(protocol.STORE_SCRIPT, first, server)
    with_tar = subprocess.run(["tar", "-tzf", str(server.cache.path(KEY))], capture_output=True, text=True)
    assert with_tar.stdout.split() == ["lib/", "lib/greeting.py"], "only what install added"

    second = pod_volume(tmp_path, "second")
    assert "come from the cache" in run_script(protocol.FETCH_SCRIPT, second, server)
    assert (second / "lib" / "greeting.py").read_text() == "def greet(name): return name\n"
    assert (second / protocol.CACHED_MARK).exists()
    assert run_script(protocol.STORE_SCRIPT, second, server) == ""

    third = pod_volume(tmp_path, "third")  # it built them too, while the first one did
    (third / protocol.PREPARED_LIST).write_text("hello.py\n")
    (third / "lib").mkdir()
    (third / "lib" / "greeting.py").write_text("other")
    assert "stored meanwhile by another pod" in run_script(protocol.STORE_SCRIPT, third, server)


@needs_tools
def test_a_tarball_that_does_not_hash_to_its_recorded_sha256_is_not_unpacked(server: Server, tmp_path: Path):
    server.cache.max_bytes = 1 << 20
    assert server.request("PUT", f"/v1/{KEY}.tar.gz", b"original")[0] == 201
    source = tmp_path / "source"
    (source / "lib").mkdir(parents=True)
    (source / "lib" / "greeting.py").write_text("poisoned")
    tampered = tmp_path / "tampered.tar.gz"
    subprocess.run(["tar", "-czf", str(tampered), "-C", str(source), "lib"], check=True)
    server.cache.path(KEY).unlink()
    shutil.copy(tampered, server.cache.path(KEY))  # replaced behind the server's back

    volume = pod_volume(tmp_path, "pod")
    log = run_script(protocol.FETCH_SCRIPT, volume, server)
    assert "do not hash to their recorded sha256" in log and "building dependencies" in log
    assert not (volume / "lib").exists() and not (volume / protocol.CACHED_MARK).exists()


@needs_tools
def test_a_pod_of_another_namespace_builds_its_own(server: Server, tmp_path: Path):
    volume = pod_volume(tmp_path, "pod")
    log = run_script(protocol.FETCH_SCRIPT, volume, server, token=THIEF)
    assert "refused the claim of" in log and "(HTTP 403)" in log and "building dependencies" in log
    (volume / "lib").mkdir()
    (volume / "lib" / "greeting.py").write_text("poisoned")
    log = run_script(protocol.STORE_SCRIPT, volume, server, token=THIEF)
    assert "warning: could not store" in log and "HTTP 403" in log
    assert not server.cache.path(KEY).exists()


def test_the_scripts_parse():
    for script in (protocol.FETCH_SCRIPT, protocol.STORE_SCRIPT):
        subprocess.run(["sh", "-n", "-c", script], check=True)


# --- the init containers and the token's volume ------------------------------------------------------------------

def function(deps: str = "requests==2.0\n", content_type: str = "text", namespace: str = "ns", env=None,
             handler: str = "hello.hello", pod: dict | None = None) -> dict:
    spec = {"handler": handler, "runtime": "python3.11", "function": "def hello(e, c): pass\n",
            "function-content-type": content_type, "deps": deps}
    if env is not None or pod is not None:
        spec["deployment"] = {"spec": {"template": {"spec": {**(pod or {}), "containers": [{"env": env or []}]}}}}
    return {"metadata": {"name": "hello", "namespace": namespace, "uid": "u1", "labels": {}}, "spec": spec}


RUNTIME = render.find_runtime(CATALOGUE, "python3.11")


def pod_of(fn: dict, config: KubelessConfig) -> dict:
    runtime = render.find_runtime(config.runtime_images, "python3.11")
    return render.deployment(fn, runtime, config)["spec"]["template"]["spec"]


def init_names(fn: dict, config: KubelessConfig) -> list[str]:
    return [c["name"] for c in pod_of(fn, config)["initContainers"]]


def cache_key(fn: dict, config: KubelessConfig) -> str:
    fetch = next(c for c in pod_of(fn, config)["initContainers"] if c["name"] == "deps-fetch")
    return next(item["value"] for item in fetch["env"] if item["name"] == "DEPS_KEY")


BASE = KubelessConfig(runtime_images=CATALOGUE, provision_image="localhost/kubeless/provision:test")
CACHED = replace(BASE, deps_cache_url="http://cache:8080")


def test_the_cache_wraps_install_only_when_configured_and_needed():
    assert init_names(function(), BASE) == ["prepare", "install"]
    assert init_names(function(), CACHED) == ["prepare", "deps-fetch", "install", "deps-store"]
    assert init_names(function(deps=""), CACHED) == ["prepare"]
    # an archive that carries its own deps file: the spec cannot name its content, so no cache key
    assert init_names(function(content_type="base64+zip+deps"), CACHED) == ["prepare", "install"]


def test_the_token_is_projected_for_the_cache_and_mounted_only_where_the_cache_is_used():
    objects = render.children(function(), CACHED)
    assert [o["kind"] for o in objects] == ["ConfigMap", "Service", "Deployment"], "no Secret"
    pod = objects[2]["spec"]["template"]["spec"]
    assert {"name": "deps-cache-token", "projected": {"sources": [{"serviceAccountToken": {
        "audience": "kubeless-deps-cache", "expirationSeconds": 600, "path": "token"}}]}} in pod["volumes"]
    assert pod["automountServiceAccountToken"] is False, "the API server's token stays out"
    mounts = {c["name"]: [m for m in c.get("volumeMounts") or [] if m["name"] == render.DEPS_CACHE_TOKEN_VOLUME]
              for c in [*pod["initContainers"], *pod["containers"]]}
    assert {name for name, found in mounts.items() if found} == {"deps-fetch", "deps-store"}, \
        "not install, which runs the dependencies' own code"
    assert mounts["deps-fetch"] == [{"name": render.DEPS_CACHE_TOKEN_VOLUME, "mountPath": protocol.TOKEN_DIR,
                                     "readOnly": True}]
    without = pod_of(function(), BASE)
    assert all(v["name"] != render.DEPS_CACHE_TOKEN_VOLUME for v in without["volumes"]), "no cache, no token"


def test_the_key_shows_the_namespace_that_owns_it_unless_shared():
    key = cache_key(function(), CACHED)
    assert key.endswith("@ns") and protocol.owner(key) == "ns"
    shared = cache_key(function(), replace(CACHED, deps_cache_shared=True))
    assert "@" not in shared and protocol.owner(shared) is None and protocol.ROUTE.match(f"/v1/{shared}/claim")


def test_the_key_covers_what_changes_the_build():
    key = cache_key(function(), CACHED)
    assert key.startswith("python3.11-") and protocol.ROUTE.match(f"/v1/{key}.tar.gz")
    assert key == cache_key(function(), CACHED)
    different = {
        "deps": cache_key(function(deps="requests==2.1\n"), CACHED),
        "the function's env": cache_key(function(env=[{"name": "PIP_INDEX_URL", "value": "http://mine/"}]), CACHED),
        "install-env": cache_key(function(), replace(CACHED, install_env={"PIP_INDEX_URL": "http://site/"})),
        "the namespace": cache_key(function(namespace="other"), CACHED),
        "a host alias": cache_key(function(pod={"hostAliases": [{"ip": "10.0.0.1", "hostnames": ["pypi.org"]}]}),
                                  CACHED),
        "the DNS": cache_key(function(pod={"dnsPolicy": "None", "dnsConfig": {"nameservers": ["10.0.0.1"]}}),
                             CACHED),
    }
    for what, other in different.items():
        assert other != key, f"{what} must change the key"
    catalogue = json.loads(json.dumps(CATALOGUE))
    install = next(i for i in catalogue[0]["versions"][0]["images"] if i["phase"] == "installation")
    install["command"] += " -q"
    assert cache_key(function(), replace(CACHED, runtime_images=catalogue)) != key, "the installer's command"


def test_what_no_installer_reads_leaves_the_key_alone():
    key = cache_key(function(), CACHED)
    assert cache_key(function(handler="other.main"), CACHED) == key
    fn = function()
    fn["spec"]["timeout"] = "30"
    assert cache_key(fn, CACHED) == key


def test_the_key_leaves_out_exactly_the_variables_the_controller_derives_from_the_spec():
    _, shared_env = render.main_container(function(), RUNTIME, {}, custom_image=False)
    assert {item["name"] for item in shared_env} == render.SPEC_VARIABLES
    assert contract.ENV_HANDLER in render.SPEC_VARIABLES


def test_sharing_across_namespaces_is_a_choice_and_off_by_default():
    assert KubelessConfig.from_data({}).deps_cache_shared is False
    assert KubelessConfig.from_data({"deps-cache-shared": "true"}).deps_cache_shared is True
    shared = replace(CACHED, deps_cache_shared=True)
    assert cache_key(function(), shared) == cache_key(function(namespace="other"), shared)
    # a value from an object of the namespace is not the same value in another namespace
    from_config_map = [{"name": "PIP_INDEX_URL", "valueFrom": {"configMapKeyRef": {"name": "pip", "key": "url"}}}]
    assert cache_key(function(env=from_config_map), shared) != cache_key(
        function(env=from_config_map, namespace="other"), shared)


def test_install_env_reaches_the_install_step_and_the_function_env_wins():
    fn = function(env=[{"name": "PIP_INDEX_URL", "value": "http://mine/simple/"}])
    config = replace(BASE, install_env={"PIP_INDEX_URL": "http://site/simple/", "PIP_TRUSTED_HOST": "site"})
    install = next(c for c in pod_of(fn, config)["initContainers"] if c["name"] == "install")
    values = [e["value"] for e in install["env"] if e["name"] == "PIP_INDEX_URL"]
    assert values == ["http://mine/simple/"]  # once: server-side apply refuses a name given twice
    assert {"name": "PIP_TRUSTED_HOST", "value": "site"} in install["env"]


# --- the controller -------------------------------------------------------------------------------------------

def test_the_controller_renders_the_cache_without_touching_a_secret():
    fake = FakeApi()
    controller = make_controller(fake)
    controller.settings = replace(controller.settings, deps_cache_url="http://cache:8080")
    fake.objects[api_path(meta.API_VERSION, "Function", "ns", "hello")] = reconciled_function(deps="requests==2.0\n")
    controller.reconcile("ns/hello")
    deployment = fake.objects[api_path("apps/v1", "Deployment", "ns", "hello")]
    names = [c["name"] for c in deployment["spec"]["template"]["spec"]["initContainers"]]
    assert names == ["prepare", "deps-fetch", "install", "deps-store"]
    assert not [call for call in fake.calls if "/secrets" in call[1]]
