"""The running consumers: which (trigger, function) pairs want one, starting and stopping them, and their counts.

`wanted` is pure: from a trigger, the functions of its namespace and their Services, the consumers it asks for. The
Fleet converges on that list. A consumer's Stats outlive it (a function deleted and deployed again keeps counting
where it was) and go only with the trigger.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from kubeless_api import conditions, meta, schema
from kubeless_consumers.delivery import Stats, group_id
from kubeless_consumers.settings import Settings
from kubeless_controller.triggers.base import function_essentials

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConsumerSpec:
    """Everything a consumer is started with; a change of any field restarts it."""
    kind: str              # kafka, nats, kinesis
    namespace: str
    trigger: str
    function: str
    topic: str             # Kafka topic, NATS subject, Kinesis stream
    group: str             # consumer group, queue group, JetStream durable
    url: str
    max_attempts: int
    dead_letter: str
    timeout: float
    stream: str = ""       # NATS: the JetStream stream (empty: core NATS)
    shard: str = ""        # Kinesis
    region: str = ""
    endpoint: str = ""
    credentials: tuple[str, str] = ("", "")  # Kinesis: the Secret's key id and key

    @property
    def trigger_key(self) -> str:
        return f"{self.namespace}/{self.trigger}"

    @property
    def label(self) -> str:
        return f"{self.namespace}/{self.function}"


def selector_matches(selector: dict | None, labels: dict | None) -> bool:
    """A LabelSelector's matchLabels and matchExpressions (In, NotIn, Exists, DoesNotExist) against labels. An
    empty selector matches nothing here: a trigger without labels would otherwise call every function."""
    selector, labels = selector or {}, labels or {}
    match_labels = selector.get("matchLabels") or {}
    expressions = selector.get("matchExpressions") or []
    if not match_labels and not expressions:
        return False
    if any(labels.get(key) != value for key, value in match_labels.items()):
        return False
    for expression in expressions:
        key, operator, values = expression.get("key"), expression.get("operator"), expression.get("values") or []
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and key in labels and labels[key] in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
        if operator not in ("In", "NotIn", "Exists", "DoesNotExist"):
            return False
    return True


def function_timeout(function: dict) -> float:
    """The function's own timeout (seconds), which its runtime enforces: waiting longer would only hold the
    partition; a little more, so the runtime's own answer arrives first."""
    return meta.timeout_seconds(function) + 5.0


def matching_functions(trigger: dict, functions: list[dict]) -> list[dict]:
    """The functions a trigger calls: Kinesis names one; Kafka and NATS select by labels in their namespace."""
    spec, namespace = trigger.get("spec") or {}, trigger["metadata"]["namespace"]
    alive = [f for f in functions if f["metadata"].get("namespace") == namespace
             and not f["metadata"].get("deletionTimestamp")]
    if trigger["kind"] == "KinesisTrigger":
        return [f for f in alive if f["metadata"]["name"] == spec.get(schema.FUNCTION_NAME)]
    return sorted((f for f in alive if selector_matches(spec.get(schema.FUNCTION_SELECTOR),
                                                         f["metadata"].get("labels"))),
                  key=lambda f: f["metadata"]["name"])


def function_readiness(function: dict) -> dict:
    """The copy of a function a consumer keeps: its identity, timeout and Ready condition (never its code)."""
    ready = conditions.get_condition(function.get("status") or {}, conditions.READY)
    return {**function_essentials(function), "status": {"conditions": [
        {"type": conditions.READY, "status": ready.get("status", "Unknown")}]}}


def is_ready(function: dict) -> bool:
    """A consumer starts only once the function's own pods serve: a function deleted and deployed again would
    otherwise get its first messages at the old pods, still answering while they terminate."""
    return conditions.get_condition(function.get("status") or {}, conditions.READY).get("status") == "True"


KINDS = {kind: broker for broker, kind in meta.EVENT_TRIGGERS.items()}


