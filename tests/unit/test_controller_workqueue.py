"""The work queue, the metrics text and the process environment."""
from __future__ import annotations

import threading
import time



from kubeless_controller.settings import Environment
from kubeless_controller.metrics import Metrics
from kubeless_controller.workqueue import Backoff, ShutDown, WorkQueue


# --- queue -----------------------------------------------------------------------------------------------------

def test_a_key_added_twice_is_queued_once():
    queue = WorkQueue()
    queue.add("ns/a")
    queue.add("ns/a")
    queue.add("ns/b")
    assert len(queue) == 2
    assert [queue.get(), queue.get()] == ["ns/a", "ns/b"]
    assert queue.get(timeout=0.01) is None


def test_a_key_added_while_processing_is_processed_again_after_done_not_in_parallel():
    queue = WorkQueue()
    queue.add("ns/a")
    assert queue.get() == "ns/a"
    queue.add("ns/a")
    assert queue.get(timeout=0.01) is None, "no second worker may get a key being processed"
    queue.done("ns/a")
    assert queue.get(timeout=0.1) == "ns/a"
    queue.done("ns/a")
    assert queue.get(timeout=0.01) is None


def test_add_after_delays_the_key():
    queue = WorkQueue()
    queue.add_after("ns/a", 0.1)
    assert queue.get(timeout=0.02) is None
    started = time.monotonic()
    assert queue.get(timeout=2) == "ns/a"
    assert time.monotonic() - started < 1


def test_backoff_doubles_from_half_a_second_to_five_minutes_and_never_gives_up():
    backoff = Backoff()
    delays = [backoff.next_delay("k") for _ in range(100)]
    assert delays[:5] == [0.5, 1, 2, 4, 8]
    assert max(delays) == delays[-1] == 300
    assert backoff.failures("k") == 100
    backoff.forget("k")
    assert backoff.next_delay("k") == 0.5
    assert backoff.next_delay("other") == 0.5, "per key"


def test_rate_limited_requeue_uses_the_keys_backoff():
    queue = WorkQueue(Backoff(base=0.01, cap=0.05))
    assert queue.add_rate_limited("ns/a") == 0.01
    assert queue.add_rate_limited("ns/a") == 0.02
    assert queue.get(timeout=1) == "ns/a"
    queue.forget("ns/a")
    assert queue.backoff.failures("ns/a") == 0


def test_shut_down_releases_waiting_workers():
    queue = WorkQueue()
    outcome = []

    def worker():
        try:
            queue.get()
        except ShutDown:
            outcome.append("stopped")

    thread = threading.Thread(target=worker)
    thread.start()
    time.sleep(0.05)
    queue.shut_down()
    thread.join(1)
    assert outcome == ["stopped"]


def test_workers_never_hold_the_same_key_at_once():
    queue = WorkQueue()
    busy: set[str] = set()
    clashes = []
    lock = threading.Lock()

    def worker():
        while True:
            try:
                key = queue.get()
            except ShutDown:
                return
            with lock:
                if key in busy:
                    clashes.append(key)
                busy.add(key)
            time.sleep(0.001)
            with lock:
                busy.discard(key)
            queue.done(key)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for round_ in range(200):
        queue.add(f"ns/{round_ % 3}")
    time.sleep(0.2)
    queue.shut_down()
    for thread in threads:
        thread.join(1)
    assert clashes == []


# --- metrics ---------------------------------------------------------------------------------------------------

def test_metrics_exposition():
    metrics = Metrics(queue_depth=lambda: 3)
    metrics.observe_reconcile(0.02, ok=True)
    metrics.observe_reconcile(2.0, ok=False)
    metrics.is_leader = True
    text = metrics.render()
    lines = set(text.splitlines())
    assert 'kubeless_controller_reconcile_total{result="success"} 1' in lines
    assert 'kubeless_controller_reconcile_total{result="error"} 1' in lines
    assert "kubeless_controller_reconcile_errors_total 1" in lines
    assert "kubeless_controller_workqueue_depth 3" in lines
    assert 'kubeless_controller_reconcile_duration_seconds_bucket{le="0.025"} 1' in lines
    assert 'kubeless_controller_reconcile_duration_seconds_bucket{le="2.5"} 2' in lines
    assert 'kubeless_controller_reconcile_duration_seconds_bucket{le="+Inf"} 2' in lines
    assert "kubeless_controller_reconcile_duration_seconds_count 2" in lines
    assert "kubeless_controller_reconcile_duration_seconds_sum 2.02" in lines
    assert "kubeless_controller_is_leader 1" in lines
    assert "# TYPE kubeless_controller_reconcile_duration_seconds histogram" in lines
    assert text.endswith("\n")


def test_api_requests_and_the_processs_memory_are_exposed():
    metrics = Metrics()
    for verb, resource in [("apply", "deployments"), ("apply", "deployments"), ("get", "functions")]:
        metrics.count_request(verb, resource)
    lines = metrics.render().splitlines()
    assert 'kubeless_controller_api_requests_total{verb="apply",resource="deployments"} 2' in lines
    assert 'kubeless_controller_api_requests_total{verb="get",resource="functions"} 1' in lines
    assert "# TYPE kubeless_controller_api_requests_total counter" in lines
    resident = next(line for line in lines if line.startswith("process_resident_memory_bytes "))
    assert int(resident.split()[1]) > 1_000_000
    assert any(line.startswith("process_cpu_seconds_total ") for line in lines)


# --- the process environment ----------------------------------------------------------------------------------

def test_environment():
    environment = Environment.from_env({"KUBELESS_NAMESPACE": "sys", "POD_NAME": "pod-1", "KUBELESS_WORKERS": "2"})
    assert (environment.namespace, environment.config_map, environment.pod_name, environment.workers,
            environment.port) == ("sys", "kubeless-config", "pod-1", 2, 8081)
    limited = Environment.from_env({"KUBELESS_API_QPS": "50", "KUBELESS_API_BURST": "100"})
    assert (limited.api_qps, limited.api_burst) == (50.0, 100)
