"""The API client and the informer against a scripted fake API server over real HTTP."""
from __future__ import annotations

import json
import queue
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest


from kubeless_controller import client as client_module
from kubeless_api.resources import path
from kubeless_controller.client import ApiError, Client, Credentials, TokenBucket, resource_of
from kubeless_controller.informer import Informer


def pod(name: str, version: str, labels: dict | None = None) -> dict:
    return {"metadata": {"name": name, "namespace": "ns", "resourceVersion": version, "labels": labels or {}}}


class FakeApi:
    """Answers lists from `objects`, and each watch connection with the next script of `watches`.

    A script is a list of steps: a watch event (dict), ("status", code) to answer with an HTTP error, ("close",)
    to end the stream, or ("hold",) to keep it open until the test ends.
    """

    def __init__(self, token_file: Path | None = None, port: int = 0):
        self.objects: list[dict] = []
        self.list_version = "10"
        self.watches: queue.Queue = queue.Queue()
        self.requests: list[dict] = []
        self.token_file = token_file
        self.done = threading.Event()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _record(self, body=None):
                url = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(url.query))
                api.requests.append({"method": self.command, "path": url.path, "query": query,
                                     "headers": dict(self.headers), "body": body})
                return url.path, query

            def _authorized(self) -> bool:
                if api.token_file is None:
                    return True
                expected = f"Bearer {api.token_file.read_text().strip()}"
                if self.headers.get("Authorization") != expected:
                    self._json(401, {"kind": "Status", "reason": "Unauthorized", "message": "bad token"})
                    return False
                return True

            def _json(self, code: int, document: dict) -> None:
                body = json.dumps(document).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):  # noqa: N802
                route, query = self._record()
                if not self._authorized():
                    return
                if route.endswith("/missing"):
                    return self._json(404, {"kind": "Status", "reason": "NotFound", "message": "missing not found"})
                if query.get("watch"):
                    return self._watch()
                if route.endswith("/pods"):
                    return self._list(query)
                return self._json(200, {"metadata": {"name": route.rsplit("/", 1)[-1]}})

            def _list(self, query):
                page = int(query.get("continue") or 0)
                items = api.objects[page * 2:page * 2 + 2]
                more = page * 2 + 2 < len(api.objects)
                self._json(200, {"items": items, "metadata": {"resourceVersion": api.list_version,
                                                              "continue": str(page + 1) if more else ""}})

            def _watch(self):
                try:
                    script = api.watches.get(timeout=5)
                except queue.Empty:
                    script = [("hold",)]
                if script and isinstance(script[0], tuple) and script[0][0] == "status":
                    code = script[0][1]
                    return self._json(code, {"kind": "Status", "code": code, "reason": "Expired",
                                             "message": "too old resource version"})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for step in script:
                    if isinstance(step, dict):
                        line = json.dumps(step).encode() + b"\n"
                        self.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
                        self.wfile.flush()
                    elif step[0] == "hold":
                        api.done.wait(10)
                        break
                try:
                    self.wfile.write(b"0\r\n\r\n")
                except OSError:
                    pass  # the client went away first
                self.close_connection = True

            def do_PATCH(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                self._record(body)
                if self.path.startswith("/api/v1/namespaces/ns/configmaps/bad"):
                    return self._json(422, {"kind": "Status", "reason": "Invalid", "message": "spec is invalid"})
                self._json(200, body)

            do_POST = do_PUT = do_DELETE = do_PATCH  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def close(self):
        self.done.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake(tmp_path: Path):
    token = tmp_path / "token"
    token.write_text("first\n")
    api = FakeApi(token)
    yield api
    api.close()


@pytest.fixture
def client(fake: FakeApi, tmp_path: Path) -> Client:
    return Client(Credentials(fake.url, token_file=str(tmp_path / "token")))


# --- paths -----------------------------------------------------------------------------------------------------

def test_paths_of_core_group_and_custom_resources():
    assert path("v1", "Pod") == "/api/v1/pods"
    assert path("v1", "ConfigMap", "ns", "a") == "/api/v1/namespaces/ns/configmaps/a"
    assert path("apps/v1", "Deployment", "ns") == "/apis/apps/v1/namespaces/ns/deployments"
    assert (path("kubeless.io/v1beta1", "Function", "ns", "f", "status")
            == "/apis/kubeless.io/v1beta1/namespaces/ns/functions/f/status")


def test_in_cluster_credentials(monkeypatch):
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "fd00::1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "6443")
    credentials = Credentials.in_cluster()
    assert credentials.base_url == "https://[fd00::1]:6443"
    assert credentials.token_file == "/var/run/secrets/kubernetes.io/serviceaccount/token"
    assert credentials.ca_file == "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"


# --- verbs -----------------------------------------------------------------------------------------------------

def test_server_side_apply_request(fake: FakeApi, client: Client):
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "ns"}, "data": {}}
    assert client.apply(obj) == obj
    request = fake.requests[-1]
    assert request["method"] == "PATCH"
    assert request["path"] == "/api/v1/namespaces/ns/configmaps/a"
    assert request["query"] == {"fieldManager": "kubeless-controller", "force": "true"}
    assert request["headers"]["Content-Type"] == "application/apply-patch+yaml"
    assert request["headers"]["Authorization"] == "Bearer first"
    assert request["body"] == obj


