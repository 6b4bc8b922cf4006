#!/usr/bin/env python3
"""Kubeless Python runtime: serve one function, ``handler(event, context)``, over HTTP.

Why it is built this way:

* Standard library only, one file (hence its length): it is copied into every
  function image, so it must not bring dependencies or module names that could
  clash with the function's own.
* One thread per connection (``ThreadingHTTPServer``) and the function runs inline
  on that thread. The old runtime forked a process per call (~100 req/s); handing
  each call to an executor thread costs a queue hop and two thread switches
  (measured: ~100 us of CPU per request instead of ~60 us, as much as a bare
  stdlib server). A slow call only occupies its own connection.
* Python threads cannot be killed, so timeouts are enforced by one housekeeping
  thread that polls the deadlines of running calls, answers 408 on the caller's
  socket itself and marks the call abandoned: its late result is dropped and the
  connection closed. Abandoned calls that are still running are "stuck"; when
  FUNC_MAX_STUCK of them pile up, /healthz answers 503 so the kubelet restarts
  the pod.
* Each response leaves in a single send (head and body together): one syscall,
  and no Nagle delay between a header segment and a body segment.
* The access log goes to a buffered writer on stdout that the housekeeping thread
  flushes every tick, so logging costs no syscall per request. Likewise nothing
  on the hot path releases the GIL besides socket I/O: each release under load
  means a thread switch.
* Slow clients are cut off by the same housekeeping thread, not by socket
  timeouts: a timeout on a socket costs a poll() and a GIL release per read. Each
  connection keeps a read deadline (its head's, then its body's), and the thread
  shuts down the reading side of a connection past it, which wakes its blocked
  read. Connections beyond FUNC_MAX_CONNECTIONS get a thread of the reserve,
  which answers /healthz and /metrics only, so that a busy pod stays alive.

Configuration comes from the environment (see ``Config.from_env``). Besides the
Kubeless variables, FUNC_TERMINATION_LOG names the pod's terminationMessagePath
(default /dev/termination-log), written on a start-up failure if it is writable.
"""

from __future__ import annotations

import bisect
import email.utils
import importlib
import json
import os
import random
import re
import signal
import socket
import sys
import threading
import time
import traceback
import urllib.parse
import uuid
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Mapping

RUNTIME_MODULE = "kubeless_runtime"
TEXT_TYPE = "text/plain; charset=utf-8"
JSON_TYPE = "application/json"
BYTES_TYPE = "application/octet-stream"
PROMETHEUS_TYPE = "text/plain; version=0.0.4; charset=utf-8"
TEXT_MEDIA_TYPES = ("application/x-www-form-urlencoded",)
DEFAULT_CORS_METHODS = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
# The runtime frames every message itself; a function cannot override these.
FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding", "connection"})
BODYLESS_STATUSES = frozenset({204, 304})
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
MAX_LINE_BYTES = 65536
DEFAULT_BODY_LIMIT = 100 * 1024 * 1024
BODY_LIMIT_MEMORY_SHARE = 4  # without FUNC_MEMFILE_MAX, a body may take a quarter of FUNC_MEMORY_LIMIT
RESERVE_CONNECTIONS = 32  # beyond FUNC_MAX_CONNECTIONS, for /healthz and /metrics
RESERVE_HEADER_TIMEOUT = 1.0  # a reserve connection's head must arrive within this (or FUNC_HEADER_TIMEOUT)
NEVER = float("inf")
# A Kubernetes quantity: a decimal number, an optional exponent, an optional suffix.
QUANTITY = re.compile(r"\+?(\d+(?:\.\d*)?|\.\d+)(?:[eE]([+-]?\d+))?(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E)?",
                      re.ASCII)
