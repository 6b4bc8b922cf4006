"""The dependency cache service: stores and serves the tarballs of built dependencies (protocol.py says how).

Kubeless ran pip (or npm, ...) in every pod at every start (Kubeless #158): scaling from 1 to 5 replicas ran the
installer five times. Here the first pod that needs a set of dependencies claims it, builds it in its `install` step
and stores the result as a tarball; every later pod, replica or restart fetches the tarball instead. Storage is a
plain folder (an emptyDir by default: a restart only costs one rebuild per key).

A shared cache is a way into every pod that unpacks from it, so it trusts no request: each one must carry a
service-account token of the namespace that owns its key (protocol's docstring says which), checked by the API server
with a TokenReview; an entry is written once and never replaced, and its sha256 is recorded with it for the fetching
pod to check before unpacking.
"""
from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import os
import ssl
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from kubeless_api.meta import dig
from kubeless_depcache import protocol
from kubeless_depcache.protocol import CLAIM, CLAIM_SECONDS, DIGEST, DIGEST_HEADER, ROUTE, TARBALL

CHUNK = 1 << 20
SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
REVIEW_PATH = "/apis/authentication.k8s.io/v1/tokenreviews"

log = logging.getLogger("kubeless_depcache")


# --- who holds a token ------------------------------------------------------------------------------------------

class ReviewFailed(Exception):
    """The API server could not say who holds a token: the request is refused, and the pod builds its own."""


class TokenReviewer:
    """Asks the API server who holds a token (POST tokenreviews, audience protocol.AUDIENCE), as the cache's own
    service account (allowed to create TokenReviews and nothing else). `in_cluster` is the pod's way; a test points
    `host` and `port` at a server of its own, with `context` None for plain HTTP."""

    def __init__(self, host: str, port: int, *, token_file: Path, context: ssl.SSLContext | None,
                 timeout: float = 10):
        self.host, self.port, self.token_file, self.context, self.timeout = host, port, token_file, context, timeout

    @classmethod
    def in_cluster(cls) -> TokenReviewer:
        """From the pod's service account; KeyError or OSError outside a pod."""
        host, port = os.environ["KUBERNETES_SERVICE_HOST"], int(os.environ.get("KUBERNETES_SERVICE_PORT", "443"))
        context = ssl.create_default_context(cafile=str(SERVICE_ACCOUNT / "ca.crt"))
        return cls(host, port, token_file=SERVICE_ACCOUNT / "token", context=context)

    def namespace_of(self, token: str) -> str | None:
        """The namespace of the service account whose token this is, valid for the cache's audience; None: it is
        not one. Raises ReviewFailed."""
        body = json.dumps({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                           "spec": {"token": token, "audiences": [protocol.AUDIENCE]}})
        if self.context is None:
            connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        else:
            connection = http.client.HTTPSConnection(self.host, self.port, context=self.context, timeout=self.timeout)
        try:
            # read at every review: the kubelet renews the cache's own token in its file
            own = self.token_file.read_text().strip()
            connection.request("POST", REVIEW_PATH, body=body, headers={
                "Authorization": f"Bearer {own}", "Content-Type": "application/json", "Accept": "application/json"})
            response = connection.getresponse()
            answer = response.read()
        except (OSError, http.client.HTTPException) as error:
            raise ReviewFailed(f"{type(error).__name__}: {error}") from None
        finally:
            connection.close()
        if response.status not in (200, 201):
            raise ReviewFailed(f"{response.status} {answer[:300].decode(errors='replace')}")
        try:
            review = dig(json.loads(answer), "status", default={})
        except ValueError as error:
            raise ReviewFailed(f"not a TokenReview: {error}") from None
        # an API server blind to audiences answers none: then the token may be one for the API server itself
        if not review.get("authenticated") or protocol.AUDIENCE not in (review.get("audiences") or []):
            return None
        return protocol.token_namespace(dig(review, "user", "username", default="") or "")


