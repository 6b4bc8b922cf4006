"""The controller on a real cluster: Functions created with plain kubectl become running, answering workloads, and
their status says why when they do not."""
from __future__ import annotations

import json
import time

import pytest

from conftest import Cluster
from support import wait_until

HELLO = "def hello(event, context):\n    return event['data']\n"
CONTROLLER = "kubeless-controller-manager"


def function_manifest(name: str, *, code: str = HELLO, deps: str = "", runtime: str = "python3.11") -> str:
    return json.dumps({"apiVersion": "kubeless.io/v1beta1", "kind": "Function", "metadata": {"name": name},
                       "spec": {"handler": "hello.hello", "runtime": runtime, "function": code,
                                "function-content-type": "text", "deps": deps}})


def create_function(cluster: Cluster, namespace: str, name: str, **kwargs) -> dict:
    cluster.apply(function_manifest(name, **kwargs), namespace)
    return cluster.get_json("function", name, "-n", namespace)


def ready_condition(cluster: Cluster, namespace: str, name: str) -> dict:
    status = cluster.get_json("function", name, "-n", namespace).get("status") or {}
    return next((c for c in status.get("conditions") or [] if c["type"] == "Ready"), {})


def wait_for_ready_reason(cluster: Cluster, namespace: str, name: str, reason: str, timeout: float = 120) -> dict:
    return wait_until(f"function {name} to report Ready reason {reason}",
                      lambda: (c := ready_condition(cluster, namespace, name)).get("reason") == reason and c,
                      timeout=timeout)


def call(cluster: Cluster, namespace: str, name: str, body: str) -> str:
    """POST through the API server's service proxy; the runtime answers with the event data."""
    return cluster.kubectl("create", "--raw", f"/api/v1/namespaces/{namespace}/services/{name}:http-function-port"
                           "/proxy/", "-f", "-", input=body).stdout


def events_of(cluster: Cluster, namespace: str, name: str) -> list[dict]:
    return cluster.get_json("events", "-n", namespace, "--field-selector",
                            f"involvedObject.kind=Function,involvedObject.name={name}")["items"]


def leader_pod(cluster: Cluster) -> str:
    lease = cluster.get_json("lease", "kubeless-controller", "-n", "kubeless")
    return lease["spec"]["holderIdentity"]


def controller_metrics(cluster: Cluster, pod: str) -> dict[str, float]:
    text = cluster.kubectl("get", "--raw", f"/api/v1/namespaces/kubeless/pods/{pod}:8081/proxy/metrics").stdout
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            samples[key] = float(value)
    return samples


# --- a working function --------------------------------------------------------------------------------------

def test_a_function_becomes_ready_owns_its_children_and_answers(installed: Cluster, namespace: str):
    cluster = installed
    function = create_function(cluster, namespace, "hello")
    uid = function["metadata"]["uid"]
    condition = wait_for_ready_reason(cluster, namespace, "hello", "MinimumReplicasAvailable", timeout=90)
    assert condition["status"] == "True"
    for kind in ("configmap", "service", "deployment"):
        child = cluster.get_json(kind, "hello", "-n", namespace)
        owners = child["metadata"]["ownerReferences"]
        assert [(o["kind"], o["name"], o["uid"], o.get("controller")) for o in owners] == [
            ("Function", "hello", uid, True)], kind
        assert child["metadata"]["labels"]["created-by"] == "kubeless"
    assert call(cluster, namespace, "hello", '{"greeting": "hi"}') == '{"greeting": "hi"}'

    status = wait_until("the rollout to be reported complete", lambda: (s := cluster.get_json(
        "function", "hello", "-n", namespace)["status"]) and any(
        c["type"] == "Progressing" and c["reason"] == "NewReplicaSetAvailable" for c in s["conditions"]) and s)
    assert status["observedGeneration"] == function["metadata"]["generation"]
    assert (status["replicas"], status["readyReplicas"]) == (1, 1)
    reasons = [event["reason"] for event in events_of(cluster, namespace, "hello")]
    assert "Synced" in reasons and "Ready" in reasons
    assert all(event["source"]["component"] == "kubeless-controller"
               for event in events_of(cluster, namespace, "hello"))


def test_new_code_rolls_out_and_the_status_follows_the_generation(installed: Cluster, namespace: str):
    cluster = installed
    create_function(cluster, namespace, "hello")
    wait_for_ready_reason(cluster, namespace, "hello", "MinimumReplicasAvailable", timeout=90)
    updated = create_function(cluster, namespace, "hello",
                              code="def hello(event, context):\n    return 'v2:' + event['data']\n")
    generation = updated["metadata"]["generation"]
    wait_until("the new code to answer", lambda: call(cluster, namespace, "hello", "x") == "v2:x", timeout=90)
    wait_until("status of the new generation", lambda: cluster.get_json("function", "hello", "-n", namespace)[
        "status"]["observedGeneration"] == generation)