QUANTITY_FACTORS = {None: 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
                    "Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30, "Ti": 2 ** 40, "Pi": 2 ** 50, "Ei": 2 ** 60}

Function = Callable[[dict, dict], Any]
Headers = Mapping[str, str]


@dataclass(frozen=True)
class Config:
    handler_name: str
    module_name: str
    timeout: float
    runtime: str
    memory_limit: str
    host: str
    port: int
    install_volume: str
    max_body_bytes: int
    max_stuck_calls: int
    header_timeout: float
    read_timeout: float
    max_connections: int
    grace_period: float

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Config:
        memory_limit = env.get("FUNC_MEMORY_LIMIT", "")
        default_body_limit = DEFAULT_BODY_LIMIT
        if memory_bytes := memory_limit_bytes(memory_limit):
            default_body_limit = min(DEFAULT_BODY_LIMIT, memory_bytes // BODY_LIMIT_MEMORY_SHARE)
        return cls(
            handler_name=env.get("FUNC_HANDLER", ""),
            module_name=env.get("MOD_NAME", ""),
            timeout=_env_number(env, "FUNC_TIMEOUT", "180", float, minimum=0.001),
            runtime=env.get("FUNC_RUNTIME", ""),
            memory_limit=memory_limit,
            host=env.get("FUNC_HOST", "0.0.0.0"),
            port=_env_number(env, "FUNC_PORT", "8080", int, minimum=0),
            install_volume=env.get("KUBELESS_INSTALL_VOLUME", "/kubeless"),
            max_body_bytes=_env_number(env, "FUNC_MEMFILE_MAX", str(default_body_limit), int, minimum=0),
            max_stuck_calls=_env_number(env, "FUNC_MAX_STUCK", "4", int, minimum=1),
            header_timeout=_env_number(env, "FUNC_HEADER_TIMEOUT", "10", float, minimum=0.001),
            read_timeout=_env_number(env, "FUNC_READ_TIMEOUT", "60", float, minimum=0.001),
            max_connections=_env_number(env, "FUNC_MAX_CONNECTIONS", "1024", int, minimum=1),
            grace_period=_env_number(env, "FUNC_GRACE_PERIOD", "30", float, minimum=0),
        )

    @property
    def qualified_name(self) -> str:
        return f"{self.module_name}.{self.handler_name}"

    @property
    def timeout_number(self) -> int | float:
        """The timeout as a person wrote it: 180, not 180.0."""
        return int(self.timeout) if self.timeout.is_integer() else self.timeout

    @property
    def drain_seconds(self) -> float:
        """How long SIGTERM lets running calls finish: the pod's grace period but for a margin (a second, or a
        tenth of a short one), so that the runtime exits, its log flushed, before the kubelet's SIGKILL."""
        return self.grace_period - min(1.0, self.grace_period / 10)

    def context(self) -> dict[str, Any]:
        return {
            "function-name": self.handler_name,
            "timeout": self.timeout_number,
            "runtime": self.runtime,
            "memory-limit": self.memory_limit,
        }


def _env_number(env: Mapping[str, str], name: str, default: str, kind: type, minimum: float) -> Any:
    raw = env.get(name, default)
    try:
        value = kind(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {raw!r}") from None
    if not value >= minimum:  # written this way round to reject NaN too
        raise ValueError(f"{name} must be at least {minimum}, got {raw!r}")
    return value


def memory_limit_bytes(quantity: str) -> int:
    """FUNC_MEMORY_LIMIT, a Kubernetes quantity (134217728, 128Mi, 1G), in bytes; 0 when it is empty, "0" or
    unreadable (the limit is then unknown: the Go runtime reads it the same way)."""
    match = QUANTITY.fullmatch(quantity)
    if not match:
        return 0
    number, exponent, suffix = match.groups()
    try:
        value = float(number) * 10.0 ** int(exponent or 0) * QUANTITY_FACTORS[suffix]
    except OverflowError:
        return 0
    return int(value) if 0 < value < 2 ** 62 else 0


def load_function(config: Config) -> Function:
    if not config.module_name or not config.handler_name:
        raise ValueError("MOD_NAME and FUNC_HANDLER must be set")
    if config.module_name == RUNTIME_MODULE:
        raise ValueError(f"the module name {RUNTIME_MODULE!r} is reserved for the runtime")
    sys.path.insert(0, config.install_volume)
    function = getattr(importlib.import_module(config.module_name), config.handler_name)
    if not callable(function):
        raise TypeError(f"{config.qualified_name} is not callable")
    return function


class RequestError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(slots=True)
class Request:
    """What a function sees of the HTTP request, as event["extensions"]["request"]."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: Message  # an http.client.HTTPMessage: case-insensitive get()
    body: bytes


def parse_content_type(value: str | None) -> tuple[str | None, str | None]:
    """Split a Content-Type header into (media type, charset); None when absent."""
    if not value:
        return None, None
    media_type, *parameters = value.split(";")
    charset = None
    for parameter in parameters:
        name, _, parameter_value = parameter.partition("=")
        if name.strip().lower() == "charset":
            charset = parameter_value.strip().strip('"')
    return media_type.strip().lower(), charset


def decode_data(body: bytes, media_type: str | None, charset: str | None) -> Any:
    if media_type is not None and (media_type == JSON_TYPE or media_type.endswith("+json")):
        if not body:
            return None
        try:
            return json.loads(body.decode(charset or "utf-8"))
        except (ValueError, LookupError) as error:
            raise RequestError(400, f"invalid JSON body: {error}") from error
    if not body:
        return ""
    if media_type is None or media_type.startswith("text/") or media_type in TEXT_MEDIA_TYPES:
        try:
            return body.decode(charset or "utf-8")
        except (ValueError, LookupError):
            return body
    return body


def encode_body(body: Any) -> tuple[bytes, str | None]:
    if body is None:
        return b"", None
    if isinstance(body, str):
        return body.encode(), TEXT_TYPE
    if isinstance(body, (bytes, bytearray, memoryview)):
        return bytes(body), BYTES_TYPE
    return json.dumps(body).encode(), JSON_TYPE


def to_response(result: Any) -> tuple[int, bytes, dict[str, str]]:
    """Turn a function's return value into (status, body, headers)."""
    status, headers = 200, {}
    if isinstance(result, tuple):
        if len(result) not in (2, 3):
            raise ValueError("a tuple result must be (body, status) or (body, status, headers)")
        body, status, *extra = result
        headers = checked_headers(extra[0] if extra else {})
    else:
        body = result
    if type(status) is not int or not 200 <= status <= 599:
        raise ValueError(f"invalid status {status!r}: must be an int from 200 to 599")
    payload, content_type = encode_body(body)
    if content_type and not any(name.lower() == "content-type" for name in headers):
        headers["Content-Type"] = content_type
    return status, payload, headers


def checked_headers(headers: Mapping[Any, Any]) -> dict[str, str]:
    """A function's response headers as str, minus the framing ones the runtime owns."""
    checked = {}
    for name, value in headers.items():
        name, value = str(name), str(value)
        if "\r" in name + value or "\n" in name + value:
            raise ValueError(f"response header {name!r} contains a line break")
        (name + value).encode("latin-1")  # the wire encoding of headers; raises if impossible
        if name.lower() not in FRAMING_HEADERS:
            checked[name] = value
    return checked


def new_event_id() -> str:
    # Not uuid.uuid4(): os.urandom releases the GIL, and under load every release
    # costs a thread switch. The random module is seeded from urandom at start-up.
    return uuid.UUID(int=random.getrandbits(128), version=4).hex


def text_response(status: int, message: str) -> tuple[int, bytes, dict[str, str]]:
    return status, message.encode(), {"Content-Type": TEXT_TYPE}


def encode_response(status: int, body: bytes, headers: Headers, date: str, connection: str | None) -> bytes:
    lines = [f"HTTP/1.1 {status} {BaseHTTPRequestHandler.responses.get(status, ('',))[0]}",
             f"Date: {date}", "Access-Control-Allow-Origin: *"]
    lines.extend(f"{name}: {value}" for name, value in headers.items())
    if connection:
        lines.append(f"Connection: {connection}")
    if status in BODYLESS_STATUSES:
        body = b""
    else:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class Clock:
    """The formatted timestamps each request needs, computed once per second."""

    def __init__(self) -> None:
        self._cached = (-1, "", "")

    def _now(self) -> tuple[int, str, str]:
        second = int(time.time())
        if self._cached[0] != second:
            # One tuple, assigned at once, so concurrent readers never see a mix.
            self._cached = (second, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second)),
                            email.utils.formatdate(second, usegmt=True))
        return self._cached

    def rfc3339(self) -> str:
        return self._now()[1]

    def http_date(self) -> str:
        return self._now()[2]


@dataclass(slots=True)
class MethodStats:
    calls: int = 0
    failures: int = 0
    duration_sum: float = 0.0
    bucket_counts: list[int] = field(default_factory=lambda: [0] * (len(DURATION_BUCKETS) + 1))


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_method: dict[str, MethodStats] = {}

    def observe(self, method: str, seconds: float, failed: bool) -> None:
        with self._lock:
            stats = self._by_method.setdefault(method, MethodStats())
            stats.calls += 1
            stats.failures += failed
            stats.duration_sum += seconds
            stats.bucket_counts[bisect.bisect_left(DURATION_BUCKETS, seconds)] += 1

    def render(self, stuck_calls: int) -> str:
        with self._lock:
            snapshot = {method: MethodStats(s.calls, s.failures, s.duration_sum, list(s.bucket_counts))
                        for method, s in sorted(self._by_method.items())}
        lines = ["# HELP function_calls_total Number of calls to the function.",
                 "# TYPE function_calls_total counter"]
        lines += [f'function_calls_total{{method="{m}"}} {s.calls}' for m, s in snapshot.items()]
        lines += ["# HELP function_failures_total Number of calls that raised or timed out.",
                  "# TYPE function_failures_total counter"]
        lines += [f'function_failures_total{{method="{m}"}} {s.failures}' for m, s in snapshot.items()]
        lines += ["# HELP function_duration_seconds Duration of function calls.",
                  "# TYPE function_duration_seconds histogram"]
        for method, stats in snapshot.items():
            cumulative = 0
            for bound, count in zip((*map(repr, DURATION_BUCKETS), "+Inf"), stats.bucket_counts):
                cumulative += count
                lines.append(f'function_duration_seconds_bucket{{method="{method}",le="{bound}"}} {cumulative}')
            lines.append(f'function_duration_seconds_sum{{method="{method}"}} {stats.duration_sum!r}')
            lines.append(f'function_duration_seconds_count{{method="{method}"}} {stats.calls}')
        lines += ["# HELP function_stuck_calls Timed-out calls whose thread is still running.",
                  "# TYPE function_stuck_calls gauge", f"function_stuck_calls {stuck_calls}"]
        return "\n".join(lines) + "\n"


@dataclass(eq=False, slots=True)
class Call:
    connection: FunctionRequestHandler
    started: float
    deadline: float
    answered: bool = False
    timed_out: bool = False


class RunningCalls:
    """Calls in progress. Exactly one of the function's thread and the watchdog
    answers a call: whichever claims it first under the lock."""

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        # A Condition, so that a late function can wait until the watchdog's 408 is out.
        self._lock = threading.Condition(threading.Lock())
        self._calls: set[Call] = set()
        self.stuck = 0

    def __len__(self) -> int:
        return len(self._calls)

    def start(self, connection: FunctionRequestHandler) -> Call:
        now = time.monotonic()
        call = Call(connection, now, now + self._timeout)
        with self._lock:
            self._calls.add(call)
        return call

    def claim_for_function(self, call: Call) -> bool:
        """True if the function's result may be sent. False if the call timed out; then it
        returns once the watchdog has answered, so the caller may close the connection."""
        with self._lock:
            if not call.timed_out:
                call.answered = True
                return True
            self.stuck -= 1
            self._lock.wait_for(lambda: call not in self._calls)
            return False

    def claim_expired(self, now: float) -> list[Call]:
        with self._lock:
            expired = [call for call in self._calls
                       if call.deadline <= now and not call.answered and not call.timed_out]
            for call in expired:
                call.timed_out = True
            self.stuck += len(expired)
        return expired

    def remove(self, call: Call) -> None:
        """Forget a call once its response is written."""
        with self._lock:
            self._calls.discard(call)
            if call.timed_out:
                self._lock.notify_all()


class FunctionServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024

    def __init__(self, config: Config, function: Function) -> None:
        self.address_family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
        super().__init__((config.host, config.port), FunctionRequestHandler)
        self.config = config
        self.function = function
        self.context = config.context()
        self.timeout_message = f"Function timed out after {config.timeout_number} s"
        self.clock = Clock()
        self.metrics = Metrics()
        self.running = RunningCalls(config.timeout)
        self.stopping = False
        self.head_timeout_message = f"request head not received within {_number_text(config.header_timeout)} s"
        self.body_timeout_message = f"request body not received within {_number_text(config.read_timeout)} s"
        self.header_timeout = config.header_timeout  # read per request: one lookup less
        self.reserve_header_timeout = min(RESERVE_HEADER_TIMEOUT, config.header_timeout)
        # The open connections, for their read deadlines; how many are served, and how many are in the reserve.
        self._connections_lock = threading.Lock()
        self._connections: set[FunctionRequestHandler] = set()
        self._served = self._reserved = 0
        # Our own buffer: with PYTHONUNBUFFERED (usual in images) sys.stdout writes through.
        self.access_log = open(sys.stdout.fileno(), "wb", buffering=64 * 1024, closefd=False)

    def process_request(self, request: socket.socket, client_address: Any) -> None:
        """One thread per connection, up to FUNC_MAX_CONNECTIONS, then RESERVE_CONNECTIONS for /healthz and
        /metrics; a connection beyond both is closed at once. Replaces ThreadingMixIn's, which also keeps a list of
        the threads to join on server_close: the drain waits for the running calls only."""
        with self._connections_lock:
            if self._served < self.config.max_connections:
                self._served += 1
                handler: type[FunctionRequestHandler] | None = FunctionRequestHandler
            elif self._reserved < RESERVE_CONNECTIONS:
                self._reserved += 1
                handler = ReserveRequestHandler
            else:
                handler = None
        if handler is None:
            self.shutdown_request(request)
            return
        threading.Thread(target=self._serve_connection, args=(handler, request, client_address),
                         daemon=True).start()

    def _serve_connection(self, handler: type[FunctionRequestHandler], request: socket.socket,
                          client_address: Any) -> None:
        try:
            handler(request, client_address, self)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)
            with self._connections_lock:
                if handler.reserve:
                    self._reserved -= 1
                else:
                    self._served -= 1

    def watch(self, connection: FunctionRequestHandler) -> None:
        with self._connections_lock:
            self._connections.add(connection)

    def unwatch(self, connection: FunctionRequestHandler) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    def cut_off_slow_clients(self, now: float) -> None:
        with self._connections_lock:
            late = [connection for connection in self._connections if connection.read_deadline <= now]
        for connection in late:
            connection.cut_off(now)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client hanging up is routine
            super().handle_error(request, client_address)

    def log_access(self, method: str, path: str, status: int, seconds: float) -> None:
        self.access_log.write(f"{self.clock.rfc3339()} {method or '-'} {path or '-'} {status} "
                        f"{seconds * 1000:.3f}ms\n".encode())

    def healthy(self) -> bool:
        return self.running.stuck < self.config.max_stuck_calls

    def housekeep_forever(self) -> None:
        """Answer calls that passed their deadline, cut off slow clients and flush the access log, every tick."""
        config = self.config
        tick = min(0.05, max(min(config.timeout, config.header_timeout, config.read_timeout) / 10, 0.005))
        while True:
            time.sleep(tick)
            try:
                now = time.monotonic()
                for call in self.running.claim_expired(now):
                    call.connection.answer_timeout(call)
                self.cut_off_slow_clients(now)
                self.access_log.flush()
                sys.stdout.flush()  # the function's own prints
            except Exception:  # this thread must outlive any one failure
                traceback.print_exc()

    def stop(self) -> None:
        """Stop accepting; called from a signal handler, so shutdown() runs on its own thread."""
        self.stopping = True
        threading.Thread(target=self.shutdown, daemon=True).start()

    def wait_for_running_calls(self, grace_seconds: float) -> None:
        deadline = time.monotonic() + grace_seconds
        while len(self.running) and time.monotonic() < deadline:
            time.sleep(0.01)


class FunctionRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: FunctionServer
    started = 0.0
    reserve = False  # a connection beyond FUNC_MAX_CONNECTIONS: /healthz and /metrics only, then closed
    # When the housekeeping thread cuts the connection off: while the head (line and headers) is awaited, the
    # request's start (or the connection's) plus FUNC_HEADER_TIMEOUT; while a body is read, FUNC_READ_TIMEOUT
    # after its head; never while the function runs or the answer is written.
    read_deadline = NEVER
    cut = False  # the deadline passed: the reading side is shut down, what was read is not a whole request

    def setup(self) -> None:
        super().setup()
        self.read_deadline = time.monotonic() + (
            self.server.reserve_header_timeout if self.reserve else self.server.header_timeout)
        self.server.watch(self)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.unwatch(self)

    def cut_off(self, now: float) -> None:
        """Runs on the housekeeping thread: ends the read this connection's thread is blocked in."""
        if self.read_deadline > now:  # the read ended meanwhile
            return
        self.cut = True
        self.read_deadline = NEVER
        try:
            self.connection.shutdown(socket.SHUT_RD)
        except OSError:
            pass

    def parse_request(self) -> bool:
        self.started = time.monotonic()
        self.path = ""  # not set by a request line too malformed to parse
        parsed = super().parse_request()
        self.read_deadline = NEVER
        if self.cut and parsed:  # the headers ended with the connection, not with an empty line
            self.close_connection = True
            self._send(*text_response(408, self.server.head_timeout_message))
            return False
        return parsed

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # Called by BaseHTTPRequestHandler on malformed requests; the framing can't be trusted.
        if not self.requestline:  # the request line was too long: parse_request never ran
            self.started = time.monotonic()
        self.close_connection = True
        if self.cut:  # malformed because cut short
            code, message = 408, self.server.head_timeout_message
        self._send(*text_response(int(code), message or self.responses.get(code, ("",))[0]))

    def handle_request(self) -> None:
        path, _, query = self.path.partition("?")
        if self.reserve:
            self.close_connection = True
            if self.command != "GET" or path not in ("/healthz", "/metrics"):
                return self._send(*text_response(503, "too many connections"))
        try:
            body = self._read_body()
            if self.command == "OPTIONS":
                return self._send(204, b"", self._preflight_headers())
            if self.command == "GET" and path == "/healthz":
                return self._send(*text_response(200, "OK") if self.server.healthy()
                                  else text_response(503, "too many stuck calls"))
            if self.command == "GET" and path == "/metrics":
                rendered = self.server.metrics.render(self.server.running.stuck)
                return self._send(200, rendered.encode(), {"Content-Type": PROMETHEUS_TYPE})
            query_values = urllib.parse.parse_qs(query, keep_blank_values=True) if query else {}
            event = self._event(Request(self.command, path, query_values, self.headers, body))
        except RequestError as error:
            self.close_connection = True
            return self._send(*text_response(error.status, str(error)))
        self._call_function(event)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = handle_request

    def _preflight_headers(self) -> dict[str, str]:
        headers = {"Access-Control-Allow-Methods":
                   self.headers.get("Access-Control-Request-Method") or DEFAULT_CORS_METHODS}
        if requested_headers := self.headers.get("Access-Control-Request-Headers"):
            headers["Access-Control-Allow-Headers"] = requested_headers
        return headers

    def _event(self, request: Request) -> dict[str, Any]:
        headers = request.headers
        media_type, charset = parse_content_type(headers.get("Content-Type"))
        return {
            "data": decode_data(request.body, media_type, charset),
            "event-id": headers.get("event-id") or new_event_id(),
            "event-type": headers.get("event-type") or media_type or "",
            "event-time": headers.get("event-time") or self.server.clock.rfc3339(),
            "event-namespace": headers.get("event-namespace") or "",
            "extensions": {"request": request},
        }

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_in_time(self._read_chunked_body)
        length = self.headers.get("Content-Length")
        if length is None:
            return b""
        if not length.strip().isdigit():
            raise RequestError(400, f"invalid Content-Length {length!r}")
        self._check_body_size(int(length))
        return self._read_in_time(self._read_sized_body, int(length)) if int(length) else b""

    def _read_in_time(self, read: Callable[..., bytes], *args: Any) -> bytes:
        """The body, if it arrives within FUNC_READ_TIMEOUT; a 408 if the housekeeping thread cut it off."""
        self.read_deadline = time.monotonic() + self.server.config.read_timeout
        try:
            body = read(*args)
        except RequestError:
            if self.cut:
                raise RequestError(408, self.server.body_timeout_message) from None
            raise
        finally:
            self.read_deadline = NEVER
        if self.cut:  # whole, but just too late: the connection cannot read another request
            self.close_connection = True
        return body

    def _read_sized_body(self, length: int) -> bytes:
        body = self.rfile.read(length)
        if len(body) != length:
            raise RequestError(400, "request body shorter than its Content-Length")
        return body

    def _read_chunked_body(self) -> bytes:
        chunks, total = [], 0
        while True:
            size_field = self.rfile.readline(MAX_LINE_BYTES).split(b";")[0].strip()
            try:
                size = int(size_field, 16)
            except ValueError:
                raise RequestError(400, f"invalid chunk size {size_field!r}") from None
            if size == 0:
                break
            total += size
            self._check_body_size(total)
            chunks.append(self.rfile.read(size))
            self.rfile.readline(MAX_LINE_BYTES)  # the CRLF closing the chunk
        while self.rfile.readline(MAX_LINE_BYTES).strip():  # trailer fields, unused
            pass
        return b"".join(chunks)

    def _check_body_size(self, size: int) -> None:
        if size > self.server.config.max_body_bytes:
            raise RequestError(413, f"request body larger than {self.server.config.max_body_bytes} bytes")

    def _call_function(self, event: dict[str, Any]) -> None:
        server = self.server
        call = server.running.start(self)
        try:
            response, failed = to_response(server.function(event, dict(server.context))), False
        except BaseException as error:  # even SystemExit must not kill the connection's thread
            traceback.print_exc()
            message = str(error).replace("\n", " ")
            response, failed = text_response(500, f"{type(error).__name__}: {message}"), True
        try:
            if not server.running.claim_for_function(call):
                print(f"discarded the late result of {self.command} {self.path}", file=sys.stderr)
                self.close_connection = True
                return
            server.metrics.observe(self.command, time.monotonic() - call.started, failed)
            self._send(*response)
        finally:
            server.running.remove(call)

    def answer_timeout(self, call: Call) -> None:
        """Runs on the housekeeping thread while the function still runs on this connection's."""
        server = self.server
        server.metrics.observe(self.command, time.monotonic() - call.started, failed=True)
        try:
            self._send(*text_response(408, server.timeout_message), close=True)
            # The function's thread may hold the socket for long: tell the client now.
            self.connection.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        finally:
            server.running.remove(call)

    def _send(self, status: int, body: bytes, headers: Headers, close: bool = False) -> None:
        if close or self.server.stopping:
            self.close_connection = True
        if self.close_connection:
            connection = "close"
        elif self.request_version == "HTTP/1.0":
            connection = "keep-alive"
        else:
            connection = None
        payload = encode_response(status, body, headers, self.server.clock.http_date(), connection)
        try:
            self.wfile.write(payload)
        except OSError:
            self.close_connection = True
        now = time.monotonic()
        self.server.log_access(self.command, self.path, status, now - self.started)
        if not self.close_connection:  # the next request's head is awaited from now
            self.read_deadline = now + self.server.header_timeout


