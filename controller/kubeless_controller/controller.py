"""The function controller: Functions in, ConfigMaps, Services, Deployments and autoscalers out.

The story, top to bottom (after kubernetes/sample-controller):
1. Informers keep local copies of Functions, of the Deployments and Pods labelled created-by=kubeless, and of the
   kubeless-config ConfigMap. Each change puts the key (namespace/name) of the Function it concerns in a work queue;
   a Deployment or Pod names its Function in its `function` label. A change of kubeless-config requeues every
   Function.
2. Workers (only on the elected leader) take keys from the queue and reconcile them: read the Function, render its
   children with the pure functions of render.py, apply each with server-side apply, compute the status with the
   pure function of status.py, and write it. An error requeues the key with a per-key backoff that never gives up.
3. Children carry an owner reference to their Function, so deleting a Function is the garbage collector's job.
"""
from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timezone

from kubectl_kubeless import api
from kubeless_controller import render, status
from kubeless_controller.client import ApiError, Client, path
from kubeless_controller.config import ConfigError, Environment, Settings
from kubeless_controller.informer import Informer
from kubeless_controller.metrics import Metrics
from kubeless_controller.workqueue import ShutDown, WorkQueue

log = logging.getLogger(__name__)

HPA_API = "autoscaling/v2"
EVENT_MESSAGE_LIMIT = 1024


class Blocked(Exception):
    """A child cannot be applied yet (a name is taken); the status says why and the key is retried with backoff."""


def function_key(obj: dict) -> str | None:
    """The Function a labelled Deployment or Pod belongs to."""
    meta = obj["metadata"]
    name = (meta.get("labels") or {}).get(api.LABEL_FUNCTION)
    return f"{meta['namespace']}/{name}" if name else None


def controlled_by(obj: dict) -> dict | None:
    for owner in obj["metadata"].get("ownerReferences") or []:
        if owner.get("controller"):
            return owner
    return None


