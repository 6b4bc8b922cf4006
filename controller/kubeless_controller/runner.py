"""The runner: everything a reconciler of one kind needs that is not about that kind.

After kubernetes/sample-controller, for any kind:
1. Informers keep local copies of what the reconciler declared in `watches`; each change puts the key
   (namespace/name) of the object it concerns in a work queue, de-duplicated.
2. Workers (only on the elected leader) take keys and call the reconciler, which reads the world, renders the
   wanted children with pure functions and hands them to `apply_children`. An error requeues the key with a
   per-key backoff that never gives up; every outcome is one log line and a count in the metrics.
3. Children carry an owner reference (the renderers set it), so deleting the owner is the garbage collector's job;
   a child the render no longer returns is pruned here, for every kind the reconciler declares `prunable`.

The runner never takes over an object someone else made: applying would adopt it, and the garbage collector would
then delete it with the owner.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Protocol

from kubeless_api import resources
from kubeless_api.config import KubelessConfig
from kubeless_controller.client import ApiError, Client
from kubeless_controller.events import EventRecorder
from kubeless_controller.informer import Informer, object_key
from kubeless_controller.metrics import Metrics
from kubeless_controller.settings import Environment
from kubeless_controller.workqueue import ShutDown, WorkQueue

log = logging.getLogger(__name__)


class Blocked(Exception):
    """A child cannot be applied yet (a name is taken); the status says why and the key is retried with backoff."""


@dataclass(frozen=True)
class Watch:
    """One informer a reconciler needs: what to list and watch, and which of its keys a change concerns."""
    name: str
    api_version: str
    kind: str
    key: Callable[[dict], str | None] = object_key
    label_selector: str | None = None
    index: Callable[[dict], str | None] | None = None


class Reconciler(Protocol):
    kind: str                              # the kind it reconciles, for the log line
    watches: tuple[Watch, ...]             # the first one watches that kind itself
    prunable: tuple[tuple[str, str], ...]  # (apiVersion, kind) of children a render may stop returning

    def reconcile(self, key: str, runner: Runner) -> str:
        """Converge one object on its spec; returns a summary for the log line, raises to be retried."""


def controlled_by(obj: dict) -> dict | None:
    for owner in obj["metadata"].get("ownerReferences") or []:
        if owner.get("controller"):
            return owner
    return None


class Runner:
    def __init__(self, client: Client, environment: Environment, reconciler: Reconciler, *,
                 queue: WorkQueue | None = None, metrics: Metrics | None = None,
                 now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)):
        self.client, self.environment, self.reconciler = client, environment, reconciler
        self.queue = queue or WorkQueue()
        self.metrics = metrics or Metrics(queue_depth=lambda: len(self.queue))
        self.now = now
        self.settings = KubelessConfig()
        self.events = EventRecorder(client, environment.pod_name, now)
        self.informers: dict[str, Informer] = {}
        self._informer_lock = threading.Lock()
        self._workers: list[threading.Thread] = []
        self._owned: set[tuple] = set()   # children known to be ours: (kind, namespace, name, owner uid)
        self._pruned: set[tuple] = set()  # (kind, owner key) known to have no such child

    # --- informers -----------------------------------------------------------------------------------------------

    def build_informers(self, namespace: str) -> dict[str, Informer]:
        scope = namespace or None
        return {watch.name: Informer(self.client, watch.name, resources.path(watch.api_version, watch.kind, scope),
                                     self._enqueuer(watch), label_selector=watch.label_selector,
                                     index=watch.index)
                for watch in self.reconciler.watches}

    def _enqueuer(self, watch: Watch) -> Callable[[str, dict], None]:
        def enqueue(event_type: str, obj: dict) -> None:
            key = watch.key(obj)
            if key:
                self.queue.add(key)
        return enqueue

    def start_informers(self, namespace: str) -> None:
        """(Re)start every declared watch, in one namespace or (empty) in all."""
        with self._informer_lock:
            for informer in self.informers.values():
                informer.stop()
            self.informers = self.build_informers(namespace)
            for informer in self.informers.values():
                informer.start()
        log.info("watching %s in %s", self.reconciler.kind, f"namespace {namespace}" if namespace else
                 "all namespaces")

    def healthy(self) -> bool:
        declared = {watch.name for watch in self.reconciler.watches}
        return set(self.informers) == declared and all(i.is_alive() for i in self.informers.values())

    def cache(self, name: str) -> Informer | None:
        return self.informers.get(name)

    def configure(self, settings: KubelessConfig) -> None:
        """New kubeless-config: watch the new namespace if it moved, and reconcile everything again."""
        previous, self.settings = self.settings, settings
        if not self.informers:  # still starting: start_informers reads the settings
            return
        if settings.functions_namespace != previous.functions_namespace:
            self.start_informers(settings.functions_namespace)
        self.requeue_all()

    def requeue_all(self) -> None:
        own = self.informers.get(self.reconciler.watches[0].name)
        for key in own.keys() if own else []:
            self.queue.add(key)

    # --- workers -------------------------------------------------------------------------------------------------

    def start_workers(self) -> None:
        """Called when this replica becomes the leader."""
        self.metrics.is_leader = True
        self.requeue_all()
        for number in range(self.environment.workers):
            worker = threading.Thread(target=self._work, name=f"{self.reconciler.kind}-worker-{number}",
                                      daemon=True)
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

    def reconcile(self, key: str) -> str:
        return self.reconciler.reconcile(key, self)

    def process(self, key: str) -> bool:
        """Reconcile one key, log one line, count it; on failure requeue it with its backoff."""
        kind = self.reconciler.kind
        started = time.monotonic()
        try:
            outcome = self.reconcile(key)
        except Exception as error:  # noqa: BLE001 - any failure is retried; unexpected ones with a traceback
            duration = time.monotonic() - started
            delay = self.queue.add_rate_limited(key)
            self.metrics.observe_reconcile(duration, ok=False)
            expected = isinstance(error, (ApiError, OSError, Blocked))
            log.log(logging.WARNING if expected else logging.ERROR,
                    "reconcile %s %s result=error duration=%.3fs retry_in=%.1fs error=%s: %s", kind, key, duration,
                    delay, type(error).__name__, error, exc_info=not expected)
            return False
        duration = time.monotonic() - started
        self.queue.forget(key)
        self.metrics.observe_reconcile(duration, ok=True)
        log.info("reconcile %s %s result=success duration=%.3fs %s", kind, key, duration, outcome)
        return True

    # --- children ------------------------------------------------------------------------------------------------

    def apply_children(self, owner: dict, children: list[dict]) -> list[dict]:
        """Server-side apply each child in order, then prune the prunable kinds the render did not return.
        Returns the children as the API server now has them."""
        applied = []
        for child in children:
            self._check_ownership(owner, child)
            try:
                applied.append(self.client.apply(child))
            except ApiError as error:  # say which child: the message goes into the status
                raise ApiError(error.status, error.reason,
                               f"the {child['kind']} {child['metadata']['name']}: {error.message}") from error
            self._owned.add(self._identity(owner, child))
        rendered = {(child["apiVersion"], child["kind"]) for child in children}
        for api_version, kind in self.reconciler.prunable:
            if (api_version, kind) in rendered:
                self._pruned.discard((kind, object_key(owner)))
            else:
                self._prune(owner, api_version, kind)
        return applied

    def forget(self, key: str) -> None:
        """The owner is gone: drop what is remembered about it."""
        namespace, name = key.split("/", 1)
        self._owned = {item for item in self._owned if (item[1], item[2]) != (namespace, name)}
        self._pruned = {item for item in self._pruned if item[1] != key}
        self.events.forget(key)

    @staticmethod
    def _identity(owner: dict, child: dict) -> tuple:
        metadata = child["metadata"]
        return child["kind"], metadata["namespace"], metadata["name"], owner["metadata"]["uid"]

    def _check_ownership(self, owner: dict, child: dict) -> None:
        """Checked once per child and controller run: after that, only this controller applies the child."""
        if self._identity(owner, child) in self._owned:
            return
        metadata = child["metadata"]
        try:
            existing = self.client.get(resources.object_path(child))
        except ApiError as error:
            if error.not_found:
                return
            raise
        controller = controlled_by(existing)
        where = f"{child['kind']} {metadata['namespace']}/{metadata['name']}"
        owner_kind = owner["kind"]
        if controller and controller.get("uid") == owner["metadata"]["uid"]:
            return
        if existing["metadata"].get("deletionTimestamp") or (
                controller and controller.get("kind") == owner_kind and controller.get("name") == metadata["name"]):
            raise Blocked(f"waiting for the garbage collector to delete the {where} of a previous "
                          f"{owner_kind.lower()} of the same name")
        raise Blocked(f"{where} already exists and does not belong to this {owner_kind.lower()}; delete it or "
                      f"rename the {owner_kind.lower()}")

    def _prune(self, owner: dict, api_version: str, kind: str) -> None:
        """Delete the owner's child of that kind, named after the owner as every renderer names its children,
        if it is the owner's; checked once per controller run until a render returns that kind again."""
        key = object_key(owner)
        if (kind, key) in self._pruned:
            return
        metadata = owner["metadata"]
        child_path = resources.path(api_version, kind, metadata["namespace"], metadata["name"])
        try:
            child = self.client.get(child_path)
        except ApiError as error:
            if not error.not_found:
                raise
        else:
            controller = controlled_by(child)
            if controller and controller.get("uid") == metadata["uid"]:
                try:
                    self.client.delete(child_path, uid=child["metadata"]["uid"])
                except ApiError as error:
                    if not error.not_found:
                        raise
                log.info("deleted the %s of %s %s: it no longer asks for one", kind, owner["kind"], key)
        self._pruned.add((kind, key))
