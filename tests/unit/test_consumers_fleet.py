"""Which consumers a trigger wants (selector, group id, URL, port, dead-letter default), the Fleet starting and
stopping them as functions come and go, and the trigger's status from their counts."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest

from kubeless_api import conditions
from kubeless_consumers import fleet as fleets
from kubeless_consumers import status
from kubeless_consumers.delivery import Stats
from kubeless_consumers.settings import Settings
from kubeless_controller.runner import Problem

NOW = datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def function(name, labels=None, namespace="ns", timeout=None, deleting=False, ready="True"):
    metadata = {"name": name, "namespace": namespace, "labels": labels or {}, "uid": f"uid-{name}"}
    if deleting:
        metadata["deletionTimestamp"] = "2030-01-01T00:00:00Z"
    return {"metadata": metadata, "spec": {"timeout": timeout} if timeout else {},
            "status": {"conditions": [{"type": "Ready", "status": ready, "reason": "x", "message": "y"}]}}


def trigger(kind="KafkaTrigger", spec=None, name="t", status_=None):
    return {"kind": kind, "metadata": {"name": name, "namespace": "ns", "uid": "uid-t", "generation": 2},
            "spec": spec or {"topic": "orders", "functionSelector": {"matchLabels": {"app": "shop"}}},
            **({"status": status_} if status_ else {})}


@pytest.mark.parametrize("selector,labels,expected", [
    ({"matchLabels": {"a": "1"}}, {"a": "1", "b": "2"}, True),
    ({"matchLabels": {"a": "1"}}, {"a": "2"}, False),
    ({"matchLabels": {"a": "1", "b": "2"}}, {"a": "1"}, False),
    ({}, {"a": "1"}, False),
    (None, {}, False),
    ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "2"]}]}, {"a": "2"}, True),
    ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {"a": "1"}, False),
    ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {"b": "1"}, False),
    ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {"b": "1"}, True),
    ({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]}, {"a": "5"}, False)])
def test_selector_matching(selector, labels, expected):
    assert fleets.selector_matches(selector, labels) is expected


def test_a_trigger_wants_one_consumer_per_matching_function_of_its_namespace():
    functions = [function("b", {"app": "shop"}, timeout="30"), function("a", {"app": "shop", "x": "y"}),
                 function("c", {"app": "other"}), function("d", {"app": "shop"}, namespace="elsewhere"),
                 function("e", {"app": "shop"}, deleting=True)]
    specs = fleets.wanted(trigger(), functions, {"a": 9090}, Settings())
    assert [s.function for s in specs] == ["a", "b"]
    a, b = specs
    assert a.group == "ns_t_a_orders" and a.topic == "orders" and a.kind == "kafka"
    assert a.url == "http://a.ns.svc.cluster.local:9090" and b.url == "http://b.ns.svc.cluster.local:8080"
    assert a.max_attempts == 5 and a.dead_letter == "orders.dead-letter"
    assert b.timeout == 35.0 and a.timeout == 185.0


def test_delivery_fields_and_url_template():
    spec = {"topic": "orders", "functionSelector": {"matchLabels": {"app": "shop"}}, "maxAttempts": 2,
            "deadLetterTopic": "dlq", "stream": "ORDERS"}
    settings = Settings(function_url="http://127.0.0.1:{port}/{namespace}/{name}")
    (nats,) = fleets.wanted(trigger("NATSTrigger", spec), [function("a", {"app": "shop"})], {}, settings)
    assert (nats.kind, nats.stream, nats.max_attempts, nats.dead_letter) == ("nats", "ORDERS", 2, "dlq")
    assert nats.url == "http://127.0.0.1:8080/ns/a" and nats.group == "ns_t_a_orders"


def test_a_kinesis_trigger_calls_the_function_it_names():
    spec = {"function-name": "a", "stream": "s1", "aws-region": "us-west-2", "shard": "shardId-000000000000",
            "secret": "aws", "endpoint": "http://kinesis.kubeless:4567"}
    functions = [function("a"), function("b")]
    (only,) = fleets.wanted(trigger("KinesisTrigger", spec), functions, {}, Settings(), ("id", "key"))
    assert (only.function, only.topic, only.shard, only.region, only.endpoint, only.credentials) == (
        "a", "s1", "shardId-000000000000", "us-west-2", "http://kinesis.kubeless:4567", ("id", "key"))
    assert only.dead_letter == "s1.dead-letter"


class FakeConsumer:
    def __init__(self, spec, stats, log):
        self.spec, self.stats, self.log, self.alive = spec, stats, log, False

    def start(self):
        self.alive = True
        self.log.append(("start", self.spec.function))

    def stop(self):
        self.alive = False
        self.log.append(("stop", self.spec.function))

    def join(self, timeout=None):
        pass

    def is_alive(self):
        return self.alive


def test_the_fleet_follows_the_functions_and_keeps_their_counts():
    log = []
    fleet = fleets.Fleet(lambda spec, stats: FakeConsumer(spec, stats, log))
    shop = [function("a", {"app": "shop"}), function("b", {"app": "shop"})]
    fleet.converge("ns/t", fleets.wanted(trigger(), shop, {}, Settings()))
    assert log == [("start", "a"), ("start", "b")]
    fleet.stats_of("ns/t")["a"].add(delivered=3)
    fleet.converge("ns/t", fleets.wanted(trigger(), shop, {}, Settings()))
    assert len(log) == 2, "nothing changed, nothing restarted"
    fleet.converge("ns/t", fleets.wanted(trigger(), shop[1:], {}, Settings()))  # a deleted
    assert log[-1] == ("stop", "a") and not fleet.is_running("ns/t", "a")
    fleet.converge("ns/t", fleets.wanted(trigger(), shop, {"b": 9000}, Settings()))  # a back, b's port changed
    assert log[-3:] == [("stop", "b"), ("start", "a"), ("start", "b")]
    assert fleet.stats_of("ns/t")["a"].delivered == 3, "a redeployed function keeps counting"
    fleet.forget("ns/t")
    assert fleet.stats_of("ns/t") == {} and not fleet.running


def test_a_consumer_that_died_is_started_again():
    log = []
    fleet = fleets.Fleet(lambda spec, stats: FakeConsumer(spec, stats, log))
    specs = fleets.wanted(trigger(), [function("a", {"app": "shop"})], {}, Settings())
    fleet.converge("ns/t", specs)
    fleet.running["ns/t", "a"].consumer.alive = False
    fleet.converge("ns/t", specs)
    assert log == [("start", "a"), ("stop", "a"), ("start", "a")]


# --- status ----------------------------------------------------------------------------------------------------

def ready(result):
    condition = conditions.get_condition(result, conditions.READY)
    return condition["status"], condition["reason"]


def test_status_sums_the_counts_over_the_functions_and_adds_the_previous_ones():
    a, b = Stats(delivered=5, retried=2, lag=3, running=True), Stats(delivered=1, dead_lettered=1, lag=4, running=True)
    b.error("function ns/b: HTTP 500", NOW)
    a.error("function ns/a: HTTP 502", NOW - timedelta(minutes=1))
    old = trigger(status_={"delivered": 10, "retried": 1, "deadLettered": 0})
    result = status.event_status(old, "orders", ["a", "b"], {"a": a, "b": b}, {"a", "b"}, status.baseline(old), NOW)
    assert ready(result) == ("True", "Consuming")
    assert (result["delivered"], result["retried"], result["deadLettered"], result["lag"]) == (16, 3, 1, 7)
    assert result["functions"] == ["a", "b"] and result["observedGeneration"] == 2
    assert result["lastError"] == "function ns/b: HTTP 500" and result["lastErrorTime"] == "2030-01-02T03:04:05Z"


def test_status_reasons():
    empty = status.event_status(trigger(), "orders", [], {}, set(), {"delivered": 0, "retried": 0,
                                                                    "deadLettered": 0}, NOW)
    assert ready(empty) == ("False", "NoFunctionMatches") and "lag" not in empty
    down = Stats(broker_error="NoBrokersAvailable: NoBrokersAvailable")
    broken = status.event_status(trigger(), "orders", ["a"], {"a": down}, set(), status.baseline(trigger()), NOW)
    assert ready(broken) == ("False", "BrokerUnreachable")
    assert "NoBrokersAvailable" in conditions.get_condition(broken, "Ready")["message"]
    starting = status.event_status(trigger(), "orders", ["a"], {"a": Stats()}, set(), status.baseline(trigger()), NOW)
    assert ready(starting) == ("False", "ConsumerStarting")
    problem = Problem("SecretNotFound", "secret aws does not exist")
    assert ready(status.event_status(trigger(), "s", [], {}, set(), {}, NOW, problem)) == ("False", "SecretNotFound")


def test_a_status_that_differs_only_in_counts_can_wait():
    base = status.baseline(trigger())
    stats = {"a": Stats(running=True)}
    before = status.event_status(trigger(), "orders", ["a"], stats, {"a"}, base, NOW)
    stats["a"].add(delivered=1)
    after = status.event_status(trigger(status_=before), "orders", ["a"], stats, {"a"}, base, NOW)
    assert before != after and status.only_counts_differ(before, after)
    gone = status.event_status(trigger(status_=before), "orders", [], stats, set(), base, NOW)
    assert not status.only_counts_differ(before, gone)


def test_stats_are_counted_under_their_lock():
    stats = Stats()
    threads = [threading.Thread(target=lambda: [stats.add(delivered=1) for _ in range(1000)]) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert stats.delivered == 4000


def test_settings_from_kubeless_variables():
    settings = Settings.from_env({"KAFKA_BROKERS": "a:9092, b:9092", "KAFKA_ENABLE_TLS": "true",
                                  "BACKOFF_INTERVAL": "2s", "NATS_URL": "nats://n:4222",
                                  "KUBELESS_FUNCTION_URL": "http://127.0.0.1:{port}"})
    assert settings.kafka_brokers == ("a:9092", "b:9092") and settings.kafka_tls and not settings.kafka_sasl
    assert settings.backoff.cap == 2.0 and settings.nats_url == "nats://n:4222"
    assert settings.function_url == "http://127.0.0.1:{port}"
    defaults = Settings.from_env({})
    assert defaults.kafka_brokers == ("kafka.kubeless:9092",) and defaults.nats_url == "nats://nats.kubeless:4222"


# --- the reconciler, on fake copies ----------------------------------------------------------------------------

class Copy:
    def __init__(self, objects, index=lambda o: o["metadata"]["namespace"]):
        self.objects, self.index = {f"{o['metadata']['namespace']}/{o['metadata']['name']}": o for o in objects}, index

    def get(self, key):
        return self.objects.get(key)

    def by_index(self, value):
        return [o for o in self.objects.values() if self.index(o) == value]


class FakeRunner:
    def __init__(self, triggers, functions, services=()):
        self.copies = {"triggers": Copy(triggers), "functions": Copy(functions), "services": Copy(services)}
        self.statuses, self.events, self.forgotten = [], [], []
        self.events = type("Events", (), {"record": lambda _, *args: self.statuses.append(("event", *args[1:3]))})()

    def cache(self, name):
        return self.copies[name]

    def write_status(self, owner, before, after, failing=False):
        self.statuses.append(("status", after))

    def now(self):
        return NOW

    def forget(self, key):
        self.forgotten.append(key)


def test_the_reconciler_runs_a_consumer_per_function_and_writes_the_status():
    from kubeless_consumers.reconciler import EventTriggerReconciler

    log = []
    fleet = fleets.Fleet(lambda spec, stats: FakeConsumer(spec, stats, log))
    subject = EventTriggerReconciler("kafka", fleet, Settings())
    service = {"metadata": {"name": "a", "namespace": "ns", "labels": {"function": "a"}},
               "spec": {"ports": [{"port": 9000}]}}
    runner = FakeRunner([trigger()], [function("a", {"app": "shop"})], [service])
    assert subject.reconcile("ns/t", runner).startswith("ready=False reason=ConsumerStarting")
    assert fleet.running["ns/t", "a"].spec.url == "http://a.ns.svc.cluster.local:9000"
    fleet.stats_of("ns/t")["a"].running = True
    runner.copies["triggers"].objects["ns/t"]["status"] = [s for s in runner.statuses if s[0] == "status"][-1][1]
    assert subject.reconcile("ns/t", runner).startswith("ready=True reason=Consuming")
    assert ("event", "Normal", "Ready") in runner.statuses
    del runner.copies["triggers"].objects["ns/t"]
    assert subject.reconcile("ns/t", runner) == "trigger=gone"
    assert log[-1] == ("stop", "a") and runner.forgotten == ["ns/t"]


def test_a_function_not_ready_yet_gets_no_consumer_and_the_status_says_why():
    from kubeless_consumers.reconciler import EventTriggerReconciler

    log = []
    fleet = fleets.Fleet(lambda spec, stats: FakeConsumer(spec, stats, log))
    subject = EventTriggerReconciler("kafka", fleet, Settings())
    runner = FakeRunner([trigger()], [function("a", {"app": "shop"}, ready="False")])
    assert subject.reconcile("ns/t", runner).startswith("ready=False reason=ConsumerStarting")
    assert ("ns/t", "a") not in fleet.running
    status = [s for s in runner.statuses if s[0] == "status"][-1][1]
    assert "waiting for function(s) a to be ready" in status["conditions"][0]["message"]


def test_the_consumers_copy_of_a_function_keeps_its_readiness_and_not_its_code():
    copied = fleets.function_readiness({**function("a", ready="False"), "spec": {"function": "x" * 1000}})
    assert not fleets.is_ready(copied) and "function" not in copied["spec"]
    assert copied["status"] == {"conditions": [{"type": "Ready", "status": "False"}]}
    assert fleets.is_ready(fleets.function_readiness(function("a")))
