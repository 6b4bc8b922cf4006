"""How one message reaches one function: Kubeless's headers, the retry rule and the dead-letter decision.

No broker and no socket here: a source hands a Message to `Delivery.deliver`, which calls the function through a
Transport until it answers 2xx, runs out of attempts, or the consumer stops, and says which. The source commits (or
dead-letters, then commits) only on that answer, which is what makes delivery at least once.

Two kinds of failure, counted differently:
- the function answered and failed (non-2xx, a timeout, a dropped connection after the request was sent): an
  attempt is spent; after max_attempts the message is dead-lettered, so one bad message cannot block its partition;
- the function is not there (connection refused, no DNS name, 502/503 from a proxy with no endpoints): nothing
  was called, so no attempt is spent and the call is retried until it is back. A redeploy then loses nothing, at
  the price of a partition waiting while its function is gone.
"""
from __future__ import annotations

import base64
import functools
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Protocol

from kubeless_api import contract, meta

# A proxy in front of the function (an ingress, a mesh) answers these when the Service has no ready endpoint.
UNREACHABLE_STATUSES = frozenset({502, 503})
EVENT_NAMESPACES = {"kafka": contract.EVENT_NAMESPACE_KAFKA, "nats": contract.EVENT_NAMESPACE_NATS,
                    "kinesis": contract.EVENT_NAMESPACE_KINESIS}
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"


class Unreachable(Exception):
    """The call never reached the function; retried without spending an attempt."""


