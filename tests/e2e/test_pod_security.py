"""Functions in a namespace that enforces Pod Security "restricted", and what the controller refuses to do for an
author: nothing through the controller that the author could not do alone."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from conftest import Cluster
from support import wait_until

FUNCTIONS = Path(__file__).parent / "functions"
RUNTIMES = [("python3.11", "contract.py", "contract.echo"), ("nodejs18", "contract.js", "contract.echo"),
            ("go1.26", "contract.go", "contract.Echo")]


@pytest.fixture(scope="module")
def restricted(plugin: Cluster):
    namespace = f"restricted-{int(time.time()) % 100000}"
    plugin.kubectl("create", "namespace", namespace)
    plugin.kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted",
                   "pod-security.kubernetes.io/warn=restricted")
    wait_until("the default service account", lambda: plugin.kubectl(
        "get", "serviceaccount", "default", "-n", namespace, check=False).returncode == 0, timeout=30)
    yield namespace
    plugin.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def test_python_node_and_go_functions_run_and_answer_under_restricted(plugin: Cluster, restricted: str):
    names = {}
    for runtime, source, handler in RUNTIMES:
        name = f"echo-{runtime.replace('.', '')}"
        names[runtime] = name
        plugin.run("kubectl", "kubeless", "function", "deploy", name, "-n", restricted, "--runtime", runtime,
                   "--from-file", str(FUNCTIONS / source), "--handler", handler)
    for runtime, name in names.items():  # a pod the namespace refuses never starts: Ready never comes
        plugin.kubectl("wait", "--for=condition=Ready", f"function/{name}", "-n", restricted, "--timeout=180s",
                       timeout=200)
        answer = plugin.run("kubectl", "kubeless", "function", "call", name, "-n", restricted, "--data",
                            f"hello {runtime}", timeout=60)
        assert answer.stdout.strip() == f"hello {runtime}"
    pods = plugin.get_json("pods", "-n", restricted, "-l", "created-by=kubeless")["items"]
    assert len(pods) == len(RUNTIMES)
    for pod in pods:
        assert pod["spec"]["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["spec"]["automountServiceAccountToken"] is False


def apply_function(plugin: Cluster, namespace: str, name: str, **spec) -> None:
    function = {"apiVersion": "kubeless.io/v1beta1", "kind": "Function",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {"handler": "contract.echo", "runtime": "python3.11", "function-content-type": "text",
                         "function": (FUNCTIONS / "contract.py").read_text(), **spec}}
    plugin.run("kubectl", "apply", "-f", "-", input=json.dumps(function))


def ready_condition(plugin: Cluster, namespace: str, name: str) -> dict:
    function = plugin.get_json("function", name, "-n", namespace)
    return next((c for c in (function.get("status") or {}).get("conditions") or [] if c["type"] == "Ready"), {})


@pytest.mark.parametrize("name, spec, field", [
    ("host-network", {"deployment": {"spec": {"template": {"spec": {"hostNetwork": True}}}}},
     "spec.deployment.spec.template.spec.hostNetwork"),
    ("node-port", {"service": {"type": "NodePort", "ports": [{"port": 8080}]}}, "spec.service.type"),
    ("wrong-type", {"deployment": {"spec": {"template": {"spec": {"containers": "x"}}}}},
     "spec.deployment.spec.template.spec.containers: must be a list, not a string"),
    ("ghost-account", {"deployment": {"spec": {"template": {"spec": {"serviceAccountName": "ghost"}}}}},
     "service account ghost does not exist"),
])
def test_what_an_author_may_not_have_is_invalid_spec_naming_the_field(plugin: Cluster, namespace: str, name: str,
                                                                     spec: dict, field: str):
    apply_function(plugin, namespace, name, **spec)
    wait_until(f"{name} is InvalidSpec", lambda: ready_condition(plugin, namespace, name).get("reason") ==
               "InvalidSpec", timeout=30)
    assert field in ready_condition(plugin, namespace, name)["message"]
    assert plugin.kubectl("get", "deployment", name, "-n", namespace, check=False).returncode != 0, \
        "nothing is created for a refused spec"
