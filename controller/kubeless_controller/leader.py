"""Leader election on a coordination.k8s.io/v1 Lease, so that two replicas never reconcile at the same time.

The algorithm is client-go's. A candidate takes the Lease when it is free, or when its record has not changed for
`lease_seconds` as measured on the candidate's own clock (so clock skew between nodes does not matter). The leader
renews every `renew_seconds`; updates are PUTs carrying the resourceVersion, so of two racing candidates one gets a
409 Conflict. A leader that has not renewed for `renew_deadline` seconds (shorter than the lease) considers itself
deposed and calls `on_stopped`, which ends the process before any other replica can take over. A watchdog thread
enforces that deadline even while a request to the API server hangs.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone

from kubeless_api.resources import path
from kubeless_controller.client import ApiError, Client

log = logging.getLogger(__name__)

LEASE_API = "coordination.k8s.io/v1"


def micro_time(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    def __init__(self, client: Client, namespace: str, name: str, identity: str, *,
                 on_started: Callable[[], None], on_stopped: Callable[[], None],
                 lease_seconds: int = 15, renew_seconds: float = 5, renew_deadline: float = 10,
                 retry_seconds: float = 2, clock=time.monotonic, wall=lambda: datetime.now(timezone.utc)):
        assert renew_deadline < lease_seconds, "a leader must give up before others may take over"
        self.client, self.namespace, self.name, self.identity = client, namespace, name, identity
        self.on_started, self.on_stopped = on_started, on_stopped
        self.lease_seconds, self.renew_seconds = lease_seconds, renew_seconds
        self.renew_deadline, self.retry_seconds = renew_deadline, retry_seconds
        self.clock, self.wall = clock, wall
        self.is_leader = False
        self.last_renew = -float("inf")
        self._observed: tuple | None = None
        self._observed_at = -float("inf")
        self._stop = threading.Event()
        self._lock = threading.Lock()

    @property
    def lease_path(self) -> str:
        return path(LEASE_API, "Lease", self.namespace, self.name)

    # --- one attempt ---------------------------------------------------------------------------------------------

    def try_acquire_or_renew(self) -> bool:
        """One round: True when this replica holds the Lease afterwards."""
        now = self.wall()
        try:
            lease = self.client.get(self.lease_path)
        except ApiError as error:
            if not error.not_found:
                log.warning("leader election: cannot read the Lease: %s", error)
                return False
            return self._create(now)
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        record = (holder, spec.get("renewTime"), spec.get("leaseDurationSeconds"), spec.get("leaseTransitions"))
        if record != self._observed:
            self._observed, self._observed_at = record, self.clock()
        duration = spec.get("leaseDurationSeconds") or self.lease_seconds
        if holder and holder != self.identity and self.clock() < self._observed_at + duration:
            return False
        ours = holder == self.identity
        lease["spec"] = {
            **spec, "holderIdentity": self.identity, "leaseDurationSeconds": self.lease_seconds,
            "renewTime": micro_time(now),
            "acquireTime": spec.get("acquireTime") if ours and spec.get("acquireTime") else micro_time(now),
            "leaseTransitions": (spec.get("leaseTransitions") or 0) + (0 if ours or not holder else 1)}
        try:
            written = self.client.replace(lease)
        except ApiError as error:
            if not error.conflict:
                log.warning("leader election: cannot update the Lease: %s", error)
            return False
        self._remember(written)
        if not ours:
            log.info("leader election: %s took the Lease %s/%s from %r", self.identity, self.namespace, self.name,
                     holder)
        return True

    def _create(self, now: datetime) -> bool:
        lease = {"apiVersion": LEASE_API, "kind": "Lease",
                 "metadata": {"name": self.name, "namespace": self.namespace},
                 "spec": {"holderIdentity": self.identity, "leaseDurationSeconds": self.lease_seconds,
                          "acquireTime": micro_time(now), "renewTime": micro_time(now), "leaseTransitions": 0}}
        try:
            self._remember(self.client.create(lease))
        except ApiError as error:
            if not error.conflict:
                log.warning("leader election: cannot create the Lease: %s", error)
            return False
        log.info("leader election: %s created the Lease %s/%s", self.identity, self.namespace, self.name)
        return True

    def _remember(self, lease: dict) -> None:
        spec = lease.get("spec") or {}
        self._observed = (spec.get("holderIdentity") or "", spec.get("renewTime"), spec.get("leaseDurationSeconds"),
                          spec.get("leaseTransitions"))
        self._observed_at = self.clock()

    # --- the loops -----------------------------------------------------------------------------------------------

    def run(self) -> None:
        """Campaign, then renew, until stop() or until leadership is lost."""
        threading.Thread(target=self._watchdog, name="leader-watchdog", daemon=True).start()
        while not self._stop.is_set():
            try:
                held = self.try_acquire_or_renew()
            except OSError as error:  # the API server is unreachable; the watchdog handles a leader's deadline
                log.warning("leader election: %s", error)
                held = False
            if held:
                with self._lock:
                    self.last_renew = self.clock()
                    started = not self.is_leader
                    self.is_leader = True
                if started:
                    log.info("leader election: %s is the leader", self.identity)
                    self.on_started()
                self._stop.wait(self.renew_seconds)
            else:
                self._stop.wait(self.retry_seconds if not self.is_leader else 1)

    def _watchdog(self) -> None:
        while not self._stop.wait(0.25):
            with self._lock:
                expired = self.is_leader and self.clock() - self.last_renew > self.renew_deadline
                if expired:
                    self.is_leader = False
            if expired:
                log.error("leader election: could not renew the Lease for %.0f s; stopping", self.renew_deadline)
                self.on_stopped()
                return

    def stop(self) -> None:
        self._stop.set()

    def release(self) -> None:
        """Hand the Lease back on a clean shutdown, so the next leader does not wait for it to expire."""
        if not self.is_leader:
            return
        self.is_leader = False
        try:
            lease = self.client.get(self.lease_path)
            if (lease.get("spec") or {}).get("holderIdentity") != self.identity:
                return
            lease["spec"] = {**lease["spec"], "holderIdentity": None, "leaseDurationSeconds": 1,
                             "renewTime": micro_time(self.wall())}
            self.client.replace(lease)
            log.info("leader election: released the Lease")
        except (ApiError, OSError) as error:
            log.warning("leader election: could not release the Lease: %s", error)