class Verdicts:
    """Who holds each token, as the reviewer last said, for VERDICT_SECONDS: a pod's fetch, claim and store make one
    review, not one per request (so a token stays good here up to VERDICT_SECONDS after its pod is gone). Held by
    the token's sha256, never the token itself; at most MAX_HELD, the oldest forgotten first. A failed review is not
    held."""
    VERDICT_SECONDS = 30.0
    MAX_HELD = 10_000
    UNAUTHENTICATED = ""  # held for a token that is no service account's

    def __init__(self, review: Callable[[str], str | None], *, clock: Callable[[], float] = time.monotonic):
        self._review, self._clock = review, clock
        self._held: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()

    def namespace_of(self, token: str) -> str | None:
        """Raises ReviewFailed."""
        digest = hashlib.sha256(token.encode()).hexdigest()
        now = self._clock()
        with self._lock:
            held = self._held.get(digest)
        if held is None or now - held[0] >= self.VERDICT_SECONDS:
            namespace = self._review(token) or self.UNAUTHENTICATED
            with self._lock:
                self._held.pop(digest, None)
                while len(self._held) >= self.MAX_HELD:
                    del self._held[next(iter(self._held))]
                self._held[digest] = (now, namespace)
            held = (now, namespace)
        return held[1] or None


# --- the store ---------------------------------------------------------------------------------------------------

class Cache:
    def __init__(self, root: Path, max_bytes: int, verdicts: Verdicts) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.verdicts = verdicts
        self.claims: dict[str, float] = {}
        self.lock = threading.Lock()
        self.counts = {"hit": 0, "miss": 0, "store": 0, "store_refused": 0, "claim": 0, "claim_refused": 0,
                       "unauthorized": 0}

    def path(self, key: str) -> Path:
        return self.root / f"{key}{TARBALL}"

    def digest_path(self, key: str) -> Path:
        return self.root / f"{key}{DIGEST}"

    def refusal(self, key: str, authorization: str | None) -> tuple[int, str] | None:
        """Why a request for `key` with this Authorization header is refused, if it is."""
        presented = protocol.bearer(authorization)
        if presented is None:
            return 401, f"a bearer token is required: a service-account token of audience {protocol.AUDIENCE}\n"
        try:
            namespace = self.verdicts.namespace_of(presented)
        except ReviewFailed as error:
            log.warning("cannot review a token: %s", error)
            return 503, "cannot review the token now: build in the pod\n"
        if namespace is None:
            return 403, f"not a valid service-account token of audience {protocol.AUDIENCE}\n"
        owner = protocol.owner(key)
        if owner is not None and owner != namespace:
            return 403, f"a key of namespace {owner}, not of {namespace}\n"
        return None

    def claim(self, key: str, now: float) -> bool:
        with self.lock:
            if self.path(key).exists() or now - self.claims.get(key, -CLAIM_SECONDS) < CLAIM_SECONDS:
                self.counts["claim_refused"] += 1
                return False
            self.claims[key] = now
            self.counts["claim"] += 1
            return True

    def store(self, key: str, temporary: Path, digest: str) -> bool:
        """Make the tarball `temporary` the entry of `key`, with its digest, unless the key is stored already."""
        with self.lock:
            if self.path(key).exists():
                self.counts["store_refused"] += 1
                return False
            # the digest first: a reader that finds the tarball finds its digest (a crash in between leaves a digest
            # alone, which the next store replaces)
            self.digest_path(key).write_text(digest + "\n")
            os.link(temporary, self.path(key))  # never over an entry, whoever else writes the folder
            self.claims.pop(key, None)
            self.counts["store"] += 1
            return True

    def count(self, what: str) -> None:
        with self.lock:
            self.counts[what] += 1

    def metrics(self) -> str:
        lines = ["# HELP kubeless_deps_cache_requests_total Dependency cache requests by outcome.",
                 "# TYPE kubeless_deps_cache_requests_total counter"]
        with self.lock:
            lines += [f'kubeless_deps_cache_requests_total{{outcome="{k}"}} {v}' for k, v in self.counts.items()]
        entries = list(self.root.glob(f"*{TARBALL}"))
        lines += ["# TYPE kubeless_deps_cache_entries gauge", f"kubeless_deps_cache_entries {len(entries)}",
                  "# TYPE kubeless_deps_cache_bytes gauge",
                  f"kubeless_deps_cache_bytes {sum(e.stat().st_size for e in entries)}"]
        return "\n".join(lines) + "\n"


