#!/usr/bin/env python3
"""The controller at scale: 1,000 Functions at once, a restart with nothing changed, memory with 100 KiB of code each.

    bench/controller_scale.py [--functions 1000] [--code-kib 100]

Prints three figures (and how they were counted):
1. seconds from the first create until every Function (replicas 0, so no pods) has its children and a status
   (Ready reason ScaledToZero for its generation);
2. write requests the controller sends after a restart with nothing changed: from its own metrics
   (kubeless_controller_api_requests_total, Lease renewals left out) when it has them, and from the API server's
   apiserver_request_total for the children's and the Functions' resources in any case;
3. the controller's peak resident memory (VmHWM of its PID 1) with that many Functions of --code-kib each, through
   their first reconcile and through a restart that lists them all again.
Runs against $KUBECONFIG, or the local cluster, where the product is installed (`kubectl kubeless install --wait`);
creates two scratch namespaces and deletes them. Requests go to that cluster only; each phase is bounded in time.
"""
from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import re
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from function_latency import environment  # noqa: E402

SYSTEM = "kubeless"
CONTROLLER = "kubeless-controller-manager"
LEASE = "/apis/coordination.k8s.io/v1/namespaces/kubeless/leases/kubeless-controller"
FUNCTIONS = "/apis/kubeless.io/v1beta1/namespaces/{}/functions"
WRITE_VERBS = ("apply", "create", "update", "patch", "delete")
SERVER_WRITE_VERBS = ("APPLY", "POST", "PUT", "PATCH", "DELETE")
# What the controller writes, and nobody else in a quiet cluster (kube-controller-manager writes deployments/status,
# the bench creates the functions; events are left out: the kubelet's and the scheduler's cannot be told apart).
CONTROLLER_WRITES = ("configmaps", "services", "deployments", "horizontalpodautoscalers", "functions/status")
PHASE_TIMEOUT = 600
CREATORS = 16
HELLO = "def hello(event, context):\n    return event['data']\n"


# --- talking to the cluster ------------------------------------------------------------------------------------

class Api:
    """Just enough of a client for the bench: the kubeconfig's server and credentials, a connection per thread."""

    def __init__(self, env: dict[str, str]):
        config = json.loads(subprocess.run(["kubectl", "config", "view", "--raw", "--minify", "-o", "json"],
                                           env=env, capture_output=True, text=True, check=True).stdout)
        cluster, user = config["clusters"][0]["cluster"], config["users"][0]["user"]
        url = urllib.parse.urlsplit(cluster["server"])
        self.host, self.port = url.hostname, url.port or 443
        self.folder = Path(tempfile.mkdtemp(prefix="controller-scale-"))
        self.context = ssl.create_default_context(cafile=self._file(cluster, "certificate-authority"))
        if cluster.get("insecure-skip-tls-verify"):
            self.context.check_hostname, self.context.verify_mode = False, ssl.CERT_NONE
        certificate = self._file(user, "client-certificate")
        if certificate:
            self.context.load_cert_chain(certificate, self._file(user, "client-key"))
        self.headers = {"Accept": "application/json", "Content-Type": "application/json"}
        if user.get("token"):
            self.headers["Authorization"] = f"Bearer {user['token']}"
        self._local = threading.local()

    def _file(self, entry: dict, key: str) -> str | None:
        if entry.get(f"{key}-data"):
            path = self.folder / key
            path.write_bytes(base64.b64decode(entry[f"{key}-data"]))
            return str(path)
        return entry.get(key)

    def connect(self, timeout: float = 60) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(self.host, self.port, context=self.context, timeout=timeout)

    def request(self, method: str, path: str, body: dict | None = None, *, ok: tuple[int, ...] = (200, 201)) -> dict:
        for attempt in (1, 2):
            connection = getattr(self._local, "connection", None) or self.connect()
            self._local.connection = connection
            try:
                connection.request(method, path, body=None if body is None else json.dumps(body),
                                   headers=self.headers)
                response = connection.getresponse()
                payload = response.read()
                break
            except (http.client.HTTPException, OSError):
                connection.close()
                self._local.connection = None
                if attempt == 2:
                    raise
        if response.status not in ok:
            raise RuntimeError(f"{method} {path}: {response.status} {payload[:300]!r}")
        return json.loads(payload) if payload else {}

    def text(self, path: str) -> str:
        connection = self.connect()
        try:
            connection.request("GET", path, headers={**self.headers, "Accept": "text/plain"})
            response = connection.getresponse()
            payload = response.read().decode()
            if response.status != 200:
                raise RuntimeError(f"GET {path}: {response.status} {payload[:300]}")
            return payload
        finally:
            connection.close()


def samples(text: str) -> dict[str, float]:
    """A Prometheus text exposition as {'name{labels}': value}."""
    result = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            result[key] = float(value)
    return result