def test_status_subresource_apply(fake: FakeApi, client: Client):
    client.apply({"apiVersion": "kubeless.io/v1beta1", "kind": "Function",
                  "metadata": {"name": "f", "namespace": "ns"}, "status": {}}, subresource="status")
    assert fake.requests[-1]["path"] == "/apis/kubeless.io/v1beta1/namespaces/ns/functions/f/status"


def test_errors_carry_the_status_reason(client: Client):
    with pytest.raises(ApiError) as error:
        client.get("/api/v1/namespaces/ns/configmaps/missing")
    assert error.value.not_found and error.value.reason == "NotFound" and "missing not found" in str(error.value)
    with pytest.raises(ApiError) as error:
        client.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bad", "namespace": "ns"}})
    assert error.value.invalid and error.value.message == "spec is invalid"


def test_delete_with_uid_precondition(fake: FakeApi, client: Client):
    client.delete("/apis/autoscaling/v2/namespaces/ns/horizontalpodautoscalers/f", uid="u1")
    assert fake.requests[-1]["body"] == {"kind": "DeleteOptions", "apiVersion": "v1",
                                         "propagationPolicy": "Background", "preconditions": {"uid": "u1"}}


def test_list_follows_pages(fake: FakeApi, client: Client):
    fake.objects = [pod(f"p{i}", str(i)) for i in range(5)]
    items, version = client.list("/api/v1/pods", label_selector="created-by=kubeless")
    assert [item["metadata"]["name"] for item in items] == ["p0", "p1", "p2", "p3", "p4"]
    assert version == "10"
    assert [r["query"].get("continue") for r in fake.requests] == [None, "1", "2"]
    assert fake.requests[0]["query"]["labelSelector"] == "created-by=kubeless"


def test_list_slims_each_page_as_it_arrives(fake: FakeApi, client: Client):
    fake.objects = [pod(f"p{i}", str(i)) for i in range(3)]
    seen = []

    def transform(obj):
        seen.append(len(fake.requests))
        return {"metadata": {"name": obj["metadata"]["name"]}}

    items, _ = client.list("/api/v1/pods", page_size=2, transform=transform)
    assert items == [{"metadata": {"name": f"p{i}"}} for i in range(3)]
    assert seen == [1, 1, 2], "each page is transformed before the next is asked for"
    assert fake.requests[0]["query"]["limit"] == "2"


def test_a_metadata_only_list_and_watch_ask_the_api_server_for_partial_object_metadata(fake: FakeApi,
                                                                                       client: Client):
    fake.watches.put([{"type": "ADDED", "object": pod("p1", "11")}, ("close",)])
    client.list("/api/v1/pods", metadata_only=True)
    list(client.watch("/api/v1/pods", resource_version="10", metadata_only=True))
    client.list("/api/v1/pods")
    accepts = [request["headers"]["Accept"] for request in fake.requests]
    assert accepts == ["application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
                       "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1", "application/json"]


