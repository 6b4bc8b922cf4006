"""Triggers and functions in, consumers out: a Reconciler for the controller's Runner.

The Runner's informers watch the trigger kind, the Functions and their Services in every namespace; a change of a
function requeues the triggers of its namespace (Kinesis: the triggers naming it). Each reconcile computes the
consumers the trigger wants, converges the Fleet on them and writes the status. A ticker requeues every trigger
every few seconds for the counts; a write that changes only counts waits for the next tick, so the status never
becomes a stream of writes (each of which would come back as a watch event and a reconcile).
"""
from __future__ import annotations

import base64
import threading
import time

from kubeless_api import conditions, meta, resources, schema
from kubeless_consumers import fleet as fleets
from kubeless_consumers.settings import Settings
from kubeless_consumers.status import baseline, event_status, only_counts_differ
from kubeless_controller.client import ApiError
from kubeless_controller.runner import Problem, Runner, Watch
from kubeless_controller.triggers.base import (TriggerReconciler, named_function_key,
                                               service_port)

TRIGGERS_WATCH = "triggers"
FUNCTIONS_WATCH = "functions"
SERVICES_WATCH = "services"
SECRET_KEYS = ("aws_access_key_id", "aws_secret_access_key")


def namespace_of(obj: dict) -> str:
    return obj["metadata"]["namespace"]


def service_function_key(service: dict) -> str:
    return f"{namespace_of(service)}/{(service['metadata'].get('labels') or {}).get(meta.LABEL_FUNCTION, '')}"


class EventTriggerReconciler:
    prunable = ()

    def __init__(self, broker: str, fleet: fleets.Fleet, settings: Settings):
        self.broker, self.fleet, self.settings = broker, fleet, settings
        self.kind = meta.EVENT_TRIGGERS[broker]
        by_name = broker == "kinesis"  # a Kinesis trigger names its function; the others select in the namespace
        self.watches = (
            Watch(TRIGGERS_WATCH, meta.API_VERSION, self.kind,
                  index=named_function_key if by_name else namespace_of),
            Watch(FUNCTIONS_WATCH, meta.API_VERSION, "Function", transform=fleets.function_readiness, index=namespace_of,
                  key=(lambda f: f"{namespace_of(f)}/{f['metadata']['name']}") if by_name else namespace_of,
                  fan_out=TRIGGERS_WATCH),
            Watch(SERVICES_WATCH, "v1", "Service", label_selector=meta.CREATED_BY_SELECTOR,
                  key=service_function_key if by_name else namespace_of, fan_out=TRIGGERS_WATCH))
        self._baselines: dict[str, tuple[str, dict[str, int]]] = {}  # key -> (trigger uid, counts then)
        self._written: dict[str, float] = {}
        self._lock = threading.Lock()

    def reconcile(self, key: str, runner: Runner) -> str:
        trigger = runner.cache(TRIGGERS_WATCH).get(key)
        if trigger is None or trigger["metadata"].get("deletionTimestamp"):
            self.fleet.forget(key)
            with self._lock:
                self._baselines.pop(key, None)
                self._written.pop(key, None)
            runner.forget(key)
            return "trigger=gone"
        trigger = {**trigger, "apiVersion": meta.API_VERSION, "kind": self.kind}
        namespace, uid = namespace_of(trigger), trigger["metadata"]["uid"]
        with self._lock:
            known = self._baselines.get(key)
            if known is None or known[0] != uid:
                if known is not None:  # deleted and made again under the same name: a new trigger
                    self.fleet.forget(key)
                known = self._baselines[key] = (uid, baseline(trigger))
        functions = fleets.matching_functions(trigger, runner.cache(FUNCTIONS_WATCH).by_index(namespace))
        services = runner.cache(SERVICES_WATCH)
        ports = {}
        for function in functions:
            service = services.get(f"{namespace}/{function['metadata']['name']}")
            ports[function["metadata"]["name"]] = service_port(service) if service else meta.FUNCTION_PORT
        problem, credentials = None, ("", "")
        spec = trigger.get("spec") or {}
        if self.broker == "kinesis":
            if not functions:
                problem = Problem(conditions.REASON_FUNCTION_NOT_FOUND, f"function {spec.get(schema.FUNCTION_NAME)} "
                                                                        f"does not exist in namespace {namespace}")
            else:
                credentials, problem = self.credentials(trigger, runner)
                if problem is None:
                    self.fleet.seed(key, functions[0]["metadata"]["name"],
                                    checkpoint=(trigger.get("status") or {}).get("checkpoint") or "")
        serving = [function for function in functions if fleets.is_ready(function)]
        if problem is None and functions and not serving:
            problem = Problem(conditions.REASON_CONSUMER_STARTING, "waiting for function(s) "
                              f"{', '.join(f['metadata']['name'] for f in functions)} to be ready")
        wanted = [] if problem else fleets.wanted(trigger, serving, ports, self.settings, credentials)
        self.fleet.converge(key, wanted)
        names = [spec_.function for spec_ in wanted]
        running = {name for name in names if self.fleet.is_running(key, name)
                   and self.fleet.stats_of(key)[name].running}
        topic = spec.get("stream") if self.broker == "kinesis" else spec.get("topic", "")
        after = event_status(trigger, topic or "", names, self.fleet.stats_of(key), running, known[1], runner.now(),
                             problem)
        before = trigger.get("status") or {}
        now = time.monotonic()
        with self._lock:
            recent = now - self._written.get(key, -float("inf")) < self.settings.status_interval
        if after != before and not (recent and only_counts_differ(before, after)):
            runner.write_status(trigger, before, after)
            with self._lock:
                self._written[key] = now
            TriggerReconciler.events(trigger, before, after, runner)
        ready = conditions.get_condition(after, conditions.READY)
        return f"ready={ready['status']} reason={ready['reason']} functions={len(names)}"

    def credentials(self, trigger: dict, runner: Runner) -> tuple[tuple[str, str], Problem | None]:
        """The AWS keys from the trigger's Secret; read once per consumer start (a running one keeps its own)."""
        key, name = f"{namespace_of(trigger)}/{trigger['metadata']['name']}", (trigger.get("spec") or {}).get("secret")
        running = self.fleet.running_spec(key)
        if running is not None:
            return running.credentials, None
        try:
            secret = runner.client.get(resources.path("v1", "Secret", namespace_of(trigger), name))
        except ApiError as error:
            if error.not_found:
                return ("", ""), Problem(conditions.REASON_SECRET_NOT_FOUND,
                                         f"secret {name} does not exist in namespace {namespace_of(trigger)}")
            raise
        data = secret.get("data") or {}
        missing = [k for k in SECRET_KEYS if k not in data]
        if missing:
            return ("", ""), Problem(conditions.REASON_INVALID_SPEC, f"secret {name} has no {', '.join(missing)}")
        decoded = tuple(base64.b64decode(data[k]).decode() for k in SECRET_KEYS)
        return (decoded[0], decoded[1]), None
