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

Unchanged children are not applied: a server-side apply of an unchanged object still costs the API server a write
request, and a restart would send one per child of every function. Before applying, a child of a watched kind is
compared with the informer's copy (the rules are in kubeless_controller.copies). The copies also answer the
ownership check (a copy that names this owner as its controller needs no GET) and the prune (a synced copy without
the child: nothing of ours to delete, since our children carry the label the informers select on). And the echo of
an apply (the watch event carrying the very version the apply returned) requeues nothing: the reconcile that applied
it has seen that version; any later one requeues.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import NamedTuple, Protocol

from kubeless_api import resources
from kubeless_api.config import KubelessConfig
from kubeless_controller.client import ApiError, Client
from kubeless_controller.copies import Transform, identity, slim, unchanged, with_render_hash
from kubeless_controller.events import EventRecorder
from kubeless_controller.informer import Informer, object_key
from kubeless_controller.metrics import Metrics
from kubeless_controller.settings import Environment
from kubeless_controller.workqueue import ShutDown, WorkQueue

log = logging.getLogger(__name__)

SYNC_TIMEOUT = 60


class Blocked(Exception):
    """A child cannot be applied yet (a name is taken); the status says why and the key is retried with backoff."""


class Pending(Exception):
    """Waiting for a change that no watch reports (a status of a kind not watched): looked at again with the key's
    backoff."""


@dataclass(frozen=True)
class Problem:
    """Why the spec is not applied: the Ready reason and message, and the error to retry with, if retrying helps."""
    reason: str
    message: str
    retry: Exception | None = None


class Unready(Exception):
    """Raised by a renderer or a status reader: the object cannot be ready, for the Problem it carries."""

    def __init__(self, reason: str, message: str, retry: Exception | None = None):
        super().__init__(message)
        self.problem = Problem(reason, message, retry)


@dataclass(frozen=True)
class Watch:
    """One informer a reconciler needs: what to list and watch, which of its keys a change concerns, and what the
    copy keeps of each object (`transform`: see kubeless_controller.copies). A watched kind of child is compared
    with its copy before it is applied."""
    name: str
    api_version: str
    kind: str
    key: Callable[[dict], str | None] = object_key
    label_selector: str | None = None
    index: Callable[[dict], str | None] | None = None
    transform: Transform = slim
    # The watch (by name) whose index maps `key` to the keys to reconcile: a Function's change concerns every
    # trigger that names it, found through the triggers' index by function.
    fan_out: str | None = None
    # Only the names taken: a metadata-only watch of every object of the kind, ours or not, that reconciles nothing
    # and answers the ownership check of a child the labelled copy does not have (see Runner._check_ownership).
    names_only: bool = False


class Prunable(NamedTuple):
    """A child a render may stop returning: the kind, named after its owner plus the suffix."""
    api_version: str
    kind: str
    suffix: str = ""


class Reconciler(Protocol):
    kind: str                              # the kind it reconciles, for the log line
    watches: tuple[Watch, ...]             # the first one watches that kind itself
    prunable: tuple[Prunable, ...]         # children a render may stop returning

    def reconcile(self, key: str, runner: Runner) -> str:
        """Converge one object on its spec; returns a summary for the log line, raises to be retried."""


def controlled_by(obj: dict) -> dict | None:
    for owner in obj["metadata"].get("ownerReferences") or []:
        if owner.get("controller"):
            return owner
    return None