def test_every_request_is_counted_by_verb_and_resource(fake: FakeApi, tmp_path: Path):
    counted = []
    client = Client(Credentials(fake.url, token_file=str(tmp_path / "token")),
                    on_request=lambda verb, resource: counted.append((verb, resource)))
    fake.objects = [pod("a", "1")]
    client.get("/api/v1/namespaces/ns/configmaps/a")
    client.list("/api/v1/pods")
    client.apply({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "f", "namespace": "ns"}})
    client.apply({"apiVersion": "kubeless.io/v1beta1", "kind": "Function", "metadata": {"name": "f", "namespace": "ns"},
                  "status": {}}, subresource="status")
    client.create({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e", "namespace": "ns"}})
    client.replace({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l", "namespace": "ns"}})
    client.delete("/apis/autoscaling/v2/namespaces/ns/horizontalpodautoscalers/f")
    fake.watches.put([{"type": "ADDED", "object": pod("a", "11")}])
    list(client.watch("/api/v1/pods", resource_version="10"))
    assert counted == [("get", "configmaps"), ("list", "pods"), ("apply", "deployments"), ("apply", "functions/status"),
                       ("create", "events"), ("update", "leases"), ("delete", "horizontalpodautoscalers"),
                       ("watch", "pods")]


def test_resource_of_a_path():
    assert resource_of("/api/v1/namespaces/ns/configmaps/a") == "configmaps"
    assert resource_of("/api/v1/namespaces/ns") == "namespaces"
    assert resource_of("/api/v1/namespaces") == "namespaces"
    assert resource_of("/api/v1/pods?watch=1") == "pods"
    assert resource_of("/apis/kubeless.io/v1beta1/namespaces/ns/functions/f/status") == "functions/status"
    assert resource_of("/apis/apps/v1/deployments") == "deployments"


def test_the_rate_limit_lets_a_burst_through_then_spaces_requests():
    now = [0.0]
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        now[0] += seconds

    bucket = TokenBucket(10, 3, clock=lambda: now[0], sleep=sleep)
    assert [bucket.take() for _ in range(3)] == [0, 0, 0]
    assert bucket.take() == pytest.approx(0.1)
    now[0] += 1  # idle: the bucket fills up again, to its burst and no more
    assert [bucket.take() for _ in range(3)] == [0, 0, 0]
    assert bucket.take() == pytest.approx(0.1)


def test_a_rate_limited_client_waits_between_requests(fake: FakeApi, tmp_path: Path):
    client = Client(Credentials(fake.url, token_file=str(tmp_path / "token")), qps=20, burst=1)
    started = time.monotonic()
    for _ in range(3):
        client.get("/api/v1/namespaces/ns/configmaps/a")
    assert time.monotonic() - started >= 0.09


def test_the_rotated_token_is_read_again(fake: FakeApi, client: Client, tmp_path: Path, monkeypatch):
    client.get("/api/v1/namespaces/ns/configmaps/a")
    (tmp_path / "token").write_text("second\n")
    monkeypatch.setattr(client_module, "TOKEN_REREAD_SECONDS", 0)
    client.get("/api/v1/namespaces/ns/configmaps/a")
    assert fake.requests[-1]["headers"]["Authorization"] == "Bearer second"


def test_connections_are_reused_and_survive_a_server_side_close(fake: FakeApi, client: Client):
    for _ in range(3):
        client.get("/api/v1/namespaces/ns/configmaps/a")
    # the server closed the connection after the watch (close_connection); a fresh client request still works
    fake.watches.put([{"type": "ADDED", "object": pod("a", "11")}])
    list(client.watch("/api/v1/pods", resource_version="10"))
    assert client.get("/api/v1/namespaces/ns/configmaps/b")["metadata"]["name"] == "b"


def test_watch_streams_events_and_asks_for_bookmarks(fake: FakeApi, client: Client):
    fake.watches.put([{"type": "ADDED", "object": pod("a", "11")},
                      {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "12"}}}])
    events = list(client.watch("/api/v1/pods", resource_version="10", label_selector="x=y"))
    assert [event["type"] for event in events] == ["ADDED", "BOOKMARK"]
    query = fake.requests[-1]["query"]
    assert query["watch"] == "1" and query["resourceVersion"] == "10"
    assert query["allowWatchBookmarks"] == "true" and query["labelSelector"] == "x=y"


def test_watch_error_event_raises_gone(fake: FakeApi, client: Client):
    fake.watches.put([{"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired"}}])
    with pytest.raises(ApiError) as error:
        list(client.watch("/api/v1/pods", resource_version="1"))
    assert error.value.gone


# --- informer --------------------------------------------------------------------------------------------------

class Recorder:
    def __init__(self):
        self.events: list[tuple[str, str]] = []
        self.cond = threading.Condition()

    def __call__(self, kind: str, obj: dict) -> None:
        with self.cond:
            self.events.append((kind, obj["metadata"]["name"]))
            self.cond.notify_all()

    def wait_for(self, count: int, timeout: float = 5) -> list[tuple[str, str]]:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.events) >= count, timeout), self.events
            return list(self.events)


def start_informer(client: Client, recorder: Recorder, **kwargs) -> Informer:
    informer = Informer(client, "pods", "/api/v1/pods", recorder, backoff_base=0.01, **kwargs)
    informer.start()
    return informer


def test_informer_lists_then_watches_from_the_lists_version(fake: FakeApi, client: Client):
    fake.objects = [pod("a", "5", {"function": "f"})]
    fake.watches.put([{"type": "MODIFIED", "object": pod("a", "11", {"function": "f"})},
                      {"type": "ADDED", "object": pod("b", "12", {"function": "g"})},
                      {"type": "DELETED", "object": pod("a", "13", {"function": "f"})}, ("hold",)])
    recorder = Recorder()
    informer = start_informer(client, recorder, index=lambda obj: obj["metadata"]["labels"].get("function"))
    try:
        assert recorder.wait_for(4) == [("ADDED", "a"), ("MODIFIED", "a"), ("ADDED", "b"), ("DELETED", "a")]
        assert informer.synced.is_set()
        assert informer.keys() == ["ns/b"]
        assert informer.by_index("g")[0]["metadata"]["name"] == "b" and informer.by_index("f") == []
        watch = next(r for r in fake.requests if r["query"].get("watch"))
        assert watch["query"]["resourceVersion"] == "10"
    finally:
        informer.stop()


