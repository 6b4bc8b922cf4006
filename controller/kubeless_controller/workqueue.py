"""A work queue of `namespace/name` keys, with the guarantees client-go's rate-limited queue gives.

- De-duplication: a key waiting in the queue is queued once, however often it is added.
- One worker per key: a key being processed is not handed to a second worker; added meanwhile, it is processed again
  once the first worker is done (so no change is missed).
- Per-key exponential backoff on failure (0.5 s doubling up to 5 min) that never gives up: Kubeless dropped a function
  after 5 failed retries, leaving it broken until its next change.
"""
from __future__ import annotations

import heapq
import threading
import time
from collections import deque


class Backoff:
    """Per-key failure counts: base * 2**failures, capped."""

    def __init__(self, base: float = 0.5, cap: float = 300.0):
        self.base, self.cap = base, cap
        self._failures: dict[str, int] = {}
        self._lock = threading.Lock()

    def next_delay(self, key: str) -> float:
        with self._lock:
            failures = self._failures.get(key, 0)
            self._failures[key] = failures + 1
        return min(self.cap, self.base * 2 ** min(failures, 32))

    def forget(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)

    def failures(self, key: str) -> int:
        with self._lock:
            return self._failures.get(key, 0)


class ShutDown(Exception):
    """The queue was shut down; workers return."""


class WorkQueue:
    def __init__(self, backoff: Backoff | None = None, clock=time.monotonic):
        self.backoff = backoff or Backoff()
        self._clock = clock
        self._queue: deque[str] = deque()
        self._dirty: set[str] = set()       # queued, or added again while processing
        self._processing: set[str] = set()
        self._waiting: list[tuple[float, int, str]] = []  # heap of (due time, sequence, key)
        self._sequence = 0
        self._shut_down = False
        self._cond = threading.Condition()

    def add(self, key: str) -> None:
        with self._cond:
            self._add(key)

    def _add(self, key: str) -> None:
        if self._shut_down or key in self._dirty:
            return
        self._dirty.add(key)
        if key not in self._processing:
            self._queue.append(key)
            self._cond.notify()

    def add_after(self, key: str, delay: float) -> None:
        if delay <= 0:
            return self.add(key)
        with self._cond:
            self._sequence += 1
            heapq.heappush(self._waiting, (self._clock() + delay, self._sequence, key))
            self._cond.notify()

    def add_rate_limited(self, key: str) -> float:
        """Re-queue a key that failed, after its backoff; returns the delay."""
        delay = self.backoff.next_delay(key)
        self.add_after(key, delay)
        return delay

    def forget(self, key: str) -> None:
        """The key succeeded: its next failure starts again from the base delay."""
        self.backoff.forget(key)

    def _promote_due(self) -> float | None:
        """Move delayed keys that are due into the queue; return seconds until the next one, if any."""
        now = self._clock()
        while self._waiting and self._waiting[0][0] <= now:
            _, _, key = heapq.heappop(self._waiting)
            self._add(key)
        return self._waiting[0][0] - now if self._waiting else None

    def get(self, timeout: float | None = None) -> str | None:
        """The next key to process (mark it done() afterwards); None when `timeout` passes first."""
        deadline = None if timeout is None else self._clock() + timeout
        with self._cond:
            while True:
                if self._shut_down:
                    raise ShutDown
                wait = self._promote_due()
                if self._queue:
                    key = self._queue.popleft()
                    self._processing.add(key)
                    self._dirty.discard(key)
                    return key
                if deadline is not None:
                    left = deadline - self._clock()
                    if left <= 0:
                        return None
                    wait = left if wait is None else min(wait, left)
                self._cond.wait(wait)

    def done(self, key: str) -> None:
        with self._cond:
            self._processing.discard(key)
            if key in self._dirty:
                self._queue.append(key)
                self._cond.notify()

    def shut_down(self) -> None:
        with self._cond:
            self._shut_down = True
            self._cond.notify_all()

    def __len__(self) -> int:
        """Keys ready to be processed (the workqueue_depth metric)."""
        with self._cond:
            self._promote_due()
            return len(self._queue)