def labels(key: str) -> dict[str, str]:
    return dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', key.partition("{")[2]))


def server_writes(before: dict[str, float], after: dict[str, float]) -> dict[tuple[str, str], int]:
    """apiserver_request_total's growth in write verbs on what the controller writes, by (verb, resource)."""
    grown: dict[tuple[str, str], int] = {}
    for key, value in after.items():
        if not key.startswith("apiserver_request_total{"):
            continue
        found = labels(key)
        name = found.get("resource", "") + (f"/{found['subresource']}" if found.get("subresource") else "")
        if found.get("verb") in SERVER_WRITE_VERBS and name in CONTROLLER_WRITES:
            delta = int(value - before.get(key, 0))
            if delta:
                grown[found["verb"], name] = grown.get((found["verb"], name), 0) + delta
    return grown


# --- the bench -------------------------------------------------------------------------------------------------

class Killed(Exception):
    """The controller was killed (out of memory) while the bench waited for it."""


class Bench:
    def __init__(self, env: dict[str, str], count: int):
        self.env, self.count = env, count
        self.api = Api(env)

    def kubectl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(["kubectl", *args], env=self.env, capture_output=True, text=True, check=check,
                              timeout=PHASE_TIMEOUT)

    # the controller

    def leader(self) -> str:
        return (self.api.request("GET", LEASE).get("spec") or {}).get("holderIdentity") or ""

    def metrics(self, pod: str) -> dict[str, float]:
        return samples(self.api.text(f"/api/v1/namespaces/{SYSTEM}/pods/{pod}:8081/proxy/metrics"))

    def memory(self, pod: str) -> dict[str, int]:
        """VmRSS and VmHWM (the peak) of the controller's PID 1, in bytes."""
        script = ("import re; s = open('/proc/1/status').read(); "
                  "print(*(re.search(k + r':\\s+(\\d+)', s).group(1) for k in ('VmRSS', 'VmHWM')))")
        rss, peak = self.kubectl("exec", "-n", SYSTEM, pod, "--", "python3", "-c", script).stdout.split()
        return {"rss": int(rss) * 1024, "peak": int(peak) * 1024}

    def killed(self) -> str | None:
        """Why a controller container last ended, when the kernel or the kubelet ended it (OOMKilled)."""
        pods = json.loads(self.kubectl("get", "pods", "-n", SYSTEM, "-l", "kubeless=controller", "-o", "json").stdout)
        for pod in pods["items"]:
            for container in (pod.get("status") or {}).get("containerStatuses") or []:
                reason = ((container.get("lastState") or {}).get("terminated") or {}).get("reason")
                if reason == "OOMKilled":
                    return f"{pod['metadata']['name']} was OOMKilled (restarts: {container.get('restartCount')})"
        return None

    def wait_quiet(self, pod: str, reconciles: int) -> dict[str, float]:
        """Until the leader has reconciled `reconciles` keys, its queue is empty and nothing moved for 5 s."""
        deadline, last, still_since = time.monotonic() + PHASE_TIMEOUT, None, time.monotonic()
        while time.monotonic() < deadline:
            try:
                metrics = self.metrics(pod)
            except RuntimeError:
                killed = self.killed()
                if killed:
                    raise Killed(killed) from None
                time.sleep(1)
                continue
            done = metrics.get('kubeless_controller_reconcile_total{result="success"}', 0) + metrics.get(
                'kubeless_controller_reconcile_total{result="error"}', 0)
            state = (done, metrics.get("kubeless_controller_workqueue_depth"))
            if state != last:
                last, still_since = state, time.monotonic()
            if (metrics.get("kubeless_controller_is_leader") == 1 and done >= reconciles and state[1] == 0
                    and time.monotonic() - still_since >= 5):
                return metrics
            time.sleep(1)
        raise SystemExit(f"the controller {pod} did not settle within {PHASE_TIMEOUT} s (reconciled: {last})")

    def restart(self) -> tuple[str, dict[str, float], dict[tuple[str, str], int]]:
        """Delete the leader's pod; wait for its successor to lead and settle. (pod, its metrics, server writes)"""
        old = self.leader()
        before = samples(self.api.text("/metrics"))
        self.kubectl("delete", "pod", "-n", SYSTEM, old, "--wait=false")
        deadline = time.monotonic() + PHASE_TIMEOUT
        while (new := self.leader()) in ("", old):
            if time.monotonic() > deadline:
                raise SystemExit("no new leader after the restart")
            time.sleep(0.5)
        metrics = self.wait_quiet(new, self.count)
        return new, metrics, server_writes(before, samples(self.api.text("/metrics")))

    # the functions

    def wait_for_leftovers(self) -> None:
        """Until no namespace of an earlier run is left: its deletion (thousands of objects for the garbage
        collector) would load the API server during this one."""
        deadline = time.monotonic() + PHASE_TIMEOUT
        while any(item["metadata"]["name"].startswith("scale-")
                  for item in self.api.request("GET", "/api/v1/namespaces")["items"]):
            if time.monotonic() > deadline:
                raise SystemExit("namespaces scale-* of an earlier run are still there")
            time.sleep(2)

    def create_namespace(self, name: str) -> None:
        self.api.request("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                        "metadata": {"name": name}})

    def delete_namespace(self, name: str, wait: bool) -> None:
        """The Functions first, and their children gone, then the namespace: deleted the other way round, the
        children go first and the controller, seeing them go, tries to recreate them in a namespace that refuses
        new objects, and retries with backoff for minutes (noise in the next phase)."""
        path = FUNCTIONS.format(name)
        self.api.request("DELETE", path, ok=(200, 404))
        deadline = time.monotonic() + PHASE_TIMEOUT
        children = f"/api/v1/namespaces/{name}/configmaps?labelSelector=created-by%3Dkubeless&limit=1"
        while wait and (self.api.request("GET", f"{path}?limit=1", ok=(200, 404)).get("items")
                        or self.api.request("GET", children, ok=(200, 404)).get("items")):
            if time.monotonic() > deadline:
                raise SystemExit(f"the functions of {name} still there after {PHASE_TIMEOUT} s")
            time.sleep(1)
        self.kubectl("delete", "namespace", name, "--wait=false", check=False)

    def function(self, namespace: str, index: int, code_bytes: int) -> dict:
        code = HELLO
        if code_bytes > len(code):  # distinct code per function, padded with a comment to the size asked for
            filler = f"# {index:06d} " + "x" * code_bytes
            code = HELLO + filler[:code_bytes - len(HELLO)] + "\n"
        return {"apiVersion": "kubeless.io/v1beta1", "kind": "Function",
                "metadata": {"name": f"f{index:04d}", "namespace": namespace},
                "spec": {"runtime": "python3.11", "handler": "hello.hello", "function": code,
                         "function-content-type": "text", "deps": "", "deployment": {"spec": {"replicas": 0}}}}

    def deploy_all(self, namespace: str, code_bytes: int) -> float:
        """Create `count` Functions at once (CREATORS in parallel); seconds from the first create until each has
        its children and a status for its generation."""
        path = FUNCTIONS.format(namespace)
        version = self.api.request("GET", f"{path}?limit=1")["metadata"]["resourceVersion"]
        done: dict[str, float] = {}
        finished = threading.Event()

        def record(obj: dict) -> None:
            status = obj.get("status") or {}
            ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
            if (status.get("observedGeneration") == obj["metadata"].get("generation")
                    and ready.get("reason") == "ScaledToZero"):
                done.setdefault(obj["metadata"]["name"], time.monotonic())

        def follow(version: str) -> None:
            """Watch the namespace's Functions from before the first create; should the watch end or fail (a slow
            reader is cut off by the API server), list what is done and watch again from there."""
            deadline = time.monotonic() + PHASE_TIMEOUT
            while len(done) < self.count and time.monotonic() < deadline:
                connection = self.api.connect(timeout=20)  # silent for 20 s while some are not done: list
                try:
                    query = urllib.parse.urlencode({"watch": "1", "resourceVersion": version,
                                                    "timeoutSeconds": PHASE_TIMEOUT})
                    connection.request("GET", f"{path}?{query}", headers=self.api.headers)
                    response = connection.getresponse()
                    while len(done) < self.count:
                        line = response.readline()
                        if not line:
                            break
                        event = json.loads(line)
                        if event.get("type") == "ERROR":
                            raise RuntimeError(event.get("object"))
                        record(event["object"])
                        version = event["object"]["metadata"]["resourceVersion"]
                except (OSError, http.client.HTTPException, RuntimeError, ValueError) as error:
                    print(f"  (the watch ended: {error}; listing again)", file=sys.stderr, flush=True)
                finally:
                    connection.close()
                if len(done) < self.count:
                    listed = self.api.request("GET", f"{path}?limit=100")
                    while True:
                        for item in listed["items"]:
                            record(item)
                        token = listed["metadata"].get("continue")
                        if not token:
                            break
                        listed = self.api.request("GET", f"{path}?limit=100&continue={urllib.parse.quote(token)}")
                    version = listed["metadata"]["resourceVersion"]
            finished.set()

        threading.Thread(target=follow, args=(version,), daemon=True).start()
        started = time.monotonic()
        with ThreadPoolExecutor(CREATORS) as pool:
            list(pool.map(lambda i: self.api.request("POST", path, self.function(namespace, i, code_bytes)),
                          range(self.count)))
        print(f"  created {self.count} Functions in {time.monotonic() - started:.1f} s", flush=True)
        finished.wait(PHASE_TIMEOUT + 60)
        if len(done) < self.count:
            raise SystemExit(f"after {PHASE_TIMEOUT} s only {len(done)} of {self.count} functions have a status")
        return max(done.values()) - started


def writes_of(metrics: dict[str, float], since: dict[str, float] | None = None) -> dict[tuple[str, str], int] | None:
    """The controller's own write count by (verb, resource) (since an earlier sample of the same pod), Lease
    renewals left out; None when it has no such count."""
    if not any(key.startswith("kubeless_controller_api_requests_total") for key in metrics):
        return None
    counted = {}
    for key, value in metrics.items():
        if key.startswith("kubeless_controller_api_requests_total{"):
            found = labels(key)
            grown = int(value - (since or {}).get(key, 0))
            if found["verb"] in WRITE_VERBS and found["resource"] != "leases" and grown:
                counted[found["verb"], found["resource"]] = grown
    return counted


def effort(metrics: dict[str, float], since: dict[str, float]) -> str:
    """Reconciles, their mean duration and the controller's CPU seconds between two samples of one pod."""
    count = "kubeless_controller_reconcile_duration_seconds_count"
    total = "kubeless_controller_reconcile_duration_seconds_sum"
    reconciles = metrics.get(count, 0) - since.get(count, 0)
    mean = (metrics.get(total, 0) - since.get(total, 0)) / reconciles if reconciles else 0
    cpu = metrics.get("process_cpu_seconds_total", 0) - since.get("process_cpu_seconds_total", 0)
    return f"{reconciles:.0f} reconciles, {mean * 1000:.0f} ms each on average" + (
        f", {cpu:.1f} s of controller CPU" if "process_cpu_seconds_total" in metrics else "")


def show(counts: dict[tuple[str, str], int] | None) -> str:
    if counts is None:
        return "n/a (this controller does not count its requests)"
    return f"{sum(counts.values())}" + (f"  ({', '.join(f'{v} {r}:{n}' for (v, r), n in sorted(counts.items()))})"
                                        if counts else "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--functions", type=int, default=1000)
    parser.add_argument("--code-kib", type=int, default=100)
    parser.add_argument("--phases", default="123", help="which figures to measure (default: 123)")
    args = parser.parse_args()
    bench = Bench(environment(), args.functions)
    bench.kubectl("get", "deployment", CONTROLLER, "-n", SYSTEM)  # installed?
    bench.wait_for_leftovers()
    run = uuid.uuid4().hex[:6]
    small, large = f"scale-{run}-a", f"scale-{run}-b"
    try:
        if "1" in args.phases or "2" in args.phases:
            print(f"1. {args.functions} Functions (replicas 0) created at once", flush=True)
            bench.create_namespace(small)
            pod = bench.leader()
            before, since = samples(bench.api.text("/metrics")), bench.metrics(pod)
            seconds = bench.deploy_all(small, 0)
            settled = bench.wait_quiet(pod, args.functions)
            print(f"  every one has its children and a status after {seconds:.1f} s", flush=True)
            print(f"  controller: {effort(settled, since)}")
            print(f"  controller writes: {show(writes_of(settled, since))}")
            print(f"  API server writes on what the controller writes: "
                  f"{show(server_writes(before, samples(bench.api.text('/metrics'))))}", flush=True)
        if "2" in args.phases:
            print("2. a controller restart with nothing changed", flush=True)
            pod, metrics, server = bench.restart()
            print(f"  controller writes (its own count, Leases left out): {show(writes_of(metrics))}")
            print(f"  API server writes on what the controller writes: {show(server)}", flush=True)
        if "3" in args.phases:
            print(f"3. memory with {args.functions} Functions of {args.code_kib} KiB", flush=True)
            bench.delete_namespace(small, wait=True)
            bench.create_namespace(large)
            seconds = bench.deploy_all(large, args.code_kib * 1024)
            try:
                bench.wait_quiet(bench.leader(), args.functions)
                first = bench.memory(bench.leader())
                print(f"  statuses after {seconds:.1f} s; controller RSS {first['rss'] / 2**20:.0f} MiB, "
                      f"peak {first['peak'] / 2**20:.0f} MiB", flush=True)
                pod, metrics, server = bench.restart()
                again = bench.memory(pod)
                print(f"  after a restart: RSS {again['rss'] / 2**20:.0f} MiB, peak {again['peak'] / 2**20:.0f} MiB; "
                      f"controller writes {show(writes_of(metrics))}; API server writes {show(server)}", flush=True)
                print(f"  peak: {max(first['peak'], again['peak']) / 2**20:.0f} MiB", flush=True)
            except Killed as killed:
                print(f"  peak: over the container's memory limit: {killed}", flush=True)
    finally:
        if not os.environ.get("KEEP_NAMESPACES"):
            for namespace in (small, large):
                bench.delete_namespace(namespace, wait=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
