"""The controller's Prometheus metrics, in the text exposition format, without a client library."""
from __future__ import annotations

import os
import threading
from collections.abc import Callable

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(labels: dict[str, str]) -> str:
    return "{" + ",".join(f'{key}="{_escape(value)}"' for key, value in labels.items()) + "}" if labels else ""


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def resident_memory_bytes() -> int:
    """This process's resident set, from /proc (0 where there is none)."""
    try:
        with open("/proc/self/statm") as file:
            return int(file.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


class Metrics:
    def __init__(self, queue_depth: Callable[[], int] = lambda: 0):
        self._lock = threading.Lock()
        self.queue_depth = queue_depth
        self.reconcile_total = {"success": 0, "error": 0}
        self.errors_total = 0
        self.buckets = [0] * len(DURATION_BUCKETS)
        self.duration_sum = 0.0
        self.duration_count = 0
        self.is_leader = False
        self.api_requests: dict[tuple[str, str], int] = {}  # (verb, resource) -> requests sent

    def observe_reconcile(self, seconds: float, ok: bool) -> None:
        with self._lock:
            self.reconcile_total["success" if ok else "error"] += 1
            if not ok:
                self.errors_total += 1
            self.duration_sum += seconds
            self.duration_count += 1
            for index, bound in enumerate(DURATION_BUCKETS):
                if seconds <= bound:
                    self.buckets[index] += 1

    def count_request(self, verb: str, resource: str) -> None:
        """One request to the API server (the clients' on_request)."""
        with self._lock:
            self.api_requests[verb, resource] = self.api_requests.get((verb, resource), 0) + 1

    def render(self) -> str:
        resident = resident_memory_bytes()
        times = os.times()
        with self._lock:
            lines = [
                "# HELP kubeless_controller_reconcile_total Reconciliations of a Function, by result.",
                "# TYPE kubeless_controller_reconcile_total counter",
                *(f"kubeless_controller_reconcile_total{_labels({'result': result})} {count}"
                  for result, count in self.reconcile_total.items()),
                "# HELP kubeless_controller_reconcile_errors_total Reconciliations that failed and were retried.",
                "# TYPE kubeless_controller_reconcile_errors_total counter",
                f"kubeless_controller_reconcile_errors_total {self.errors_total}",
                "# HELP kubeless_controller_workqueue_depth Function keys waiting to be reconciled.",
                "# TYPE kubeless_controller_workqueue_depth gauge",
                f"kubeless_controller_workqueue_depth {self.queue_depth()}",
                "# HELP kubeless_controller_reconcile_duration_seconds Time to reconcile one Function.",
                "# TYPE kubeless_controller_reconcile_duration_seconds histogram",
                *(f"kubeless_controller_reconcile_duration_seconds_bucket{_labels({'le': _number(bound)})} {count}"
                  for bound, count in zip(DURATION_BUCKETS, self.buckets)),
                f'kubeless_controller_reconcile_duration_seconds_bucket{{le="+Inf"}} {self.duration_count}',
                f"kubeless_controller_reconcile_duration_seconds_sum {_number(self.duration_sum)}",
                f"kubeless_controller_reconcile_duration_seconds_count {self.duration_count}",
                "# HELP kubeless_controller_is_leader 1 when this replica holds the leader lease.",
                "# TYPE kubeless_controller_is_leader gauge",
                f"kubeless_controller_is_leader {int(self.is_leader)}",
                "# HELP kubeless_controller_api_requests_total Requests sent to the API server, by verb (get, list, "
                "watch, apply, create, update, delete) and resource.",
                "# TYPE kubeless_controller_api_requests_total counter",
                *(f"kubeless_controller_api_requests_total{_labels({'verb': verb, 'resource': resource})} {count}"
                  for (verb, resource), count in sorted(self.api_requests.items())),
                "# HELP process_resident_memory_bytes Resident memory size in bytes.",
                "# TYPE process_resident_memory_bytes gauge",
                f"process_resident_memory_bytes {resident}",
                "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.",
                "# TYPE process_cpu_seconds_total counter",
                f"process_cpu_seconds_total {_number(round(times.user + times.system, 2))}",
            ]
        return "\n".join(lines) + "\n"
