"""The trigger consumers' delivery core, driven by a fake function: headers, the content-type rule, event-time,
the backoff schedule and the retry / dead-letter state machine."""
from __future__ import annotations

import base64
import json
import threading

import pytest

from kubeless_consumers import delivery
from kubeless_consumers.delivery import (DEAD_LETTER, DELIVERED, STOPPED, Backoff, Delivery, Message, Stats,
                                         Unreachable)


class FakeFunction:
    """Answers with the scripted statuses (or raises the scripted errors) in turn, then with the last one."""

    def __init__(self, *answers):
        self.answers, self.calls = list(answers), []

    def post(self, url, body, headers, timeout):
        self.calls.append((url, body, headers, timeout))
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def make(function, max_attempts=3, stopped=None):
    stats = Stats()
    return Delivery(function, kind="kafka", url="http://f.ns.svc.cluster.local:8080", topic="t",
                    max_attempts=max_attempts, backoff=Backoff(0.0, 0.0), timeout=5, stats=stats,
                    stopped=stopped or threading.Event()), stats


MESSAGE = Message(b'{"a": 1}', {"topic": "t", "partition": "0", "offset": "7"})


def test_event_time_is_gos_time_string_in_utc():
    assert delivery.event_time(1257894000 * 10**9) == "2009-11-10 23:00:00 +0000 UTC"
    assert delivery.event_time(1257894000 * 10**9 + 500_000_000) == "2009-11-10 23:00:00.5 +0000 UTC"
    assert delivery.event_time(1257894000 * 10**9 + 123_456_789) == "2009-11-10 23:00:00.123456789 +0000 UTC"


def test_event_id_is_eleven_random_bytes_base64url():
    ids = {delivery.event_id() for _ in range(50)}
    assert len(ids) == 50
    for value in ids:
        assert len(value) == 16 and value.endswith("=")
        assert len(base64.urlsafe_b64decode(value)) == 11


@pytest.mark.parametrize("body,expected", [
    (b'{"a": 1}', "application/json"), (b"{}", "application/json"),
    (b"[1, 2]", "application/x-www-form-urlencoded"), (b'"text"', "application/x-www-form-urlencoded"),
    (b"hello", "application/x-www-form-urlencoded"), (b"", "application/x-www-form-urlencoded"),
    (b"\xff\xfe", "application/x-www-form-urlencoded")])
def test_content_type_is_json_only_for_a_json_object(body, expected):
    assert delivery.content_type(body) == expected


@pytest.mark.parametrize("kind,namespace,topic", [("kafka", "kafkatriggers.kubeless.io", "t"),
                                                  ("nats", "natstriggers.kubeless.io", None),
                                                  ("kinesis", "kinesistriggers.kubeless.io", "s")])
def test_headers_are_kubeless(kind, namespace, topic):
    headers = delivery.headers(kind, b'{"x": 1}', topic)
    assert headers["event-namespace"] == namespace
    assert headers["event-type"] == headers["Content-Type"] == "application/json"
    assert headers["User-Agent"].startswith(f"kubeless-{kind}-trigger-controller/")
    assert headers["event-time"].endswith(" +0000 UTC") and len(headers["event-id"]) == 16
    assert headers.get("event-topic") == topic


def test_group_id_is_kubeless():
    assert delivery.group_id("ns", "trig", "fn", "orders") == "ns_trig_fn_orders"


def test_backoff_doubles_up_to_the_cap():
    assert [Backoff(0.1, 1.0).delay(n) for n in range(1, 7)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    assert Backoff(0.1, 5).delay(500) == 5


@pytest.mark.parametrize("text,seconds", [("500ms", 0.5), ("2s", 2), ("1m30s", 90), ("1.5h", 5400), ("3", 3)])
def test_backoff_interval_is_a_go_duration(text, seconds):
    assert delivery.parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["fast", "5x", "ms"])
def test_a_bad_duration_is_refused(text):
    with pytest.raises(ValueError):
        delivery.parse_duration(text)