def wanted(trigger: dict, functions: list[dict], ports: dict[str, int], settings: Settings,
           credentials: tuple[str, str] = ("", "")) -> list[ConsumerSpec]:
    """One consumer per function the trigger calls; `ports` maps a function's name to its Service's port."""
    spec, metadata = trigger.get("spec") or {}, trigger["metadata"]
    kind = KINDS[trigger["kind"]]
    topic = spec.get("stream", "") if kind == "kinesis" else spec.get("topic", "")
    result = []
    for function in matching_functions(trigger, functions):
        name, namespace = function["metadata"]["name"], metadata["namespace"]
        result.append(ConsumerSpec(
            kind=kind, namespace=namespace, trigger=metadata["name"], function=name, topic=topic,
            group=group_id(namespace, metadata["name"], name, topic),
            url=settings.function_url.format(name=name, namespace=namespace,
                                             port=ports.get(name, meta.FUNCTION_PORT)),
            max_attempts=int(spec.get(schema.MAX_ATTEMPTS) or schema.DEFAULT_MAX_ATTEMPTS),
            dead_letter=spec.get(schema.DEAD_LETTER_TOPIC) or topic + schema.DEAD_LETTER_SUFFIX,
            timeout=function_timeout(function),
            stream=spec.get("stream", "") if kind == "nats" else "",
            shard=spec.get("shard", "") if kind == "kinesis" else "",
            region=spec.get("aws-region", "") if kind == "kinesis" else "",
            endpoint=spec.get("endpoint", "") if kind == "kinesis" else "",
            credentials=credentials if kind == "kinesis" else ("", "")))
    return result


class Consumer:
    """What a source module's consumer offers the fleet: a thread that reads until stop() and then returns."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def join(self, timeout: float | None = None) -> None: ...

    def is_alive(self) -> bool: ...


Factory = Callable[[ConsumerSpec, Stats], Consumer]


@dataclass
class Entry:
    spec: ConsumerSpec
    consumer: Consumer


@dataclass
class Fleet:
    """The consumers of one process (one broker kind), by (trigger key, function)."""
    factory: Factory
    stop_timeout: float = 15.0
    running: dict[tuple[str, str], Entry] = field(default_factory=dict)
    stats: dict[tuple[str, str], Stats] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def converge(self, trigger_key: str, specs: list[ConsumerSpec]) -> None:
        """Run exactly these consumers for the trigger: stop the others (and the changed ones), start the new."""
        wanted_by_function = {spec.function: spec for spec in specs}
        with self.lock:
            mine = {key: entry for key, entry in self.running.items() if key[0] == trigger_key}
            stopping = [entry for key, entry in mine.items()
                        if wanted_by_function.get(key[1]) != entry.spec or not entry.consumer.is_alive()]
            for entry in stopping:
                self.running.pop((trigger_key, entry.spec.function), None)
        self._stop(stopping)
        with self.lock:
            for function, spec in wanted_by_function.items():
                key = (trigger_key, function)
                if key in self.running:
                    continue
                stats = self.stats.setdefault(key, Stats())
                consumer = self.factory(spec, stats)
                consumer.start()
                self.running[key] = Entry(spec, consumer)
                log.info("consumer started: trigger %s function %s topic %s group %s", trigger_key, function,
                         spec.topic, spec.group)

    def forget(self, trigger_key: str) -> None:
        """The trigger is gone: stop its consumers and drop its counts."""
        self.converge(trigger_key, [])
        with self.lock:
            for key in [key for key in self.stats if key[0] == trigger_key]:
                del self.stats[key]

    def seed(self, trigger_key: str, function: str, **fields) -> None:
        """Start values (a Kinesis checkpoint from the status) for a consumer this process has not counted yet."""
        with self.lock:
            if (trigger_key, function) not in self.stats:
                self.stats[trigger_key, function] = Stats(**fields)

    def running_spec(self, trigger_key: str) -> ConsumerSpec | None:
        with self.lock:
            return next((entry.spec for key, entry in self.running.items() if key[0] == trigger_key), None)

    def stats_of(self, trigger_key: str) -> dict[str, Stats]:
        with self.lock:
            return {key[1]: stats for key, stats in self.stats.items() if key[0] == trigger_key}

    def is_running(self, trigger_key: str, function: str) -> bool:
        with self.lock:
            entry = self.running.get((trigger_key, function))
        return entry is not None and entry.consumer.is_alive()

    def stop_all(self) -> None:
        with self.lock:
            entries, self.running = list(self.running.values()), {}
        self._stop(entries)

    def _stop(self, entries: list[Entry]) -> None:
        """All at once, then wait: each commits what it delivered before it returns."""
        for entry in entries:
            entry.consumer.stop()
        for entry in entries:
            entry.consumer.join(self.stop_timeout)
            log.info("consumer stopped: trigger %s function %s", entry.spec.trigger_key, entry.spec.function)
