"""A small Kubernetes API client on http.client: the controller image carries no kubernetes package.

Why not the official client: the image is CPython's standard library plus this repository's code, so it stays small
and starts fast, and every request the controller makes is visible here. It speaks only what the reconcile loop needs:
get, list, watch (a chunked stream of JSON lines), server-side apply (to an object or its status subresource), delete
and create.

In a pod the credentials are the service account's projected token, which the kubelet rotates: it is re-read from
disk every minute rather than once at start-up.

What the API server sees of this client, since it shares the server with everyone else's workloads:
- one keep-alive connection per thread (a worker's requests never wait for a TLS handshake, and never share a
  connection with another worker's), plus one connection per watch;
- at most one request in flight per thread, so the workers' count bounds the controller's concurrency, and a slower
  server slows the controller down with it; the server's API Priority and Fairness queues the rest;
- an optional client-side rate (`qps`, `burst`, a token bucket as client-go's) as a fuse against a hot loop;
- every request counted by verb and resource (`on_request`), so a benchmark or a dashboard sees what it costs.
"""
from __future__ import annotations

import http.client
import json
import logging
import os
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from kubeless_api import meta
from kubeless_api.resources import object_path, path


log = logging.getLogger(__name__)

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
TOKEN_REREAD_SECONDS = 60
REQUEST_TIMEOUT = 30
APPLY_PATCH = "application/apply-patch+yaml"  # JSON is YAML, so the body is plain JSON
# What the API server sends for these Accept headers: only each object's metadata (client-go's metadata client).
METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
METADATA_WATCH = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
VERBS = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
WRITE_VERBS = frozenset({"apply", "create", "update", "patch", "delete"})


def resource_of(path_: str) -> str:
    """The resource a REST path names, with its subresource: `deployments`, `functions/status`, `namespaces`."""
    parts = path_.split("?", 1)[0].strip("/").split("/")
    rest = parts[2:] if parts[:1] == ["api"] else parts[3:]
    if len(rest) >= 3 and rest[0] == "namespaces":
        rest = rest[2:]
    if not rest:
        return ""
    return f"{rest[0]}/{rest[2]}" if len(rest) >= 3 else rest[0]


class TokenBucket:
    """`rate` tokens a second, at most `burst` saved up; take() waits for one. client-go's client-side limiter."""

    def __init__(self, rate: float, burst: int, clock=time.monotonic, sleep=time.sleep):
        self.rate, self.burst = rate, max(1, burst)
        self.clock, self.sleep = clock, sleep
        self._tokens = float(self.burst)
        self._at = clock()
        self._lock = threading.Lock()

    def take(self) -> float:
        """Waits until a token is free; returns the seconds waited."""
        with self._lock:
            now = self.clock()
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now
            self._tokens -= 1  # a debt, paid back by waiting: the next callers queue behind it
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait:
            self.sleep(wait)
        return wait


class ApiError(Exception):
    """The API server answered with an error status; `reason` is its Status reason (NotFound, Conflict, ...)."""

    def __init__(self, status: int, reason: str, message: str):
        super().__init__(f"{status} {reason}: {message}")
        self.status, self.reason, self.message = status, reason, message

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        return self.status == 409

    @property
    def gone(self) -> bool:
        return self.status == 410

    @property
    def namespace_terminating(self) -> bool:
        """A create refused because its namespace is being deleted: the owner goes with it, nothing is to be done."""
        return self.status == 403 and "because it is being terminated" in self.message

    @property
    def invalid(self) -> bool:
        """The request can never succeed as is: a rejected object, not a failing server."""
        return self.status in (400, 422)


@dataclass
class Credentials:
    """Where the API server is and how to prove who we are."""
    base_url: str
    token_file: str | None = None
    ca_file: str | None = None

    @classmethod
    def in_cluster(cls) -> Credentials:
        host, port = os.environ["KUBERNETES_SERVICE_HOST"], os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        if ":" in host:  # IPv6
            host = f"[{host}]"
        return cls(f"https://{host}:{port}", f"{SERVICE_ACCOUNT_DIR}/token", f"{SERVICE_ACCOUNT_DIR}/ca.crt")