class Transport(Protocol):
    def post(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
        """The response's status code; raises Unreachable, or OSError for a call that failed after it was sent."""


# --- headers ---------------------------------------------------------------------------------------------------

def event_id() -> str:
    """Kubeless's: 11 random bytes, base64url with its padding."""
    return base64.urlsafe_b64encode(os.urandom(11)).decode()


def event_time(nanoseconds: int | None = None) -> str:
    """Go's time.Time.String() of a UTC time, as Kubeless sent it: `2009-11-10 23:00:00.5 +0000 UTC` (fractional
    seconds only when there are any, trailing zeros dropped)."""
    nanoseconds = time.time_ns() if nanoseconds is None else nanoseconds
    seconds, fraction = divmod(nanoseconds, 1_000_000_000)
    text = datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    if fraction:
        text += "." + f"{fraction:09d}".rstrip("0")
    return text + " +0000 UTC"


def content_type(body: bytes) -> str:
    """Kubeless's rule: JSON when the body is a JSON object, form-encoded otherwise (arrays and scalars too)."""
    try:
        return JSON if isinstance(json.loads(body), dict) else FORM
    except ValueError:
        return FORM


@functools.cache  # the version is a file's read: once, not once per message
def user_agent(kind: str) -> str:
    return f"kubeless-{kind}-trigger-controller/{meta.project_version()}"


def headers(kind: str, body: bytes, topic: str | None) -> dict[str, str]:
    """The headers of one call. Each call (a retry too) gets its own event-id and event-time, as in Kubeless."""
    kind_of_body = content_type(body)
    result = {contract.HEADER_EVENT_ID: event_id(), contract.HEADER_EVENT_TIME: event_time(),
              contract.HEADER_EVENT_NAMESPACE: EVENT_NAMESPACES[kind], contract.HEADER_EVENT_TYPE: kind_of_body,
              "Content-Type": kind_of_body, "User-Agent": user_agent(kind)}
    if topic is not None:  # NATS's calls carry none, as in Kubeless
        result["event-topic"] = topic
    return result


def group_id(namespace: str, trigger: str, function: str, topic: str) -> str:
    """Kubeless's consumer group (Kafka) and queue group (NATS): one per trigger and function."""
    return f"{namespace}_{trigger}_{function}_{topic}"


# --- backoff ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Backoff:
    """Capped exponential: first, 2×first, 4×first, ... up to cap (Kubeless's BACKOFF_INTERVAL)."""
    first: float = 0.1
    cap: float = 5.0

    def delay(self, retry: int) -> float:
        """The wait before retry number `retry` (1 for the first retry)."""
        return min(self.cap, self.first * 2 ** min(retry - 1, 30))


def parse_duration(text: str) -> float:
    """A Go duration (`500ms`, `2s`, `1m30s`) or plain seconds, in seconds."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    total, number = 0.0, ""
    index = 0
    while index < len(text):
        char = text[index]
        if char.isdigit() or char == ".":
            number += char
            index += 1
            continue
        unit = next((u for u in ("ns", "us", "µs", "ms", "s", "m", "h") if text.startswith(u, index)), None)
        if unit is None or not number:
            raise ValueError(f"not a duration: {text!r}")
        total += float(number) * units[unit]
        number, index = "", index + len(unit)
    if number:
        raise ValueError(f"not a duration (a unit is missing): {text!r}")
    return total


# --- counts ----------------------------------------------------------------------------------------------------

@dataclass
class Stats:
    """One consumer's counts and state, shared by its threads and read by the status and metrics."""
    delivered: int = 0
    failed: int = 0          # calls answered with non-2xx, timed out or cut off
    retried: int = 0         # calls made again after a failed or unreachable one
    dead_lettered: int = 0
    lag: int | None = None
    last_error: str = ""
    last_error_time: datetime | None = None
    running: bool = False    # subscribed and reading
    broker_error: str = ""   # why it is not running, when the broker is the reason
    checkpoint: str = ""     # Kinesis: the last sequence number handled
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        with self.lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def error(self, message: str, now: datetime | None = None) -> None:
        with self.lock:
            self.last_error, self.last_error_time = message, now or datetime.now(timezone.utc)


# --- one message -----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Message:
    body: bytes
    origin: dict[str, str]  # where it came from (topic, partition, offset; subject, sequence; ...) for dead-letters


@dataclass(frozen=True)
class Result:
    outcome: str        # DELIVERED, DEAD_LETTER (the source dead-letters it, then commits), STOPPED (commit nothing)
    attempts: int
    error: str = ""


DELIVERED, DEAD_LETTER, STOPPED = "delivered", "dead-letter", "stopped"


def dead_letter_headers(result: Result, origin: dict[str, str]) -> dict[str, str]:
    """What a dead-lettered message carries besides its body: why, after how many calls, and from where."""
    return {"x-kubeless-error": result.error, "x-kubeless-attempts": str(result.attempts),
            **{f"x-kubeless-origin-{key}": str(value) for key, value in origin.items()}}


class Delivery:
    """Calls one function with messages, one at a time (a source runs one per partition to keep their order)."""

    def __init__(self, transport: Transport, *, kind: str, url: str, topic: str | None, max_attempts: int,
                 backoff: Backoff, timeout: float, stats: Stats, stopped: threading.Event,
                 label: str = "", now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)):
        self.transport, self.kind, self.url, self.topic = transport, kind, url, topic
        self.max_attempts, self.backoff, self.timeout = max(1, max_attempts), backoff, timeout
        self.stats, self.stopped, self.label, self.now = stats, stopped, label or url, now

    def deliver(self, message: Message, heartbeat: Callable[[], None] | None = None) -> Result:
        """Until a 2xx (DELIVERED), max_attempts failures (DEAD_LETTER) or the consumer stops (STOPPED).
        `heartbeat` is called while waiting to retry: a source whose broker redelivers unacknowledged messages
        after a while (JetStream) tells it the message is still being worked on."""
        attempts, calls, error = 0, 0, ""
        while True:
            if calls:
                self.stats.add(retried=1)
                if self._wait(self.backoff.delay(calls), heartbeat):
                    return Result(STOPPED, attempts, error)
            elif self.stopped.is_set():
                return Result(STOPPED, attempts, error)
            calls += 1
            try:
                status = self.transport.post(self.url, message.body, headers(self.kind, message.body, self.topic),
                                             self.timeout)
            except Unreachable as reason:
                error = f"{self.label}: unreachable: {reason}"
                self.stats.error(error, self.now())
                continue
            except OSError as reason:  # sent, then timed out or cut off: the function may have run
                attempts += 1
                error = f"{self.label}: {type(reason).__name__}: {reason or 'no answer'}"
            else:
                if 200 <= status < 300:
                    self.stats.add(delivered=1)
                    return Result(DELIVERED, attempts + 1)
                if status in UNREACHABLE_STATUSES:
                    error = f"{self.label}: unreachable: HTTP {status}"
                    self.stats.error(error, self.now())
                    continue
                attempts += 1
                error = f"{self.label}: HTTP {status}"
            self.stats.add(failed=1)
            self.stats.error(error, self.now())
            if attempts >= self.max_attempts:
                return Result(DEAD_LETTER, attempts, error)

    def handle(self, message: Message, dead_letter: Callable[[Message, Result], None],
               heartbeat: Callable[[], None] | None = None) -> bool:
        """Deliver, or dead-letter after the last attempt: True when the source may commit the message. A
        dead-letter that fails raises, and the message stays uncommitted."""
        result = self.deliver(message, heartbeat)
        if result.outcome == DEAD_LETTER:
            dead_letter(message, result)
            self.stats.add(dead_lettered=1)
        return result.outcome != STOPPED

    def _wait(self, seconds: float, heartbeat: Callable[[], None] | None) -> bool:
        """Sleep, interrupted by a stop (True); heartbeats every few seconds of a long wait."""
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return self.stopped.is_set()
            if self.stopped.wait(min(left, 5.0)):
                return True
            if heartbeat is not None:
                heartbeat()
