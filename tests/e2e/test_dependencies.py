"""Dependencies install from a package index in the cluster, and are built once per (runtime, dependency file)."""
from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest

from conftest import Cluster
from package_index import serve_pypi
from support import wait_until

USES_GREETING = "import greeting\n\ndef hello(event, context):\n    return greeting.greet(event['data'])\n"


@contextlib.contextmanager
def kubeless_config(cluster: Cluster, **changes: str):
    """Change keys of kubeless-config for the duration of a test (the controller picks them up live)."""
    before = cluster.get_json("configmap", "kubeless-config", "-n", "kubeless")["data"]
    cluster.kubectl("patch", "configmap", "kubeless-config", "-n", "kubeless", "--type=merge",
                    "-p", json.dumps({"data": changes}))
    try:
        yield
    finally:
        cluster.kubectl("patch", "configmap", "kubeless-config", "-n", "kubeless", "--type=merge",
                        "-p", json.dumps({"data": {key: before.get(key, "") for key in changes}}))


@pytest.fixture
def pypi(plugin: Cluster, namespace: str):
    url = serve_pypi(plugin, namespace, f"localhost/kubeless/python:{Path('VERSION').read_text().strip()}"
                     if Path("VERSION").exists() else "localhost/kubeless/python:0.1.0")
    host = url.split("/")[2].split(":")[0]
    with kubeless_config(plugin, **{"install-env": json.dumps({"PIP_INDEX_URL": url, "PIP_TRUSTED_HOST": host})}):
        yield url


def init_log(cluster: Cluster, namespace: str, pod: str, container: str) -> str:
    return cluster.kubectl("logs", pod, "-c", container, "-n", namespace).stdout


def test_requirements_install_once_and_replicas_reuse_them(plugin: Cluster, namespace: str, pypi: str,
                                                           tmp_path: Path):
    (tmp_path / "hello.py").write_text(USES_GREETING)
    # the namespace in a comment makes this test's dependency file, and so its cache key, its own
    (tmp_path / "requirements.txt").write_text(f"# {namespace}\ngreeting==1.0.0\n")
    plugin.run("kubectl", "kubeless", "function", "deploy", "greeter", "-n", namespace, "--runtime", "python3.11",
               "--from-file", str(tmp_path / "hello.py"), "--handler", "hello.hello",
               "--dependencies", str(tmp_path / "requirements.txt"), "--wait", timeout=240)
    called = plugin.run("kubectl", "kubeless", "function", "call", "greeter", "-n", namespace, "--data", "world")
    assert called.stdout == "hello, world\n"
    (first,) = [p["metadata"]["name"] for p in plugin.get_json("pods", "-n", namespace, "-l", "function=greeter")["items"]]
    assert "building dependencies" in init_log(plugin, namespace, first, "deps-fetch")
    assert "Successfully installed greeting-1.0.0" in init_log(plugin, namespace, first, "install")
    assert "stored dependencies" in init_log(plugin, namespace, first, "deps-store")

    plugin.kubectl("scale", "deployment", "greeter", "-n", namespace, "--replicas=3")
    wait_until("3 ready replicas", lambda: plugin.get_json("deployment", "greeter", "-n", namespace)["status"].get(
        "readyReplicas") == 3, timeout=120)
    others = [p["metadata"]["name"] for p in plugin.get_json("pods", "-n", namespace, "-l", "function=greeter")["items"]
              if p["metadata"]["name"] != first]
    assert len(others) == 2
    for pod in others:
        assert "come from the cache" in init_log(plugin, namespace, pod, "deps-fetch")
        assert init_log(plugin, namespace, pod, "install") == ""  # pip never ran
    assert plugin.run("kubectl", "kubeless", "function", "call", "greeter", "-n", namespace,
                      "--data", "again").stdout == "hello, again\n"


def test_a_missing_package_fails_with_pips_message(plugin: Cluster, namespace: str, pypi: str, tmp_path: Path):
    (tmp_path / "hello.py").write_text(USES_GREETING)
    (tmp_path / "requirements.txt").write_text(f"# {namespace}\nno-such-package==9.9\n")
    deployed = plugin.run("kubectl", "kubeless", "function", "deploy", "missing", "-n", namespace, "--runtime",
                          "python3.11", "--from-file", str(tmp_path / "hello.py"), "--handler", "hello.hello",
                          "--dependencies", str(tmp_path / "requirements.txt"), "--wait", check=False, timeout=240)
    assert deployed.returncode == 1
    assert "InstallFailed" in deployed.stderr and "no-such-package" in deployed.stderr
