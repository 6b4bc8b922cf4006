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
    result = kubeless(plugin, "uninstall", "--dry-run")
    lines = result.stdout.splitlines()
    assert lines[-1] == "namespace/kubeless deleted (server dry run)"
    assert f"{CRD} deleted (server dry run)" in lines
    assert lines.index("deployment.apps/kubeless-controller-manager deleted (server dry run)") < lines.index(
        f"{CRD} deleted (server dry run)")
    assert "Would delete from" in result.stderr and "Functions" in result.stderr
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
