"""`kubectl kubeless install` and `uninstall` through kubectl and the built plugin, on the real cluster.

The cluster is shared with the other tests (and sessions), so the real uninstall only runs when asked
(KUBELESS_E2E_UNINSTALL=1, on a cluster of your own): the others exercise every request of it as a server dry run,
which the API server checks (authorization, existence) without deleting anything.
"""
from __future__ import annotations

import json
import os
import pty
import subprocess

import pytest
import yaml

from conftest import REPO, Cluster
from support import wait_until

CRD = "customresourcedefinition.apiextensions.k8s.io/functions.kubeless.io"


def kubeless(cluster: Cluster, *args: str, **kwargs):
    return cluster.kubectl("kubeless", *args, input="", **kwargs)  # stdin: a pipe, never the terminal


def managers(cluster: Cluster, *resource: str) -> set[str]:
    obj = cluster.get_json(*resource, "--show-managed-fields")
    return {entry["manager"] for entry in obj["metadata"].get("managedFields") or [] if entry["operation"] == "Apply"}


def test_install_dry_run_prints_the_manifest(plugin: Cluster):
    printed = [d for d in yaml.safe_load_all(kubeless(plugin, "install", "--dry-run", "-o", "yaml").stdout) if d]
    shipped = [d for d in yaml.safe_load_all((REPO / "manifests" / "kubeless.yaml").read_text()) if d]
    assert printed == shipped
    as_json = json.loads(kubeless(plugin, "install", "--dry-run", "-o", "json").stdout)
    assert as_json["items"] == shipped


def test_install_applies_server_side_and_waits_for_the_controller(plugin: Cluster):
    result = kubeless(plugin, "install", "--wait", timeout=200)
    assert f"{CRD} serverside-applied" in result.stdout
    assert "deployment.apps/kubeless-controller-manager serverside-applied" in result.stdout
    assert 'deployment "kubeless-controller-manager" successfully rolled out' in result.stderr
    assert "kubectl-kubeless" in managers(plugin, "crd", "functions.kubeless.io")
    assert "kubectl-kubeless" in managers(plugin, "-n", "kubeless", "deployment", "kubeless-controller-manager")
    again = kubeless(plugin, "install", timeout=200)  # idempotent
    assert again.returncode == 0


def test_uninstall_dry_run_is_checked_by_the_server_and_deletes_nothing(plugin: Cluster):
    listed = plugin.get_json("functions.kubeless.io", "-A")["items"]
    functions, namespaces = len(listed), len({f["metadata"]["namespace"] for f in listed})
    result = kubeless(plugin, "uninstall", "--dry-run")
    lines = result.stdout.splitlines()
    assert lines[-1] == "namespace/kubeless deleted (server dry run)"
    assert f"{CRD} deleted (server dry run)" in lines
    assert lines.index("deployment.apps/kubeless-controller-manager deleted (server dry run)") < lines.index(
        f"{CRD} deleted (server dry run)")
    # Earlier tests leave any number of Functions behind, so the count is read rather than assumed.
    counted = (f"{functions} Function{'s' if functions != 1 else ''}"
               + (f" in {namespaces} namespace{'s' if namespaces != 1 else ''}" if functions else ""))
    assert "Would delete from" in result.stderr and f"  - {counted} (with their" in result.stderr
    assert plugin.kubectl("get", "crd", "functions.kubeless.io").returncode == 0
    assert plugin.kubectl("get", "namespace", "kubeless").returncode == 0


def test_uninstall_without_a_terminal_refuses(plugin: Cluster):
    result = kubeless(plugin, "uninstall", check=False)
    assert result.returncode == 1
    assert "stdin is not a terminal to confirm it: pass --yes" in result.stderr
    assert plugin.kubectl("get", "crd", "functions.kubeless.io").returncode == 0


def test_uninstall_asks_on_a_terminal_and_a_no_keeps_everything(plugin: Cluster):
    controller, terminal = pty.openpty()
    process = subprocess.Popen(["kubectl", "kubeless", "uninstall"], stdin=terminal, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=plugin.env, text=True)
    os.close(terminal)
    try:
        os.write(controller, b"n\n")
        out, err = process.communicate(timeout=60)
    finally:
        os.close(controller)
    assert process.returncode == 1, err
    assert "This deletes Kubeless from https://" in err and "Delete them? [y/N]" in err
    assert "Nothing deleted." in err and out == ""
    assert plugin.kubectl("get", "crd", "functions.kubeless.io").returncode == 0


