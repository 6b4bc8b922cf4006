"""The user's story of issue 3, driven exactly as a user types it: `kubectl kubeless function ...`."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import Cluster
from support import wait_until


@pytest.fixture
def source(tmp_path: Path):
    """Write a function file and return its path."""
    def write(name: str, text: str) -> str:
        path = tmp_path / name
        path.write_text(text)
        return str(path)
    return write


def kubeless(cluster: Cluster, namespace: str, *args: str, check: bool = True, timeout: float = 180):
    return cluster.run("kubectl", "kubeless", *args, "-n", namespace, check=check, timeout=timeout)


HELLO = "def hello(event, context):\n    print(event)\n    return event['data']\n"


def test_deploy_ls_call_logs_delete(plugin: Cluster, namespace: str, source):
    hello = source("hello.py", HELLO)
    kubeless(plugin, namespace, "function", "deploy", "hello-py", "--runtime", "python3.11",
             "--from-file", hello, "--handler", "hello.hello", "--wait")
    listing = kubeless(plugin, namespace, "function", "ls").stdout
    row = next(line for line in listing.splitlines() if line.startswith("hello-py"))
    assert "python3.11" in row and "1/1 READY" in row

    called = kubeless(plugin, namespace, "function", "call", "hello-py", "--data", "hello, world!")
    assert called.stdout == "hello, world!\n"
    as_json = kubeless(plugin, namespace, "function", "call", "hello-py", "--data", '{"answer": 42}')
    assert json.loads(as_json.stdout) == {"answer": 42}

    logs = wait_until("the event in the function's logs",
                      lambda: "hello, world!" in (out := kubeless(plugin, namespace, "function", "logs",
                                                                  "hello-py").stdout) and out)
    assert "cli.kubeless.io" in logs  # the event-namespace the CLI sets

    function = plugin.get_json("function", "hello-py", "-n", namespace)
    ready = next(c for c in function["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True" and function["status"]["readyReplicas"] == 1
    owned = plugin.get_json("configmap,service,deployment", "-n", namespace, "-l", "function=hello-py")["items"]
    assert sorted(o["kind"] for o in owned) == ["ConfigMap", "Deployment", "Service"]
    assert all(o["metadata"]["ownerReferences"][0]["uid"] == function["metadata"]["uid"] for o in owned)

    kubeless(plugin, namespace, "function", "delete", "hello-py")
    wait_until("the function's objects to be collected", lambda: not plugin.get_json(
        "configmap,service,deployment", "-n", namespace, "-l", "function=hello-py")["items"])


def test_kubectl_wait_and_get_work_on_functions(plugin: Cluster, namespace: str, source):
    kubeless(plugin, namespace, "function", "deploy", "waited", "--runtime", "python3.11",
             "--from-file", source("hello.py", HELLO), "--handler", "hello.hello")
    plugin.kubectl("wait", "--for=condition=Ready", "function/waited", "-n", namespace, "--timeout=120s",
                   timeout=150)
    table = plugin.kubectl("get", "functions", "-n", namespace).stdout
    assert "python3.11" in table and "hello.hello" in table and "True" in table


def test_a_function_that_throws_fails_the_call_with_its_500(plugin: Cluster, namespace: str, source):
    boom = source("boom.py", "def boom(event, context):\n    raise ValueError('no good')\n")
    kubeless(plugin, namespace, "function", "deploy", "boom", "--runtime", "python3.11", "--from-file", boom,
             "--handler", "boom.boom", "--wait")
    called = kubeless(plugin, namespace, "function", "call", "boom", check=False)
    assert called.returncode == 1
    assert "500" in called.stderr and "ValueError: no good" in called.stderr
    again = kubeless(plugin, namespace, "function", "call", "boom", check=False)
    assert again.returncode == 1 and "ValueError: no good" in again.stderr  # the server kept serving


def test_a_function_past_its_timeout_gets_408(plugin: Cluster, namespace: str, source):
    slow = source("slow.py", "import time\n\ndef slow(event, context):\n    time.sleep(30)\n    return 'late'\n")
    kubeless(plugin, namespace, "function", "deploy", "slow", "--runtime", "python3.11", "--from-file", slow,
             "--handler", "slow.slow", "--timeout", "2", "--wait")
    called = kubeless(plugin, namespace, "function", "call", "slow", check=False)
    assert called.returncode == 1
    assert "408" in called.stderr and "timed out" in called.stderr


def test_an_import_error_shows_in_status_and_fails_deploy_wait(plugin: Cluster, namespace: str, source):
    broken = source("broken.py", "import no_such_module_xyz\n\ndef hello(event, context):\n    return 'x'\n")
    deployed = kubeless(plugin, namespace, "function", "deploy", "broken", "--runtime", "python3.11",
                        "--from-file", broken, "--handler", "broken.hello", "--wait", check=False)
    assert deployed.returncode == 1
    assert "no_such_module_xyz" in deployed.stderr
    function = plugin.get_json("function", "broken", "-n", namespace)
    ready = next(c for c in function["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False" and ready["reason"] == "FunctionCrashed"
    assert "No module named 'no_such_module_xyz'" in ready["message"]
    row = next(line for line in kubeless(plugin, namespace, "function", "ls").stdout.splitlines()
               if line.startswith("broken"))
    assert "NOT READY" in row


def test_update_changes_only_what_was_given(plugin: Cluster, namespace: str, source):
    kubeless(plugin, namespace, "function", "deploy", "kept", "--runtime", "python3.11",
             "--from-file", source("hello.py", HELLO), "--handler", "hello.hello", "--timeout", "7",
             "--image-pull-policy", "Never", "--wait")
    kubeless(plugin, namespace, "function", "update", "kept", "--env", "GREETING=hi", "--wait")
    spec = plugin.get_json("function", "kept", "-n", namespace)["spec"]
    container = spec["deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert spec["timeout"] == "7"
    assert container["imagePullPolicy"] == "Never"
    assert {"name": "GREETING", "value": "hi"} in container["env"]
    assert kubeless(plugin, namespace, "function", "call", "kept", "--data", "still here").stdout == "still here\n"


def test_dry_run_prints_the_manifest_and_creates_nothing(plugin: Cluster, namespace: str, source):
    printed = kubeless(plugin, namespace, "function", "deploy", "dry", "--runtime", "python3.11",
                       "--from-file", source("hello.py", HELLO), "--handler", "hello.hello", "--dryrun",
                       "-o", "json")
    manifest = json.loads(printed.stdout)
    assert manifest["kind"] == "Function" and manifest["spec"]["handler"] == "hello.hello"
    assert manifest["spec"]["checksum"].startswith("sha256:")
    assert plugin.get_json("functions", "-n", namespace)["items"] == []