def test_deleting_the_function_garbage_collects_its_children(installed: Cluster, namespace: str):
    cluster = installed
    create_function(cluster, namespace, "gone")
    wait_until("the children", lambda: cluster.kubectl("get", "deployment/gone", "service/gone", "configmap/gone",
                                                       "-n", namespace, check=False).returncode == 0)
    cluster.kubectl("delete", "function", "gone", "-n", namespace)
    for kind in ("deployment", "service", "configmap"):
        wait_until(f"the {kind} to be garbage-collected", lambda kind=kind: cluster.kubectl(
            "get", kind, "gone", "-n", namespace, check=False).returncode != 0)


def test_an_autoscaler_follows_the_function_spec(installed: Cluster, namespace: str):
    cluster = installed
    manifest = json.loads(function_manifest("scaled"))
    manifest["spec"]["horizontalPodAutoscaler"] = {"spec": {"minReplicas": 1, "maxReplicas": 3, "metrics": [
        {"type": "Resource", "resource": {"name": "cpu", "targetAverageUtilization": 70}}]}}
    cluster.apply(json.dumps(manifest), namespace)
    hpa = wait_until("the autoscaler", lambda: cluster.get_json("hpa", "scaled", "-n", namespace))
    assert hpa["spec"]["scaleTargetRef"]["name"] == "scaled"
    assert hpa["metadata"]["ownerReferences"][0]["kind"] == "Function"
    cluster.kubectl("patch", "function", "scaled", "-n", namespace, "--type", "json", "-p",
                    '[{"op": "remove", "path": "/spec/horizontalPodAutoscaler"}]')
    wait_until("the autoscaler to be deleted", lambda: cluster.kubectl(
        "get", "hpa", "scaled", "-n", namespace, check=False).returncode != 0, timeout=30)


# --- functions that fail say why -----------------------------------------------------------------------------

def test_an_import_error_is_function_crashed_with_the_runtimes_message(installed: Cluster, namespace: str):
    cluster = installed
    create_function(cluster, namespace, "crash", code="import nope_xyz\n\n" + HELLO)
    condition = wait_for_ready_reason(cluster, namespace, "crash", "FunctionCrashed", timeout=90)
    assert condition["status"] == "False"
    assert "cannot load handler hello.hello" in condition["message"]
    assert "ModuleNotFoundError" in condition["message"] and "nope_xyz" in condition["message"]
    wait_until("a NotReady event", lambda: any(
        e["reason"] == "NotReady" and "FunctionCrashed" in e["message"] for e in events_of(cluster, namespace, "crash")))


def test_a_failing_install_is_install_failed_with_pips_message_within_seconds(installed: Cluster, namespace: str):
    cluster = installed
    create_function(cluster, namespace, "baddeps", deps="no-such-package-xyz==1.0\n")

    def install_failed_at() -> float | None:
        pods = cluster.get_json("pods", "-n", namespace, "-l", "function=baddeps")["items"]
        for pod in pods:
            for status in pod["status"].get("initContainerStatuses") or []:
                terminated = status["state"].get("terminated") or status["lastState"].get("terminated") or {}
                if status["name"] == "install" and terminated.get("exitCode", 0) != 0:
                    return time.monotonic()
        return None

    pod_failed = wait_until("pip to fail in the install init container", install_failed_at, timeout=120,
                            interval=0.25)
    condition = wait_for_ready_reason(cluster, namespace, "baddeps", "InstallFailed", timeout=30)
    assert time.monotonic() - pod_failed < 10, "the pod watch brings the failure to the status at once"
    assert condition["status"] == "False"
    assert "no-such-package-xyz" in condition["message"]
    assert "ERROR: No matching distribution found" in condition["message"]


def test_an_unknown_runtime_is_invalid_spec(installed: Cluster, namespace: str):
    cluster = installed
    create_function(cluster, namespace, "cobol", runtime="cobol85")
    condition = wait_for_ready_reason(cluster, namespace, "cobol", "InvalidSpec", timeout=30)
    assert condition["message"].startswith("unknown runtime 'cobol85'; supported: ")
    assert "python3.11" in condition["message"]
    assert cluster.kubectl("get", "deployment", "cobol", "-n", namespace, check=False).returncode != 0
    wait_until("a SyncFailed event", lambda: any(e["reason"] == "SyncFailed" and e["type"] == "Warning"
                                                 for e in events_of(cluster, namespace, "cobol")))


# --- operating the controller --------------------------------------------------------------------------------