class Controller:
    def __init__(self, client: Client, environment: Environment, *, queue: WorkQueue | None = None,
                 metrics: Metrics | None = None, now=lambda: datetime.now(timezone.utc)):
        self.client, self.environment = client, environment
        self.queue = queue or WorkQueue()
        self.metrics = metrics or Metrics(queue_depth=lambda: len(self.queue))
        self.now = now
        self.settings = Settings()
        self.functions: Informer | None = None
        self.deployments: Informer | None = None
        self.pods: Informer | None = None
        self.config = Informer(
            client, "config", path("v1", "ConfigMap", environment.namespace), self._on_config,
            field_selector=f"metadata.name={environment.config_map}")
        self._informer_lock = threading.Lock()
        self._workers: list[threading.Thread] = []
        self._owned: set[tuple] = set()          # children already known to be ours: (kind, namespace, name, uid)
        self._no_autoscaler: set[str] = set()    # functions known to own no HPA
        self._sync_errors: dict[str, str] = {}   # the last SyncFailed message emitted per key (no repeats)

    # --- informers -----------------------------------------------------------------------------------------------

    def start_informers(self, *, config_timeout: float = 30) -> None:
        """Read kubeless-config first (the functions' namespace depends on it), then watch the rest."""
        self.config.start()
        if not self.config.synced.wait(config_timeout):
            log.warning("%s/%s not read after %.0f s; starting with defaults", self.environment.namespace,
                        self.environment.config_map, config_timeout)
        self._start_scoped_informers(self.settings.functions_namespace)

    def _start_scoped_informers(self, namespace: str) -> None:
        with self._informer_lock:
            for informer in (self.functions, self.deployments, self.pods):
                if informer is not None:
                    informer.stop()
            labelled = f"{api.LABEL_CREATED_BY}={api.CREATED_BY}"
            scope = namespace or None
            self.functions = Informer(self.client, "functions", path(api.API_VERSION, "Function", scope),
                                      self._on_function)
            self.deployments = Informer(self.client, "deployments", path("apps/v1", "Deployment", scope),
                                        self._on_child, label_selector=labelled)
            self.pods = Informer(self.client, "pods", path("v1", "Pod", scope), self._on_child,
                                 label_selector=labelled, index=function_key)
            for informer in (self.functions, self.deployments, self.pods):
                informer.start()
            log.info("watching functions in %s", f"namespace {namespace}" if namespace else "all namespaces")

    def informers(self) -> list[Informer]:
        return [informer for informer in (self.config, self.functions, self.deployments, self.pods) if informer]

    def healthy(self) -> bool:
        informers = self.informers()
        return len(informers) == 4 and all(informer.is_alive() for informer in informers)

    def _on_function(self, kind: str, obj: dict) -> None:
        self.queue.add(f"{obj['metadata']['namespace']}/{obj['metadata']['name']}")

    def _on_child(self, kind: str, obj: dict) -> None:
        key = function_key(obj)
        if key:
            self.queue.add(key)

    def _on_config(self, kind: str, obj: dict) -> None:
        if kind == "DELETED":
            log.warning("%s was deleted; keeping the last settings", self.environment.config_map)
            return
        try:
            settings = Settings.from_config_map(obj)
        except ConfigError as error:
            log.error("%s: %s; keeping the last settings", self.environment.config_map, error)
            return
        if settings == self.settings:
            return
        previous, self.settings = self.settings, settings
        log.info("settings from %s: %d runtimes, provision image %s, functions namespace %s",
                 self.environment.config_map, len(settings.catalogue), settings.provision_image or "(none)",
                 settings.functions_namespace or "(all)")
        if self.functions is None:  # still starting
            return
        if settings.functions_namespace != previous.functions_namespace:
            self._start_scoped_informers(settings.functions_namespace)
        self.requeue_all()

    def requeue_all(self) -> None:
        if self.functions is not None:
            for key in self.functions.keys():
                self.queue.add(key)

    # --- workers -------------------------------------------------------------------------------------------------

    def start_workers(self) -> None:
        """Called when this replica becomes the leader."""
        self.metrics.is_leader = True
        self.requeue_all()
        for number in range(self.environment.workers):
            worker = threading.Thread(target=self._work, name=f"worker-{number}", daemon=True)
            worker.start()
            self._workers.append(worker)

    def stop_workers(self, timeout: float = 10) -> bool:
        """Stop taking keys; True when every reconcile in flight has finished."""
        self.queue.shut_down()
        deadline = time.monotonic() + timeout
        for worker in self._workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        self.metrics.is_leader = False
        return not any(worker.is_alive() for worker in self._workers)

    def _work(self) -> None:
        while True:
            try:
                key = self.queue.get()
            except ShutDown:
                return
            try:
                self.process(key)
            finally:
                self.queue.done(key)

    def process(self, key: str) -> bool:
        """Reconcile one key, log one line, count it; on failure requeue it with its backoff."""
        started = time.monotonic()
        try:
            outcome = self.reconcile(key)
        except Exception as error:  # noqa: BLE001 - any failure is retried; unexpected ones with a traceback
            duration = time.monotonic() - started
            delay = self.queue.add_rate_limited(key)
            self.metrics.observe_reconcile(duration, ok=False)
            expected = isinstance(error, (ApiError, OSError, Blocked))
            log.log(logging.WARNING if expected else logging.ERROR,
                    "reconcile %s result=error duration=%.3fs retry_in=%.1fs error=%s: %s", key, duration, delay,
                    type(error).__name__, error, exc_info=not expected)
            return False
        duration = time.monotonic() - started
        self.queue.forget(key)
        self.metrics.observe_reconcile(duration, ok=True)
        log.info("reconcile %s result=success duration=%.3fs %s", key, duration, outcome)
        return True

    # --- reconcile -----------------------------------------------------------------------------------------------

    def reconcile(self, key: str) -> str:
        """Converge one Function's children and status on its spec; returns a summary for the log line."""
        namespace, name = key.split("/", 1)
        settings = self.settings
        if settings.functions_namespace and namespace != settings.functions_namespace:
            return "skipped=outside-functions-namespace"
        try:
            function = self.client.get(path(api.API_VERSION, "Function", namespace, name))
        except ApiError as error:
            if error.not_found:
                self._forget(key)
                return "function=gone"
            raise
        if function["metadata"].get("deletionTimestamp"):
            return "function=deleting"

        problem: str | None = None        # why the spec is not applied, for the status
        reason = status.INVALID_SPEC
        retry: Exception | None = None     # raised after the status is written, to retry with backoff
        deployment = None
        try:
            children = render.children(function, settings.catalogue_list(), settings.render_config())
        except render.RenderError as error:
            problem = str(error)
        if problem is None:
            try:
                deployment = self.apply_children(function, children)
            except ApiError as error:
                if error.invalid:  # retrying cannot help: the spec (or kubeless-config) must change
                    problem = f"the API server rejected {error.message}"
                else:
                    problem, reason, retry = f"could not apply {error.message} ({error.status} {error.reason})", \
                        status.APPLY_FAILED, error
            except Blocked as error:
                problem, reason, retry = str(error), status.RESOURCE_EXISTS, error
        if deployment is None and self.deployments is not None:
            deployment = self.deployments.get(key)
        pods = self.pods.by_index(key) if self.pods is not None else []

        before = function.get("status") or {}
        after = status.function_status(function, deployment, pods, problem, self.now(), error_reason=reason)
        if after != before:
            try:
                self.client.apply({"apiVersion": api.API_VERSION, "kind": "Function",
                                   "metadata": {"name": name, "namespace": namespace}, "status": after},
                                  subresource="status")
            except (ApiError, OSError):
                if retry is None:
                    raise
                # the API server is failing anyway: report the first error, and retry both
        self._emit_events(key, function, before, after, problem)
        if retry is not None:
            raise retry
        ready = status.get_condition(after, api.CONDITION_READY)
        return f"ready={ready['status']} reason={ready['reason']} generation={after['observedGeneration']}"

    def apply_children(self, function: dict, children: list[dict]) -> dict | None:
        """Server-side apply each child in order; returns the Deployment as the API server now has it."""
        key = f"{function['metadata']['namespace']}/{function['metadata']['name']}"
        deployment = None
        for child in children:
            self._check_ownership(function, child)
            try:
                applied = self.client.apply(child)
            except ApiError as error:  # say which child: the message goes into the status
                raise ApiError(error.status, error.reason,
                               f"the {child['kind']} {child['metadata']['name']}: {error.message}") from error
            self._owned.add(self._identity(function, child))
            if child["kind"] == "Deployment":
                deployment = applied
        if any(child["kind"] == "HorizontalPodAutoscaler" for child in children):
            self._no_autoscaler.discard(key)
        elif key not in self._no_autoscaler:
            self._delete_autoscaler(function)
            self._no_autoscaler.add(key)
        return deployment

    @staticmethod
    def _identity(function: dict, child: dict) -> tuple:
        meta = child["metadata"]
        return child["kind"], meta["namespace"], meta["name"], function["metadata"]["uid"]

    def _check_ownership(self, function: dict, child: dict) -> None:
        """Never take over an object someone else made: applying would adopt it, and the garbage collector would
        delete it with the function. Checked once per child and controller run."""
        if self._identity(function, child) in self._owned:
            return
        meta = child["metadata"]
        try:
            existing = self.client.get(path(child["apiVersion"], child["kind"], meta["namespace"], meta["name"]))
        except ApiError as error:
            if error.not_found:
                return
            raise
        owner = controlled_by(existing)
        where = f"{child['kind']} {meta['namespace']}/{meta['name']}"
        if owner and owner.get("uid") == function["metadata"]["uid"]:
            return
        if existing["metadata"].get("deletionTimestamp") or (
                owner and owner.get("kind") == "Function" and owner.get("name") == meta["name"]):
            raise Blocked(f"waiting for the garbage collector to delete the {where} of a previous function "
                          f"of the same name")
        raise Blocked(f"{where} already exists and does not belong to this function; delete it or rename the "
                      f"function")

    def _delete_autoscaler(self, function: dict) -> None:
        meta = function["metadata"]
        hpa_path = path(HPA_API, "HorizontalPodAutoscaler", meta["namespace"], meta["name"])
        try:
            hpa = self.client.get(hpa_path)
        except ApiError as error:
            if error.not_found:
                return
            raise
        owner = controlled_by(hpa)
        if owner and owner.get("uid") == meta["uid"]:
            try:
                self.client.delete(hpa_path, uid=hpa["metadata"]["uid"])
            except ApiError as error:
                if not error.not_found:
                    raise
            log.info("deleted the HorizontalPodAutoscaler of %s/%s: the function no longer asks for one",
                     meta["namespace"], meta["name"])

    def _forget(self, key: str) -> None:
        namespace, name = key.split("/", 1)
        self._owned = {item for item in self._owned if (item[1], item[2]) != (namespace, name)}
        self._no_autoscaler.discard(key)
        self._sync_errors.pop(key, None)

    # --- events --------------------------------------------------------------------------------------------------

    def _emit_events(self, key: str, function: dict, before: dict, after: dict, problem: str | None) -> None:
        if problem:
            self._sync_failed(function, problem)
        else:
            self._sync_errors.pop(key, None)
            if before.get("observedGeneration") != after["observedGeneration"]:
                self.event(function, "Normal", "Synced", "applied the ConfigMap, Service and Deployment "
                           f"for generation {after['observedGeneration']}")
        change = status.ready_event(before, after)
        if change:
            self.event(function, *change)

    def _sync_failed(self, function: dict, message: str) -> None:
        key = f"{function['metadata']['namespace']}/{function['metadata']['name']}"
        if self._sync_errors.get(key) == message:
            return
        self._sync_errors[key] = message
        self.event(function, "Warning", "SyncFailed", message)

    def event(self, function: dict, kind: str, reason: str, message: str) -> None:
        """A core/v1 Event on the Function; failing to record one never fails a reconcile."""
        meta = function["metadata"]
        moment = status.timestamp(self.now())
        if len(message) > EVENT_MESSAGE_LIMIT:  # the end of a log says what went wrong: keep it
            prefix = message.split(": ", 1)[0] + ": …" if ": " in message[:40] else "…"
            message = prefix + message[-(EVENT_MESSAGE_LIMIT - len(prefix)):]
        event = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{meta['name']}.{time.time_ns():x}", "namespace": meta["namespace"]},
            "involvedObject": {"apiVersion": api.API_VERSION, "kind": "Function", "name": meta["name"],
                               "namespace": meta["namespace"], "uid": meta["uid"],
                               "resourceVersion": meta.get("resourceVersion", "")},
            "type": kind, "reason": reason, "message": message,
            "firstTimestamp": moment, "lastTimestamp": moment, "count": 1,
            "source": {"component": api.FIELD_MANAGER},
            "reportingComponent": api.FIELD_MANAGER, "reportingInstance": self.environment.pod_name,
        }
        try:
            self.client.create(event)
        except (ApiError, OSError) as error:
            log.warning("could not record event %s on %s/%s: %s", reason, meta["namespace"], meta["name"], error)
