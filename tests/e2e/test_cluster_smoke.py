"""The cluster itself works: the foundation every product test stands on."""
from __future__ import annotations

import json

import pytest

from conftest import REPO, Cluster
from support import wait_until

SMOKE = (REPO / "hack" / "demo" / "smoke.yaml").read_text()


def deploy_smoke(cluster: Cluster, namespace: str) -> None:
    cluster.apply(SMOKE, namespace)
    wait_until("2 ready replicas of smoke",
               lambda: cluster.get_json("deployment", "smoke", "-n", namespace)["status"].get("readyReplicas") == 2,
               timeout=90)


def run_pod(cluster: Cluster, namespace: str, name: str, command: str) -> str:
    """Run a one-shot pod from a locally built image and return its log once it has succeeded."""
    overrides = {"spec": {"automountServiceAccountToken": False, "containers": [{
        "name": name, "image": "localhost/kubeless/provision:0.1.0", "imagePullPolicy": "Never",
        "command": ["/bin/sh", "-c", command]}]}}
    cluster.kubectl("run", name, "-n", namespace, "--restart=Never", "--image=localhost/kubeless/provision:0.1.0",
                    f"--overrides={json.dumps(overrides)}")
    phase = wait_until(f"pod {name} to finish", lambda: cluster.get_json("pod", name, "-n", namespace)["status"].get(
        "phase") in ("Succeeded", "Failed") and cluster.get_json("pod", name, "-n", namespace)["status"]["phase"])
    output = cluster.kubectl("logs", name, "-n", namespace).stdout
    assert phase == "Succeeded", f"pod {name} failed:\n{output}"
    return output


def test_deployment_of_local_image_reaches_two_ready_replicas(cluster: Cluster, namespace: str):
    deploy_smoke(cluster, namespace)
    pods = cluster.get_json("pods", "-n", namespace, "-l", "app=smoke")["items"]
    assert len(pods) == 2
    assert {p["status"]["phase"] for p in pods} == {"Running"}
    assert all(p["status"]["podIP"] for p in pods)


def test_api_server_service_proxy_returns_the_pods_answer(cluster: Cluster, namespace: str):
    deploy_smoke(cluster, namespace)
    pod_names = {p["metadata"]["name"] for p in cluster.get_json("pods", "-n", namespace, "-l", "app=smoke")["items"]}
    answer = cluster.kubectl("get", "--raw", f"/api/v1/namespaces/{namespace}/services/smoke:http/proxy/").stdout
    assert answer.startswith("hello from ")
    assert answer.split()[-1] in pod_names


def test_another_pod_reaches_the_service_by_dns_name(cluster: Cluster, namespace: str):
    deploy_smoke(cluster, namespace)
    output = run_pod(cluster, namespace, "client",
                     f"curl -sS --fail --max-time 10 http://smoke.{namespace}.svc.cluster.local:8080/")
    assert output.startswith("hello from smoke-")


def test_pod_dns_has_no_upstream(cluster: Cluster, namespace: str):
    """Cluster names resolve; any other name is refused by CoreDNS itself, so no lookup leaves the machine."""
    if cluster.kind != "local":
        pytest.skip("only the local cluster's network is known to this test")
    output = run_pod(cluster, namespace, "resolver",
                     "nslookup kubernetes.default.svc.cluster.local; nslookup example.com; true")
    assert "10.96.0.1" in output
    assert "NXDOMAIN" in output


def test_forward_fence_is_first_in_the_forward_chain(cluster: Cluster):
    """Pod traffic to anything but pods is dropped before kube-proxy's or anyone's ACCEPT rules."""
    if cluster.kind != "local":
        pytest.skip("only the local cluster's network is known to this test")
    rules = [r for r in cluster.run("iptables", "-w", "-S", "FORWARD").stdout.splitlines() if r.startswith("-A")]
    assert rules[0] == '-A FORWARD -s 10.88.0.0/16 ! -d 10.88.0.0/16 -m comment --comment "kubectl-kubeless pod fence" -j DROP'
    assert all("DROP" in r and "pod fence" in r for r in rules[:3])


def test_deleting_the_owner_garbage_collects_its_dependents(cluster: Cluster, namespace: str):
    deploy_smoke(cluster, namespace)
    owned = cluster.get_json("replicasets", "-n", namespace, "-l", "app=smoke")["items"]
    assert owned and owned[0]["metadata"]["ownerReferences"][0]["kind"] == "Deployment"
    cluster.kubectl("delete", "deployment", "smoke", "-n", namespace, "--wait=false")
    wait_until("replica sets and pods of smoke to be collected",
               lambda: not cluster.get_json("replicasets,pods", "-n", namespace, "-l", "app=smoke")["items"],
               timeout=60)


def test_cronjob_started_now_completes(cluster: Cluster, namespace: str):
    cronjob = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "tick"},
               "spec": {"schedule": "0 0 1 1 *", "jobTemplate": {"spec": {"backoffLimit": 0, "template": {"spec": {
                   "restartPolicy": "Never", "automountServiceAccountToken": False,
                   "containers": [{"name": "tick", "image": "localhost/kubeless/provision:0.1.0",
                                   "imagePullPolicy": "Never", "command": ["/bin/sh", "-c", "echo tick"]}]}}}}}}
    cluster.apply(json.dumps(cronjob), namespace)
    cluster.kubectl("create", "job", "tick-now", "--from=cronjob/tick", "-n", namespace)
    wait_until("job tick-now to complete", lambda: any(
        c["type"] == "Complete" and c["status"] == "True"
        for c in cluster.get_json("job", "tick-now", "-n", namespace)["status"].get("conditions", [])), timeout=60)
    assert cluster.kubectl("logs", "job/tick-now", "-n", namespace).stdout.strip() == "tick"
