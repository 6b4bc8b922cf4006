"""`python3 -m kubeless_controller`: the controller process, as the Deployment kubeless-controller-manager runs it.

Every replica watches (so a new leader starts with warm copies) and serves /healthz and /metrics; only the replica
holding the Lease runs the workers. Losing the Lease ends the process, and Kubernetes starts it again as a candidate.
SIGTERM stops the workers and hands the Lease back, so the next leader takes over at once.
"""
from __future__ import annotations

import logging
import os
import signal
import sys
import threading

from kubeless_api import meta
from kubeless_controller.client import Client, Credentials
from kubeless_controller.functions.reconciler import FunctionReconciler
from kubeless_controller.leader import LeaderElector
from kubeless_controller.metrics import Metrics
from kubeless_controller.probes import serve
from kubeless_controller.runner import Runner
from kubeless_controller.settings import Environment, SettingsWatch
from kubeless_controller.triggers.cron import CronJobTriggerReconciler
from kubeless_controller.triggers.http import HTTPTriggerReconciler

LEASE_NAME = "kubeless-controller"
CONFIG_TIMEOUT = 30
# Triggers change seldom and reconcile in a request or two: a few workers each, beside the functions' many.
TRIGGER_WORKERS = 2

log = logging.getLogger("kubeless_controller")


def main() -> int:
    logging.basicConfig(level=os.environ.get("KUBELESS_LOG_LEVEL", "INFO").upper(), stream=sys.stdout,
                        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    environment = Environment.from_env()
    log.info("kubeless controller %s starting as %s in namespace %s", meta.project_version(),
             environment.pod_name, environment.namespace)
    runners: list[Runner] = []
    metrics = Metrics(queue_depth=lambda: sum(len(runner.queue) for runner in runners))
    client = Client(Credentials.in_cluster(), qps=environment.api_qps, burst=environment.api_burst,
                    on_request=metrics.count_request)
    runners += [Runner(client, environment, FunctionReconciler(), metrics=metrics),
                *(Runner(client, environment, reconciler, metrics=metrics, workers=TRIGGER_WORKERS)
                  for reconciler in (HTTPTriggerReconciler(), CronJobTriggerReconciler()))]
    settings = SettingsWatch(client, environment, [runner.configure for runner in runners])

    def healthy() -> bool:
        return settings.informer.is_alive() and all(runner.healthy() for runner in runners)

    def start_workers() -> None:
        for runner in runners:
            runner.start_workers()

    server = serve(environment.port, healthy=healthy, metrics=metrics.render)
    stop = threading.Event()

    def deposed() -> None:
        logging.getLogger().handlers[0].flush()
        os._exit(1)  # at once: another replica may take the Lease soon, and two leaders must never work together

    # its own client: renewing the Lease never waits behind the workers' requests or their rate
    elector = LeaderElector(Client(Credentials.in_cluster(), timeout=5, on_request=metrics.count_request),
                            environment.namespace, LEASE_NAME,
                            environment.pod_name, on_started=start_workers, on_stopped=deposed)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())

    namespace = settings.start(CONFIG_TIMEOUT).functions_namespace
    for runner in runners:
        runner.start_informers(namespace)
    for runner in runners:  # campaign with warm copies: a new leader then applies only what changed
        runner.wait_for_sync()
    threading.Thread(target=elector.run, name="leader-election", daemon=True).start()
    while not stop.wait(1):
        pass

    log.info("shutting down")
    elector.stop()
    if all([runner.stop_workers() for runner in runners]):
        elector.release()
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
