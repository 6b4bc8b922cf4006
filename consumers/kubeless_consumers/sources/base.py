"""What every source shares: a thread that reads until stopped, reconnecting to its broker with a backoff."""
from __future__ import annotations

import logging
import threading

from kubeless_consumers.delivery import Delivery, Stats, Transport
from kubeless_consumers.fleet import ConsumerSpec
from kubeless_consumers.settings import Settings

log = logging.getLogger(__name__)

RECONNECT_FIRST = 1.0
RECONNECT_CAP = 30.0


class Source(threading.Thread):
    """Subclasses implement `consume`: connect, read and deliver until `self.stopped`, commit, return. An exception
    from it is the broker's fault: it is reported in the stats (the trigger's Ready condition says
    BrokerUnreachable) and `consume` runs again, from the last committed position, after a backoff."""

    def __init__(self, spec: ConsumerSpec, stats: Stats, settings: Settings, transport: Transport):
        super().__init__(name=f"{spec.kind}-{spec.namespace}-{spec.trigger}-{spec.function}", daemon=True)
        self.spec, self.stats, self.settings = spec, stats, settings
        self.stopped = threading.Event()
        self.delivery = Delivery(transport, kind=spec.kind, url=spec.url,
                                 topic=None if spec.kind == "nats" else spec.topic, max_attempts=spec.max_attempts,
                                 backoff=settings.backoff, timeout=spec.timeout, stats=stats, stopped=self.stopped,
                                 label=f"function {spec.label}")

    def consume(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        self.stopped.set()

    def connected(self) -> None:
        with self.stats.lock:
            self.stats.running, self.stats.broker_error = True, ""

    def run(self) -> None:
        delay = RECONNECT_FIRST
        while not self.stopped.is_set():
            try:
                self.consume()
                delay = RECONNECT_FIRST
            except Exception as error:  # noqa: BLE001 - any broker failure: report, reconnect, read on
                message = f"{type(error).__name__}: {error}"
                with self.stats.lock:
                    self.stats.running, self.stats.broker_error = False, message
                self.stats.error(f"broker: {message}")
                log.warning("%s: %s; reconnecting in %.0f s", self.name, message, delay, exc_info=log.isEnabledFor(
                    logging.DEBUG))
                self.stopped.wait(delay)
                delay = min(RECONNECT_CAP, delay * 2)
        with self.stats.lock:
            self.stats.running = False