def test_a_kubeless_config_change_applies_without_a_restart(installed: Cluster, namespace: str):
    cluster = installed
    create_function(cluster, namespace, "configured")
    wait_until("the deployment", lambda: cluster.kubectl("get", "deployment", "configured", "-n", namespace,
                                                         check=False).returncode == 0)
    pods_before = {(p["metadata"]["name"], p["status"]["containerStatuses"][0]["restartCount"])
                   for p in cluster.get_json("pods", "-n", "kubeless", "-l", "kubeless=controller")["items"]}
    config = cluster.get_json("configmap", "kubeless-config", "-n", "kubeless")
    original = config["data"]["deployment"]
    # a label on the Deployment object only: other functions' pods are not rolled
    default = json.dumps({**json.loads(original or "{}"), "metadata": {"labels": {"e2e-config": namespace}}})
    try:
        cluster.kubectl("patch", "configmap", "kubeless-config", "-n", "kubeless", "--type", "merge", "-p",
                        json.dumps({"data": {"deployment": default}}))
        wait_until("the new default on the function's Deployment", lambda: cluster.get_json(
            "deployment", "configured", "-n", namespace)["metadata"]["labels"].get("e2e-config") == namespace,
            timeout=30)
    finally:
        cluster.kubectl("patch", "configmap", "kubeless-config", "-n", "kubeless", "--type", "merge", "-p",
                        json.dumps({"data": {"deployment": original}}))
    pods_after = {(p["metadata"]["name"], p["status"]["containerStatuses"][0]["restartCount"])
                  for p in cluster.get_json("pods", "-n", "kubeless", "-l", "kubeless=controller")["items"]}
    assert pods_after == pods_before, "no controller restart"
    wait_until("the label to go with the restored config", lambda: "e2e-config" not in cluster.get_json(
        "deployment", "configured", "-n", namespace)["metadata"]["labels"], timeout=30)


def test_the_leader_exposes_health_and_reconcile_metrics(installed: Cluster, namespace: str):
    cluster = installed
    create_function(cluster, namespace, "counted")
    wait_for_ready_reason(cluster, namespace, "counted", "MinimumReplicasAvailable", timeout=90)
    pod = leader_pod(cluster)
    assert cluster.kubectl("get", "--raw", f"/api/v1/namespaces/kubeless/pods/{pod}:8081/proxy/healthz"
                           ).stdout.strip() == "ok"
    metrics = controller_metrics(cluster, pod)
    assert metrics['kubeless_controller_reconcile_total{result="success"}'] >= 1
    assert 'kubeless_controller_reconcile_total{result="error"}' in metrics
    assert "kubeless_controller_reconcile_errors_total" in metrics
    assert "kubeless_controller_workqueue_depth" in metrics
    assert metrics["kubeless_controller_reconcile_duration_seconds_count"] >= 1
    assert metrics['kubeless_controller_reconcile_duration_seconds_bucket{le="+Inf"}'] == metrics[
        "kubeless_controller_reconcile_duration_seconds_count"]
    assert metrics["kubeless_controller_is_leader"] == 1


def test_two_replicas_elect_one_leader(installed: Cluster, namespace: str):
    cluster = installed
    try:
        cluster.kubectl("scale", "deployment", CONTROLLER, "-n", "kubeless", "--replicas=2")
        cluster.kubectl("rollout", "status", f"deployment/{CONTROLLER}", "-n", "kubeless", "--timeout=90s",
                        timeout=100)
        pods = [p["metadata"]["name"] for p in cluster.get_json(
            "pods", "-n", "kubeless", "-l", "kubeless=controller", "--field-selector=status.phase=Running")["items"]
            if not p["metadata"].get("deletionTimestamp")]
        assert len(pods) == 2
        leaders = wait_until("exactly one leader", lambda: (found := [
            pod for pod in pods if controller_metrics(cluster, pod)["kubeless_controller_is_leader"] == 1]) and found)
        assert leaders == [leader_pod(cluster)]
        # the standby watches too, and reconciles nothing
        standby = next(pod for pod in pods if pod not in leaders)
        create_function(cluster, namespace, "elected")
        wait_for_ready_reason(cluster, namespace, "elected", "MinimumReplicasAvailable", timeout=90)
        assert controller_metrics(cluster, standby)["kubeless_controller_reconcile_duration_seconds_count"] == 0
    finally:
        cluster.kubectl("scale", "deployment", CONTROLLER, "-n", "kubeless", "--replicas=1")
        cluster.kubectl("rollout", "status", f"deployment/{CONTROLLER}", "-n", "kubeless", "--timeout=90s",
                        timeout=100)


@pytest.mark.parametrize(("verb", "resource", "allowed"), [
    ("create", "deployments.apps", "yes"),
    ("patch", "functions.kubeless.io --subresource=status", "yes"),
    ("watch", "pods", "yes"),
    ("create", "events", "yes"),
    ("get", "secrets", "no"),
    ("delete", "nodes", "no"),
    ("update", "functions.kubeless.io", "no"),
    ("create", "pods", "no"),
    ("update", "leases.coordination.k8s.io", "no"),
])
def test_the_controller_account_has_least_privilege(installed: Cluster, verb: str, resource: str, allowed: str):
    result = installed.kubectl("auth", "can-i", verb, *resource.split(), "-A",
                               "--as=system:serviceaccount:kubeless:controller-acct", check=False)
    assert result.stdout.strip() == allowed


def test_the_lease_is_only_writable_in_the_controllers_namespace(installed: Cluster):
    can = [installed.kubectl("auth", "can-i", "update", "leases.coordination.k8s.io", "-n", namespace,
                             "--as=system:serviceaccount:kubeless:controller-acct", check=False).stdout.strip()
           for namespace in ("kubeless", "default")]
    assert can == ["yes", "no"]