def handler_for(cache: Cache) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def answer(self, status: int, body: bytes = b"", content_type: str = "text/plain; charset=utf-8") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def route(self) -> tuple[str, str] | None:
            match = ROUTE.match(self.path)
            return (match.group(1), match.group(2)) if match else None

        def authorized(self, key: str) -> bool:
            """Answers the refusal, if there is one."""
            refusal = cache.refusal(key, self.headers.get("Authorization"))
            if refusal is None:
                return True
            cache.count("unauthorized")
            self.answer(refusal[0], refusal[1].encode())
            return False

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if self.path == "/healthz":
                return self.answer(200, b"OK")
            if self.path == "/metrics":
                return self.answer(200, cache.metrics().encode(), "text/plain; version=0.0.4")
            route = self.route()
            if not route or route[1] == CLAIM:
                return self.answer(404, b"not found\n")
            key, what = route
            if not self.authorized(key):
                return None
            if not cache.path(key).exists() or not cache.digest_path(key).exists():
                cache.count("miss")
                return self.answer(404, b"not cached\n")
            if what == DIGEST:
                return self.answer(200, cache.digest_path(key).read_bytes())
            cache.count("hit")
            with cache.path(key).open("rb") as stream:
                self.send_response(200)
                self.send_header("Content-Type", "application/gzip")
                self.send_header("Content-Length", str(os.fstat(stream.fileno()).st_size))
                self.end_headers()
                while chunk := stream.read(CHUNK):
                    self.wfile.write(chunk)

        def do_POST(self) -> None:  # noqa: N802
            route = self.route()
            if not route or route[1] != CLAIM:
                return self.answer(404, b"not found\n")
            if not self.authorized(route[0]):
                return None
            if cache.claim(route[0], time.monotonic()):
                return self.answer(201, b"claimed: build it and PUT the tarball\n")
            return self.answer(409, b"already cached or being built\n")

        def put_refused(self) -> bool:
            """Refuse a PUT before its body is read (answered, and the connection closed), if it must be."""
            route = self.route()
            length = int(self.headers.get("Content-Length") or -1)
            refusal = None
            if not route or route[1] != TARBALL:
                refusal = 404, "not found\n"
            elif not 0 < length <= cache.max_bytes:
                refusal = 413, f"a tarball must have 1 to {cache.max_bytes} bytes\n"
            elif len(self.headers.get(DIGEST_HEADER) or "") != 64:
                refusal = 400, f"the {DIGEST_HEADER} header must be the body's sha256\n"
            elif (denied := cache.refusal(route[0], self.headers.get("Authorization"))) is not None:
                cache.count("unauthorized")
                refusal = denied
            elif cache.path(route[0]).exists():
                cache.count("store_refused")
                refusal = 409, "already stored: entries are never replaced\n"
            if refusal is None:
                return False
            self.close_connection = True  # the body is not read
            self.answer(refusal[0], refusal[1].encode())
            return True

        def handle_expect_100(self) -> bool:
            """curl asks before sending a large body: a refusal is answered instead of 100 Continue."""
            if self.command == "PUT" and self.put_refused():
                return False
            return super().handle_expect_100()

        def do_PUT(self) -> None:  # noqa: N802
            if self.put_refused():
                return None
            key, expected = self.route()[0], self.headers[DIGEST_HEADER].lower()
            remaining = int(self.headers["Content-Length"])
            digest = hashlib.sha256()
            with tempfile.NamedTemporaryFile(dir=cache.root, prefix=".upload-") as temporary:
                while remaining:
                    chunk = self.rfile.read(min(CHUNK, remaining))
                    if not chunk:
                        break
                    temporary.write(chunk)
                    digest.update(chunk)
                    remaining -= len(chunk)
                temporary.flush()
                matches = hmac.compare_digest(digest.hexdigest().encode(), expected.encode())
                stored = not remaining and matches and cache.store(key, Path(temporary.name), expected)
            if remaining:
                return self.answer(400, b"the body ended early\n")
            if not matches:
                return self.answer(400, f"the body does not hash to the {DIGEST_HEADER} given\n".encode())
            if not stored:
                return self.answer(409, b"already stored: entries are never replaced\n")
            return self.answer(201, b"stored\n")

        def log_message(self, format: str, *args) -> None:  # noqa: A002 - http.server's signature
            sys.stdout.write(f"{self.address_string()} {format % args}\n")

    return Handler


def main() -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(asctime)s %(levelname)s %(message)s")
    root = Path(os.environ.get("DEPS_CACHE_DIR", "/var/cache/kubeless-deps"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        reviewer = TokenReviewer.in_cluster()
    except (KeyError, OSError) as error:
        print(f"no service account to review tokens with ({type(error).__name__}: {error}): run in a pod",
              file=sys.stderr)
        return 2
    cache = Cache(root, int(os.environ.get("DEPS_CACHE_MAX_BYTES", str(2 << 30))), Verdicts(reviewer.namespace_of))
    server = ThreadingHTTPServer(("", int(os.environ.get("DEPS_CACHE_PORT", "8080"))), handler_for(cache))
    print(f"dependency cache serving {root} on :{server.server_port}", flush=True)
    server.serve_forever()
    return 0
