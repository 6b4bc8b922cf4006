"""List, then watch, forever: a local copy of one kind of object and a callback for each change.

Every edge case of the watch protocol lives here, and only here:
- the list's resourceVersion is where the watch starts, and each event (bookmarks included: they are asked for, so a
  quiet watch still moves forward) advances it, so a watch that ends (server timeout, dropped connection) resumes
  exactly where it stopped;
- 410 Gone (the version is older than etcd's history) means events were lost: list again, and report the objects
  that vanished meanwhile as DELETED, so the handler misses nothing;
- a failing API server (restart, network) is retried with a capped exponential backoff, forever.

What the copy holds is the owner's choice: `transform` keeps what its readers need of each object (drop a
Function's code, a ConfigMap's data, the managedFields every object carries), applied as each list page or event
arrives. With a transform, an update that leaves the copy as it was (apart from its resourceVersion) is stored but
not reported: a write to what the readers never look at (the status the controller itself just wrote, say) costs
no reconcile. Lists are paged small for the same reason: a page is held whole until the transform has slimmed it.
"""
from __future__ import annotations

import http.client
import logging
import random
import socket
import threading
from collections.abc import Callable

from kubeless_controller.client import ApiError, Client

log = logging.getLogger(__name__)

Handler = Callable[[str, dict], None]

# Objects per list page: a page is parsed whole before the transform slims it, so 50 Functions of 100 KiB are 5 MB
# (client-go's 500 would be 50 MB at once); 1,000 objects still list in 20 requests.
LIST_PAGE_SIZE = 50


def object_key(obj: dict) -> str:
    meta = obj["metadata"]
    return f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else meta["name"]


def same_apart_from_version(old: dict, new: dict) -> bool:
    return {**old, "metadata": {**old["metadata"], "resourceVersion": None}} == {
        **new, "metadata": {**new["metadata"], "resourceVersion": None}}


class Informer(threading.Thread):
    """One kind (a collection path plus selectors); `store` maps namespace/name to the latest object seen."""

    def __init__(self, client: Client, name: str, path: str, on_event: Handler, *, label_selector: str | None = None,
                 field_selector: str | None = None, index: Callable[[dict], str | None] | None = None,
                 transform: Callable[[dict], dict] | None = None, page_size: int = LIST_PAGE_SIZE,
                 metadata_only: bool = False, backoff_base: float = 0.5, backoff_cap: float = 30.0,
                 watch_timeout: int = 300):
        super().__init__(name=f"informer-{name}", daemon=True)
        self.client, self.path, self.on_event = client, path, on_event
        self.label_selector, self.field_selector = label_selector, field_selector
        self.index_of, self.transform, self.page_size = index, transform, page_size
        self.metadata_only = metadata_only
        self.backoff_base, self.backoff_cap, self.watch_timeout = backoff_base, backoff_cap, watch_timeout
        self.store: dict[str, dict] = {}
        self._index: dict[str, dict[str, dict]] = {}
        self._lock = threading.Lock()
        self.synced = threading.Event()
        self._stopped = threading.Event()
        self._connection: http.client.HTTPConnection | None = None
        self.resource_version: str | None = None

    # --- reading the copy ----------------------------------------------------------------------------------------

    def get(self, key: str) -> dict | None:
        with self._lock:
            return self.store.get(key)

    def keys(self) -> list[str]:
        with self._lock:
            return list(self.store)

    def by_index(self, value: str) -> list[dict]:
        with self._lock:
            return list(self._index.get(value, {}).values())

    # --- the loop ------------------------------------------------------------------------------------------------

    def stop(self) -> None:
        """Ends the loop, interrupting a watch that is waiting for its next event."""
        self._stopped.set()
        connection = self._connection
        if connection is not None and connection.sock is not None:
            try:
                connection.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    def run(self) -> None:
        delay = self.backoff_base
        while not self.stopped:
            try:
                if self.resource_version is None:
                    self.relist()
                # spread the watches' renewals so they do not all reconnect at once
                timeout = random.randint(self.watch_timeout, self.watch_timeout * 2)
                for event in self.client.watch(self.path, resource_version=self.resource_version,
                                               label_selector=self.label_selector,
                                               field_selector=self.field_selector, timeout_seconds=timeout,
                                               on_connect=self._connected, metadata_only=self.metadata_only):
                    if self.stopped:
                        return
                    self.handle(event)
                    delay = self.backoff_base
            except ApiError as error:
                if self.stopped:
                    return
                if error.gone:
                    log.info("%s: resourceVersion %s expired, listing again", self.name, self.resource_version)
                    self.resource_version = None
                    continue
                log.warning("%s: %s; retrying in %.1f s", self.name, error, delay)
                delay = self._pause(delay)
            except (OSError, http.client.HTTPException, ValueError) as error:
                if self.stopped:
                    return
                log.warning("%s: connection to the API server lost (%s: %s); retrying in %.1f s", self.name,
                            type(error).__name__, error, delay)
                delay = self._pause(delay)
            except Exception:  # a bug must not silently end the watch: log it and start over from a fresh list
                if self.stopped:
                    return
                log.exception("%s: unexpected error; listing again in %.1f s", self.name, delay)
                self.resource_version = None
                delay = self._pause(delay)
            finally:
                self._connection = None

    def _connected(self, connection: http.client.HTTPConnection) -> None:
        self._connection = connection
        if self.stopped:
            connection.close()

    def _pause(self, delay: float) -> float:
        self._stopped.wait(delay)
        return min(self.backoff_cap, delay * 2)

    def relist(self) -> None:
        """Replace the copy with a fresh list; report what was added, changed or removed since the last one."""
        items, version = self.client.list(self.path, label_selector=self.label_selector,
                                          field_selector=self.field_selector, page_size=self.page_size,
                                          transform=self.transform, metadata_only=self.metadata_only)
        fresh = {object_key(item): item for item in items}
        with self._lock:
            old = self.store
        for key, obj in old.items():
            if key not in fresh:
                self._update("DELETED", obj)
        for key, obj in fresh.items():
            before = old.get(key)
            if before is None:
                self._update("ADDED", obj)
            elif before["metadata"].get("resourceVersion") != obj["metadata"].get("resourceVersion"):
                self._update("MODIFIED", obj)
        self.resource_version = version
        self.synced.set()
        log.debug("%s: listed %d objects at resourceVersion %s", self.name, len(fresh), version)

    def handle(self, event: dict) -> None:
        kind, obj = event.get("type"), event.get("object") or {}
        version = (obj.get("metadata") or {}).get("resourceVersion")
        if version:
            self.resource_version = version
        if kind in ("ADDED", "MODIFIED", "DELETED"):
            self._update(kind, self.transform(obj) if self.transform else obj)

    def _update(self, kind: str, obj: dict) -> None:
        """Store one (transformed) object and report the change."""
        key = object_key(obj)
        with self._lock:
            old = self.store.get(key)
            unchanged = (self.transform is not None and kind != "DELETED" and old is not None
                         and same_apart_from_version(old, obj))
            if old is not None and self.index_of:
                value = self.index_of(old) or ""
                bucket = self._index.get(value, {})
                bucket.pop(key, None)
                if not bucket:
                    self._index.pop(value, None)
            if kind == "DELETED":
                self.store.pop(key, None)
            else:
                self.store[key] = obj
                if self.index_of:
                    value = self.index_of(obj)
                    if value:
                        self._index.setdefault(value, {})[key] = obj
        if unchanged:
            return
        try:
            self.on_event(kind, obj)
        except Exception:
            log.exception("%s: handler failed on %s %s", self.name, kind, key)