@pytest.mark.skipif(not os.environ.get("KUBELESS_E2E_UNINSTALL"),
                    reason="deletes every function of the cluster: set KUBELESS_E2E_UNINSTALL=1 on a cluster of "
                           "your own")
def test_uninstall_removes_everything_and_install_brings_it_back(plugin: Cluster):
    result = kubeless(plugin, "uninstall", "--yes", "--wait", timeout=300)
    assert "namespace/kubeless deleted" in result.stdout
    for resource in (["crd", "functions.kubeless.io"], ["namespace", "kubeless"],
                     ["clusterrole", "kubeless-controller-deployer"]):
        assert plugin.kubectl("get", *resource, check=False).returncode != 0, resource
    wait_until("the namespace kubeless to be gone",
               lambda: plugin.kubectl("get", "namespace", "kubeless", check=False).returncode != 0)
    kubeless(plugin, "install", "--wait", timeout=300)
    assert plugin.kubectl("get", "crd", "functions.kubeless.io").returncode == 0


CONTROLLER = "system:serviceaccount:kubeless:controller-acct"
DEPS_CACHE = "system:serviceaccount:kubeless:kubeless-deps-cache"


@pytest.mark.parametrize("who, verb, resource, namespace, allowed", [
    (CONTROLLER, "patch", "deployments.apps", "default", True),
    (CONTROLLER, "watch", "pods", "default", True),
    (CONTROLLER, "delete", "horizontalpodautoscalers.autoscaling", "default", True),
    (CONTROLLER, "patch", "functions.kubeless.io/status", "default", True),
    (CONTROLLER, "update", "leases.coordination.k8s.io", "kubeless", True),
    (CONTROLLER, "delete", "deployments.apps", "default", False),  # the garbage collector's job
    (CONTROLLER, "delete", "configmaps", "default", False),
    (CONTROLLER, "get", "pods", "default", False),
    (CONTROLLER, "get", "secrets", "default", False),
    (CONTROLLER, "patch", "cronjobs.batch", "default", True),
    (CONTROLLER, "delete", "cronjobs.batch", "default", False),  # the garbage collector's job
    (CONTROLLER, "delete", "jobs.batch", "default", False),
    (CONTROLLER, "patch", "ingresses.networking.k8s.io", "default", True),
    (CONTROLLER, "delete", "ingresses.networking.k8s.io", "default", True),  # pruned when the gateway changes
    (CONTROLLER, "patch", "httproutes.gateway.networking.k8s.io", "default", True),
    (CONTROLLER, "patch", "gateways.gateway.networking.k8s.io", "default", False),
    (CONTROLLER, "patch", "middlewares.traefik.io", "default", True),
    (CONTROLLER, "list", "middlewares.traefik.io", "default", False),
    (CONTROLLER, "patch", "httptriggers.kubeless.io/status", "default", True),
    (CONTROLLER, "update", "cronjobtriggers.kubeless.io", "default", False),
    (CONTROLLER, "delete", "httptriggers.kubeless.io", "default", False),
    (CONTROLLER, "update", "functions.kubeless.io", "default", False),
    (CONTROLLER, "update", "leases.coordination.k8s.io", "default", False),
    (CONTROLLER, "get", "nodes", "", False),
    (CONTROLLER, "create", "tokenreviews.authentication.k8s.io", "", False),
    (DEPS_CACHE, "create", "tokenreviews.authentication.k8s.io", "", True),
    (DEPS_CACHE, "get", "secrets", "kubeless", False),
    (DEPS_CACHE, "list", "pods", "kubeless", False),
])
def test_the_server_side_may_do_what_its_code_does_and_nothing_else(installed: Cluster, who: str, verb: str,
                                                                   resource: str, namespace: str, allowed: bool):
    resource, _, subresource = resource.partition("/")
    result = installed.kubectl("auth", "can-i", verb, resource, "--as", who,
                               *(["--subresource", subresource] if subresource else []),
                               *(["-n", namespace] if namespace else []), check=False)
    assert result.stdout.strip() == ("yes" if allowed else "no"), (who, verb, resource, result.stderr)
