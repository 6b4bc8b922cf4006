"""`python3 -m kubeless_consumers kafka|nats|kinesis`: the Deployment <kind>-trigger-controller's process.

One replica per broker kind (a second would run every consumer twice and write every status twice). SIGTERM stops
the consumers, each committing what it delivered, before the process ends.
"""
from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading

from kubeless_api import meta
from kubeless_consumers import metrics as consumer_metrics
from kubeless_consumers.fleet import Fleet
from kubeless_consumers.reconciler import EventTriggerReconciler
from kubeless_consumers.settings import Settings
from kubeless_consumers.sources import BROKERS, factory
from kubeless_controller.client import Client, Credentials
from kubeless_controller.metrics import Metrics
from kubeless_controller.probes import serve
from kubeless_controller.runner import Runner
from kubeless_controller.settings import Environment

WORKERS = 2  # reconciles are a few dictionary look-ups and, on a change, a status write

log = logging.getLogger("kubeless_consumers")


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[1] not in BROKERS:
        print(f"usage: python3 -m kubeless_consumers {'|'.join(BROKERS)}", file=sys.stderr)
        return 2
    broker = argv[1]
    logging.basicConfig(level=os.environ.get("KUBELESS_LOG_LEVEL", "INFO").upper(), stream=sys.stdout,
                        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    settings = Settings.from_env()
    environment = Environment(namespace=os.environ.get("KUBELESS_NAMESPACE") or meta.SYSTEM_NAMESPACE,
                              pod_name=os.environ.get("POD_NAME") or socket.gethostname(), workers=WORKERS,
                              port=settings.port)
    log.info("kubeless %s trigger consumers %s starting as %s", broker, meta.project_version(), environment.pod_name)
    runner_metrics = Metrics()
    client = Client(Credentials.in_cluster(), on_request=runner_metrics.count_request)
    fleet = Fleet(factory(broker, settings))
    runner = Runner(client, environment, EventTriggerReconciler(broker, fleet, settings), metrics=runner_metrics)
    server = serve(settings.port, healthy=runner.healthy,
                   metrics=lambda: runner_metrics.render() + consumer_metrics.render(broker, fleet))
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    runner.start_informers("")
    runner.wait_for_sync()
    runner.start_workers()
    while not stop.wait(settings.status_interval):
        runner.requeue_all()  # the counts and lag, into each trigger's status
    log.info("shutting down")
    runner.stop_workers()
    fleet.stop_all()
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