class Client:
    """Thread-safe: each thread keeps its own keep-alive connection; each watch gets a connection of its own.

    `qps` (0: none) and `burst` limit the requests' rate (watches excepted: they are long-lived); `on_request(verb,
    resource)` is called before each request, watches included."""

    def __init__(self, credentials: Credentials, *, timeout: float = REQUEST_TIMEOUT, qps: float = 0,
                 burst: int = 1, on_request: Callable[[str, str], None] | None = None):
        self.credentials = credentials
        self.limiter = TokenBucket(qps, burst) if qps > 0 else None
        self.on_request = on_request
        url = urllib.parse.urlsplit(credentials.base_url)
        self.scheme, self.host, self.port = url.scheme, url.hostname, url.port
        self.timeout = timeout
        self._ssl = None
        if self.scheme == "https":
            self._ssl = ssl.create_default_context(cafile=credentials.ca_file)
        self._token: str | None = None
        self._token_read_at = -float("inf")
        self._token_lock = threading.Lock()
        self._local = threading.local()
        self._user_agent = f"{meta.FIELD_MANAGER}/{meta.project_version()}"

    # --- plumbing ------------------------------------------------------------------------------------------------

    def _bearer(self) -> str | None:
        if not self.credentials.token_file:
            return None
        with self._token_lock:
            if time.monotonic() - self._token_read_at > TOKEN_REREAD_SECONDS:
                with open(self.credentials.token_file) as file:
                    self._token = file.read().strip()
                self._token_read_at = time.monotonic()
            return self._token

    def _connect(self, timeout: float | None) -> http.client.HTTPConnection:
        if self.scheme == "https":
            return http.client.HTTPSConnection(self.host, self.port, timeout=timeout, context=self._ssl)
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def _headers(self, content_type: str | None, accept: str = "application/json") -> dict[str, str]:
        headers = {"Accept": accept, "User-Agent": self._user_agent}
        token = self._bearer()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if content_type:
            headers["Content-Type"] = content_type
        return headers

    @staticmethod
    def _url(path_: str, query: dict | None) -> str:
        query = {key: value for key, value in (query or {}).items() if value not in (None, "")}
        return path_ + ("?" + urllib.parse.urlencode(query) if query else "")

    def _count(self, verb: str, path_: str) -> None:
        if self.on_request is not None:
            self.on_request(verb, resource_of(path_))

    def request(self, method: str, path_: str, *, query: dict | None = None, body: dict | None = None,
                content_type: str = "application/json", verb: str | None = None,
                accept: str = "application/json") -> dict:
        """One request on this thread's keep-alive connection; a connection the server closed is retried once.
        `verb` names it for the count (default: after the method, e.g. PUT is update)."""
        if self.limiter is not None:
            self.limiter.take()
        self._count(verb or VERBS.get(method, method.lower()), path_)
        data = None if body is None else json.dumps(body).encode()
        headers = self._headers(content_type if data is not None else None, accept)
        url = self._url(path_, query)
        for attempt in (1, 2):
            connection = getattr(self._local, "connection", None)
            reused = connection is not None
            if connection is None:
                connection = self._local.connection = self._connect(self.timeout)
            try:
                connection.request(method, url, body=data, headers=headers)
                response = connection.getresponse()
                payload = response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError,
                    http.client.CannotSendRequest, http.client.ResponseNotReady):
                connection.close()
                self._local.connection = None
                if reused and attempt == 1:
                    continue
                raise
            except OSError:
                connection.close()
                self._local.connection = None
                raise
            if response.will_close:
                connection.close()
                self._local.connection = None
            return self._decode(response.status, payload)
        raise AssertionError("unreachable")

    @staticmethod
    def _decode(status: int, payload: bytes) -> dict:
        try:
            document = json.loads(payload) if payload else {}
        except ValueError:
            document = {"message": payload.decode(errors="replace")[:500]}
        if status >= 400:
            raise ApiError(status, document.get("reason") or http.client.responses.get(status, "Error"),
                           document.get("message") or "")
        return document

    # --- verbs ---------------------------------------------------------------------------------------------------

    def get(self, path_: str, **query) -> dict:
        return self.request("GET", path_, query=query)

    def list(self, path_: str, *, label_selector: str | None = None, field_selector: str | None = None,
             page_size: int = 500, transform: Callable[[dict], dict] | None = None,
             metadata_only: bool = False) -> tuple[list[dict], str]:
        """Every item of a collection (paginated), and the collection's resourceVersion to watch from; with
        `metadata_only`, each item is only its metadata, as the API server cuts it.

        `transform` is applied to each item as its page arrives, so only one page is ever held whole: what an
        informer keeps of 1,000 Functions of 100 KiB is not 100 MB at once."""
        items: list[dict] = []
        token = None
        while True:
            page = self.request("GET", path_, verb="list", query={
                "labelSelector": label_selector, "fieldSelector": field_selector, "limit": page_size,
                "continue": token}, accept=METADATA_LIST if metadata_only else "application/json")
            found = page.pop("items", None) or []
            items += map(transform, found) if transform else found
            del found
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return items, page["metadata"]["resourceVersion"]

    def watch(self, path_: str, *, resource_version: str, label_selector: str | None = None,
              field_selector: str | None = None, timeout_seconds: int = 300,
              on_connect=None, metadata_only: bool = False) -> Iterator[dict]:
        """The watch events ({type, object}) after resource_version, until the server ends the stream.

        Bookmarks are asked for, so a quiet watch still advances its resourceVersion. A 410 Gone (as an HTTP status
        or as an ERROR event) raises ApiError, and the caller lists again. `on_connect(connection)` lets the owner
        close the stream from another thread.
        """
        query = {"watch": "1", "resourceVersion": resource_version, "allowWatchBookmarks": "true",
                 "timeoutSeconds": timeout_seconds, "labelSelector": label_selector, "fieldSelector": field_selector}
        self._count("watch", path_)
        # the socket timeout backs up the server's: a stream that went silent (a vanished server) is noticed
        connection = self._connect(timeout_seconds + 30)
        try:
            if on_connect:
                on_connect(connection)
            connection.request("GET", self._url(path_, query),
                               headers=self._headers(None, METADATA_WATCH if metadata_only else "application/json"))
            response = connection.getresponse()
            if response.status >= 400:
                self._decode(response.status, response.read())
            while True:
                line = response.readline()
                if not line:
                    return
                if not line.strip():
                    continue
                event = json.loads(line)
                if event.get("type") == "ERROR":
                    status = event.get("object") or {}
                    raise ApiError(status.get("code") or 500, status.get("reason") or "Error",
                                   status.get("message") or "")
                yield event
        finally:
            connection.close()

    def apply(self, obj: dict, *, subresource: str | None = None) -> dict:
        """Server-side apply as the controller's field manager, taking over fields other managers hold."""
        return self.request("PATCH", object_path(obj, subresource), body=obj, content_type=APPLY_PATCH,
                            query={"fieldManager": meta.FIELD_MANAGER, "force": "true"}, verb="apply")

    def create(self, obj: dict) -> dict:
        metadata = obj["metadata"]
        return self.request("POST", path(obj["apiVersion"], obj["kind"], metadata.get("namespace")), body=obj)

    def replace(self, obj: dict) -> dict:
        return self.request("PUT", object_path(obj), body=obj)

    def delete(self, path_: str, *, uid: str | None = None) -> dict:
        """Delete in the background; with `uid`, only that incarnation of the object (a precondition)."""
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
        if uid:
            body["preconditions"] = {"uid": uid}
        return self.request("DELETE", path_, body=body)