class Runner:
    def __init__(self, client: Client, environment: Environment, reconciler: Reconciler, *,
                 queue: WorkQueue | None = None, metrics: Metrics | None = None, workers: int | None = None,
                 now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)):
        self.client, self.environment, self.reconciler = client, environment, reconciler
        self.workers = workers or environment.workers
        self.queue = queue or WorkQueue()
        self.metrics = metrics or Metrics(queue_depth=lambda: len(self.queue))
        self.now = now
        self.settings = KubelessConfig()
        self.events = EventRecorder(client, environment.pod_name, now)
        self.informers: dict[str, Informer] = {}
        self._watches_by_kind: dict[tuple[str, str], Watch] = {}
        self._names_by_kind: dict[tuple[str, str], str] = {}
        for watch in reconciler.watches:
            if watch.names_only:
                self._names_by_kind[watch.api_version, watch.kind] = watch.name
            else:
                self._watches_by_kind.setdefault((watch.api_version, watch.kind), watch)
        self._informer_lock = threading.Lock()
        self._workers: list[threading.Thread] = []
        self._owned: set[tuple] = set()   # children known to be ours: (kind, namespace, name, owner uid)
        self._pruned: set[tuple] = set()  # (kind, owner key) known to have no such child
        self._echoes: dict[tuple[str, str], str] = {}  # (kind, key) of a child applied -> the version it got

    # --- informers -----------------------------------------------------------------------------------------------

    def build_informers(self, namespace: str) -> dict[str, Informer]:
        scope = namespace or None
        return {watch.name: Informer(self.client, watch.name, resources.path(watch.api_version, watch.kind, scope),
                                     self._enqueuer(watch), label_selector=watch.label_selector,
                                     index=watch.index, transform=identity if watch.names_only else watch.transform,
                                     metadata_only=watch.names_only)
                for watch in self.reconciler.watches}

    def _enqueuer(self, watch: Watch) -> Callable[[str, dict], None]:
        def enqueue(event_type: str, obj: dict) -> None:
            if watch.names_only:
                return
            echoed = self._echoes.pop((watch.kind, object_key(obj)), None)
            if event_type != "DELETED" and echoed is not None and echoed == obj["metadata"].get("resourceVersion"):
                return  # the echo of our own apply: the reconcile that applied it has seen this very version
            key = watch.key(obj)
            if not key:
                return
            if watch.fan_out is None:
                self.queue.add(key)
                return
            owners = self.informers.get(watch.fan_out)
            for owner in owners.by_index(key) if owners is not None else []:
                self.queue.add(object_key(owner))
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

    def wait_for_sync(self, timeout: float = SYNC_TIMEOUT) -> bool:
        """Until every informer has listed once: a leader that reconciled with cold copies would apply every child
        again. False (and a warning) after `timeout`: the workers then start anyway, a cold copy costs only writes."""
        deadline = time.monotonic() + timeout
        for name, informer in list(self.informers.items()):
            if not informer.synced.wait(max(0.0, deadline - time.monotonic())):
                log.warning("%s not listed after %.0f s; reconciling without its copy", name, timeout)
                return False
        return True

    def healthy(self) -> bool:
        declared = {watch.name for watch in self.reconciler.watches}
        return set(self.informers) == declared and all(i.is_alive() for i in self.informers.values())

    def cache(self, name: str) -> Informer | None:
        return self.informers.get(name)

    def _cache_of(self, api_version: str, kind: str) -> tuple[Watch | None, Informer | None]:
        watch = self._watches_by_kind.get((api_version, kind))
        return watch, self.informers.get(watch.name) if watch else None

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
        for number in range(self.workers):
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
            if isinstance(error, ApiError) and error.namespace_terminating:
                self.queue.forget(key)
                self.metrics.observe_reconcile(duration, ok=True)
                log.info("reconcile %s %s result=skipped duration=%.3fs its namespace is being deleted", kind, key,
                         duration)
                return True
            delay = self.queue.add_rate_limited(key)
            self.metrics.observe_reconcile(duration, ok=False)
            expected = isinstance(error, (ApiError, OSError, Blocked, Pending))
            log.log(logging.WARNING if expected else logging.ERROR,
                    "reconcile %s %s result=error duration=%.3fs retry_in=%.1fs error=%s: %s", kind, key, duration,
                    delay, type(error).__name__, error, exc_info=not expected)
            return False
        duration = time.monotonic() - started
        self.queue.forget(key)
        self.metrics.observe_reconcile(duration, ok=True)
        log.info("reconcile %s %s result=success duration=%.3fs %s", kind, key, duration, outcome)
        return True

    # --- status --------------------------------------------------------------------------------------------------

    def write_status(self, owner: dict, before: dict, after: dict, *, failing: bool = False) -> None:
        """Apply the status subresource, unless it is unchanged. `failing`: the reconcile already failed with an
        error that will be retried; a failure to write is then not reported on top of it."""
        if after == before:
            return
        metadata = owner["metadata"]
        try:
            self.client.apply({"apiVersion": owner["apiVersion"], "kind": owner["kind"],
                               "metadata": {"name": metadata["name"], "namespace": metadata["namespace"]},
                               "status": after}, subresource="status")
        except (ApiError, OSError):
            if not failing:
                raise

    # --- children ------------------------------------------------------------------------------------------------

    def apply_children(self, owner: dict, children: list[dict]) -> list[dict]:
        """Server-side apply each child in order, unless the informer's copy shows it unchanged; then prune the
        prunable kinds the render did not return. Returns the children as the API server (or its copy) has them."""
        applied = []
        for child in children:
            desired = with_render_hash(child)
            watch, informer = self._cache_of(desired["apiVersion"], desired["kind"])
            live = informer.get(object_key(desired)) if informer is not None else None
            self._check_ownership(owner, desired, live)
            if live is not None and unchanged(desired, live, watch.transform):
                applied.append({**live, "apiVersion": desired["apiVersion"], "kind": desired["kind"]})
                continue
            try:
                result = self.client.apply(desired)
            except ApiError as error:  # say which child: the message goes into the status
                raise ApiError(error.status, error.reason,
                               f"the {child['kind']} {child['metadata']['name']}: {error.message}") from error
            applied.append(result)
            self._owned.add(self._identity(owner, child))
            if informer is not None:
                self._echoes[desired["kind"], object_key(desired)] = result["metadata"].get("resourceVersion")
        rendered = {(child["apiVersion"], child["kind"], child["metadata"]["name"]) for child in children}
        for api_version, kind, suffix in self.reconciler.prunable:
            name = owner["metadata"]["name"] + suffix
            if (api_version, kind, name) in rendered:
                self._pruned.discard((kind, object_key(owner), name))
            else:
                self._prune(owner, api_version, kind, name)
        return applied

    def forget(self, key: str) -> None:
        """The owner is gone: drop what is remembered about it."""
        namespace, name = key.split("/", 1)
        self._owned = {item for item in self._owned if (item[1], item[2]) != (namespace, name)}
        self._pruned = {item for item in self._pruned if item[1] != key}
        for echo in [echo for echo in list(self._echoes) if echo[1] == key]:
            self._echoes.pop(echo, None)
        self.events.forget(key)

    @staticmethod
    def _identity(owner: dict, child: dict) -> tuple:
        metadata = child["metadata"]
        return child["kind"], metadata["namespace"], metadata["name"], owner["metadata"]["uid"]

    def _check_ownership(self, owner: dict, child: dict, live: dict | None) -> None:
        """Checked once per child and controller run: after that, only this controller applies the child. An
        informer's copy that names the owner as controller settles it. Otherwise the names taken in that kind
        answer, when the reconciler watches them (a metadata-only copy of every object, since someone else's object
        does not carry our label): no such name, nothing to take over. Without them, the API server is asked."""
        identity_ = self._identity(owner, child)
        if identity_ in self._owned:
            return
        if live is not None and (controlled_by(live) or {}).get("uid") == owner["metadata"]["uid"]:
            self._owned.add(identity_)
            return
        metadata = child["metadata"]
        names = self.informers.get(self._names_by_kind.get((child["apiVersion"], child["kind"]), ""))
        if names is not None and names.synced.is_set():
            existing = names.get(object_key(child))
            if existing is None:
                return
        else:
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

    def _prune(self, owner: dict, api_version: str, kind: str, name: str) -> None:
        """Delete the owner's child of that kind and name if it is the owner's; checked once per controller run
        until a render returns that child again."""
        key = object_key(owner)
        if (kind, key, name) in self._pruned:
            return
        metadata = owner["metadata"]
        child_path = resources.path(api_version, kind, metadata["namespace"], name)
        _, informer = self._cache_of(api_version, kind)
        if informer is not None and informer.synced.is_set():
            # none: nothing of ours, which would carry the label the informer selects
            child = informer.get(f"{metadata['namespace']}/{name}")
        else:
            try:
                child = self.client.get(child_path)
            except ApiError as error:
                if not error.not_found:
                    raise
                child = None
        if child is not None:
            controller = controlled_by(child)
            if controller and controller.get("uid") == metadata["uid"]:
                try:
                    self.client.delete(child_path, uid=child["metadata"]["uid"])
                except ApiError as error:
                    if not error.not_found:
                        raise
                log.info("deleted the %s %s of %s %s: it no longer asks for it", kind, name, owner["kind"], key)
        self._pruned.add((kind, key, name))