def test_a_transformed_informer_keeps_the_slim_copy_and_reports_only_its_changes(fake: FakeApi, client: Client):
    def slim(obj):
        return {"metadata": obj["metadata"]}

    fake.objects = [{**pod("a", "5"), "status": {"phase": "Pending"}}]
    fake.watches.put([{"type": "MODIFIED", "object": {**pod("a", "11"), "status": {"phase": "Running"}}},
                      {"type": "MODIFIED", "object": pod("a", "12", {"function": "f"})}, ("hold",)])
    recorder = Recorder()
    informer = start_informer(client, recorder, transform=slim)
    try:
        assert recorder.wait_for(2) == [("ADDED", "a"), ("MODIFIED", "a")], "the status change is not reported"
        assert informer.get("ns/a") == pod("a", "12", {"function": "f"})
        assert next(r for r in fake.requests if not r["query"].get("watch"))["query"]["limit"] == "50"
    finally:
        informer.stop()


def test_informer_resumes_after_the_stream_ends_from_the_last_version_seen(fake: FakeApi, client: Client):
    fake.watches.put([{"type": "ADDED", "object": pod("a", "11")},
                      {"type": "BOOKMARK", "object": {"kind": "Pod", "metadata": {"resourceVersion": "20"}}}])
    fake.watches.put([{"type": "ADDED", "object": pod("b", "21")}, ("hold",)])
    recorder = Recorder()
    informer = start_informer(client, recorder)
    try:
        recorder.wait_for(2)
        versions = [r["query"]["resourceVersion"] for r in fake.requests if r["query"].get("watch")]
        assert versions == ["10", "20"], "bookmarks move the watch forward"
        assert sum(1 for r in fake.requests if not r["query"].get("watch")) == 1, "no second list"
    finally:
        informer.stop()


@pytest.mark.parametrize("expired", [[("status", 410)],
                                     [{"type": "ERROR", "object": {"code": 410, "reason": "Expired"}}]])
def test_informer_relists_on_gone_and_reports_what_vanished(fake: FakeApi, client: Client, expired):
    fake.objects = [pod("a", "5"), pod("b", "6")]
    fake.watches.put(expired)
    fake.watches.put([("hold",)])
    recorder = Recorder()
    informer = start_informer(client, recorder)
    try:
        recorder.wait_for(2)
        fake.objects = [pod("b", "7"), pod("c", "8")]
        fake.list_version = "30"
        events = recorder.wait_for(5)
        assert events[2:] == [("DELETED", "a"), ("MODIFIED", "b"), ("ADDED", "c")]
        assert sorted(informer.keys()) == ["ns/b", "ns/c"]
    finally:
        informer.stop()


def test_informer_reconnects_with_backoff_when_the_server_fails(fake: FakeApi, client: Client):
    fake.watches.put([("status", 500)])
    fake.watches.put([("status", 503)])
    fake.watches.put([{"type": "ADDED", "object": pod("a", "11")}, ("hold",)])
    recorder = Recorder()
    informer = start_informer(client, recorder)
    try:
        assert recorder.wait_for(1) == [("ADDED", "a")]
        versions = [r["query"]["resourceVersion"] for r in fake.requests if r["query"].get("watch")]
        assert versions == ["10", "10", "10"], "errors other than 410 retry the watch without a list"
    finally:
        informer.stop()


def test_informer_stop_interrupts_a_waiting_watch(fake: FakeApi, client: Client):
    fake.watches.put([("hold",)])
    informer = start_informer(client, Recorder())
    informer.synced.wait(2)
    time.sleep(0.1)
    informer.stop()
    informer.join(2)
    assert not informer.is_alive()


def test_informer_survives_an_api_server_restart(tmp_path: Path):
    first = FakeApi()
    port = first.server.server_port
    first.watches.put([{"type": "ADDED", "object": pod("a", "11")}, ("hold",)])
    recorder = Recorder()
    informer = start_informer(Client(Credentials(first.url)), recorder)
    try:
        recorder.wait_for(1)
        first.close()  # ends the held stream and stops answering: reconnects are refused
        time.sleep(0.3)
        second = FakeApi(port=port)
        second.watches.put([{"type": "ADDED", "object": pod("b", "12")}, ("hold",)])
        try:
            assert recorder.wait_for(2)[1] == ("ADDED", "b")
            assert [r["query"]["resourceVersion"] for r in second.requests if r["query"].get("watch")] == ["11"]
        finally:
            second.close()
    finally:
        informer.stop()