def test_a_2xx_delivers_at_once():
    function = FakeFunction(204)
    subject, stats = make(function)
    result = subject.deliver(MESSAGE)
    assert (result.outcome, result.attempts) == (DELIVERED, 1)
    (url, body, headers, timeout), = function.calls
    assert body == MESSAGE.body and headers["event-topic"] == "t" and timeout == 5
    assert (stats.delivered, stats.failed, stats.retried) == (1, 0, 0)


def test_failures_are_retried_then_delivered():
    subject, stats = make(FakeFunction(500, TimeoutError("timed out"), 200), max_attempts=3)
    result = subject.deliver(MESSAGE)
    assert (result.outcome, result.attempts) == (DELIVERED, 3)
    assert (stats.delivered, stats.failed, stats.retried) == (1, 2, 2)
    assert "TimeoutError" in stats.last_error


def test_after_max_attempts_the_message_is_dead_lettered_with_the_last_error():
    function = FakeFunction(500)
    subject, stats = make(function, max_attempts=3)
    dead = []
    assert subject.handle(MESSAGE, lambda message, result: dead.append((message, result))) is True
    (message, result), = dead
    assert (result.outcome, result.attempts) == (DEAD_LETTER, 3)
    assert len(function.calls) == 3 and stats.dead_lettered == 1 and stats.delivered == 0
    headers = delivery.dead_letter_headers(result, message.origin)
    assert headers == {"x-kubeless-error": result.error, "x-kubeless-attempts": "3", "x-kubeless-origin-topic": "t",
                       "x-kubeless-origin-partition": "0", "x-kubeless-origin-offset": "7"}
    assert "HTTP 500" in headers["x-kubeless-error"]


def test_a_failed_dead_letter_leaves_the_message_uncommitted():
    subject, stats = make(FakeFunction(500), max_attempts=1)

    def broken(message, result):
        raise OSError("broker down")

    with pytest.raises(OSError):
        subject.handle(MESSAGE, broken)
    assert stats.dead_lettered == 0


@pytest.mark.parametrize("gone", [Unreachable("connection refused"), 503, 502])
def test_an_unreachable_function_spends_no_attempts(gone):
    function = FakeFunction(*([gone] * 10), 200)
    subject, stats = make(function, max_attempts=2)
    result = subject.deliver(MESSAGE)
    assert (result.outcome, result.attempts) == (DELIVERED, 1), "ten refusals, and no dead-letter"
    assert len(function.calls) == 11 and stats.retried == 10 and stats.failed == 0
    assert "unreachable" in stats.last_error


def test_each_call_has_its_own_event_id():
    function = FakeFunction(500, 200)
    make(function)[0].deliver(MESSAGE)
    assert function.calls[0][2]["event-id"] != function.calls[1][2]["event-id"]


def test_a_stop_during_the_retries_commits_nothing():
    stopped = threading.Event()

    class StopsAfterFirst(FakeFunction):
        def post(self, *args):
            stopped.set()
            return super().post(*args)

    subject, _ = make(StopsAfterFirst(500), max_attempts=5, stopped=stopped)
    assert subject.deliver(MESSAGE).outcome == STOPPED
    assert subject.handle(MESSAGE, lambda *_: pytest.fail("not dead-lettered")) is False


def test_long_waits_heartbeat(monkeypatch):
    beats = []
    stats, stopped = Stats(), threading.Event()
    subject = Delivery(FakeFunction(500, 200), kind="nats", url="http://f", topic=None, max_attempts=5,
                       backoff=Backoff(0.02, 0.02), timeout=1, stats=stats, stopped=stopped)
    waits = []
    monkeypatch.setattr(stopped, "wait", lambda seconds: waits.append(seconds) or False)
    clock = iter([0.0, 0.0, 10.0, 10.0])
    monkeypatch.setattr(delivery.time, "monotonic", lambda: next(clock, 100.0))
    subject.backoff = Backoff(6.0, 6.0)
    assert subject.deliver(MESSAGE, heartbeat=lambda: beats.append(1)).outcome == DELIVERED
    assert beats and waits[0] == 5.0
    assert "event-topic" not in json.dumps(subject.transport.calls[0][2])