class ReserveRequestHandler(FunctionRequestHandler):
    """A connection beyond FUNC_MAX_CONNECTIONS: the kubelet's probes and the metrics' scraper still get their
    answers (a pod busy with calls is not one to restart); calls get 503 `too many connections`."""
    reserve = True


def _number_text(seconds: float) -> str:
    """Seconds as a person wrote them: 10, not 10.0."""
    return str(int(seconds)) if seconds.is_integer() else str(seconds)


def write_termination_log(message: str) -> None:
    path = os.environ.get("FUNC_TERMINATION_LOG", "/dev/termination-log")
    if os.access(path, os.W_OK):  # Kubernetes creates it; elsewhere it is usually absent
        with open(path, "w", encoding="utf-8") as log:
            log.write(message + "\n")


def fail_start(message: str) -> int:
    traceback.print_exc()
    print(message, file=sys.stderr)
    write_termination_log(message)
    return 1


def main() -> int:
    try:
        config = Config.from_env(os.environ)
    except ValueError as error:
        return fail_start(f"invalid configuration: {error}")
    try:
        function = load_function(config)
    except Exception as error:
        return fail_start(f"cannot load handler {config.qualified_name}: {type(error).__name__}: {error}")
    try:
        server = FunctionServer(config, function)
    except (OSError, OverflowError) as error:
        return fail_start(f"cannot listen on {config.host}:{config.port}: {type(error).__name__}: {error}")
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signal_number, lambda *_: server.stop())
    threading.Thread(target=server.housekeep_forever, name="housekeeping", daemon=True).start()
    print(f"serving {config.qualified_name} on {config.host}:{server.server_port}", flush=True)
    server.serve_forever()
    server.server_close()
    server.wait_for_running_calls(config.drain_seconds)
    server.access_log.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
