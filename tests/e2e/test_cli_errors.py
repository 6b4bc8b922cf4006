"""Bad input to `kubectl kubeless`, typed as a user types it: one clear line, a non-zero exit, nothing created.

Drives the built plugin (dist/kubectl-kubeless, found by kubectl on PATH) against a real API server with the CRDs
and the kubeless-config installed. The controller is not needed: nothing here should ever reach it.
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from conftest import REPO, Cluster

HELLO = "def hello(event, context):\n    return event['data']\n"


@pytest.fixture(scope="session")
def installed(cluster: Cluster) -> Cluster:
    """The CRDs and kubeless-config (the whole install manifest, applied idempotently; no wait for the controller)."""
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "manifests" / "kubeless.yaml"))
    cluster.kubectl("wait", "--for=condition=Established", "crd/functions.kubeless.io", "--timeout=60s")
    return cluster


@pytest.fixture(scope="session")
def kubeless_cli(installed: Cluster) -> Cluster:
    """dist/kubectl-kubeless, (re)built when its sources changed (the build script skips an up-to-date one)."""
    subprocess.run([str(REPO / "hack" / "build-plugin.sh")], check=True, stdout=subprocess.DEVNULL)
    return installed


@pytest.fixture
def hello(tmp_path: Path) -> str:
    path = tmp_path / "hello.py"
    path.write_text(HELLO)
    return str(path)


def kubeless(cluster: Cluster, *args: str) -> subprocess.CompletedProcess:
    return cluster.run("kubectl", "kubeless", *args, check=False)


def deploy_args(namespace: str, hello: str, name: str = "hello", **overrides: str) -> list[str]:
    flags = {"--runtime": "python3.11", "--handler": "hello.hello", "--from-file": hello, **overrides}
    args = ["function", "deploy", name, "-n", namespace]
    for flag, value in flags.items():
        args += [flag, value] if value is not None else []
    return args


def functions_in(cluster: Cluster, namespace: str) -> list[str]:
    return [f["metadata"]["name"] for f in cluster.get_json("functions", "-n", namespace)["items"]]


def assert_refused(result: subprocess.CompletedProcess, message: str, code: int = 1) -> None:
    assert result.returncode == code, result
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert message in lines[0], result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("overrides", "name", "message"), [
    ({}, "Hello_World", 'invalid function name \'Hello_World\': must be a DNS-1035 label'),
    ({"--from-file": "/nonexistent/hello.py"}, "hello", "--from-file /nonexistent/hello.py: No such file or directory"),
    ({"--runtime": "cobol85"}, "hello", "invalid runtime: cobol85. Supported runtimes are: python3.11"),
    ({"--handler": "hello"}, "hello", "invalid --handler 'hello': expected <module>.<function>"),
    ({"--env": "JUSTAKEY"}, "hello", "invalid --env 'JUSTAKEY': expected KEY=VALUE (or KEY:VALUE)"),
    ({"--port": "70000"}, "hello", "invalid --port 70000: must be between 1 and 65535"),
    ({"--port": "0"}, "hello", "invalid --port 0: must be between 1 and 65535"),
    ({"--servicePort": "65536"}, "hello", "invalid --servicePort 65536: must be between 0 and 65535"),
    ({"--schedule": "every day"}, "hello", "invalid --schedule 'every day'"),
    ({"--memory": "lots"}, "hello", "invalid --memory 'lots'"),
    ({"--handler": None}, "hello", "--handler is required with --runtime"),
])
def test_bad_deploy_input_creates_nothing(kubeless_cli: Cluster, namespace: str, hello: str, overrides, name,
                                          message):
    assert_refused(kubeless(kubeless_cli, *deploy_args(namespace, hello, name, **overrides)), message)
    assert functions_in(kubeless_cli, namespace) == []
    assert kubeless_cli.get_json("cronjobtriggers", "-n", namespace)["items"] == []


def test_code_over_the_configmap_limit_points_to_a_url(kubeless_cli: Cluster, namespace: str, tmp_path: Path):
    big = tmp_path / "big.py"
    big.write_text("#" * (1024 * 1024 + 1) + "\n")
    result = kubeless(kubeless_cli, *deploy_args(namespace, str(big)))
    assert_refused(result, "over the 1 MiB (1048576 bytes) a function's ConfigMap holds")
    assert "--from-file https://" in result.stderr
    assert functions_in(kubeless_cli, namespace) == []


def test_bad_update_input_changes_nothing(kubeless_cli: Cluster, namespace: str, hello: str):
    assert kubeless(kubeless_cli, *deploy_args(namespace, hello, **{"--timeout": "7"})).returncode == 0
    before = kubeless_cli.get_json("function", "hello", "-n", namespace)
    for args, message in [(["--port", "99999"], "invalid --port 99999"),
                          (["--runtime", "cobol85"], "invalid runtime: cobol85"),
                          (["--env", "NOPE"], "invalid --env"),
                          ([], "nothing to update")]:
        assert_refused(kubeless(kubeless_cli, "function", "update", "hello", "-n", namespace, *args), message)
    after = kubeless_cli.get_json("function", "hello", "-n", namespace)
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    assert_refused(kubeless(kubeless_cli, "function", "update", "nope", "-n", namespace, "--timeout", "9"),
                   f'function "nope" not found in namespace "{namespace}"')


def test_deploying_twice_points_to_update(kubeless_cli: Cluster, namespace: str, hello: str):
    assert kubeless(kubeless_cli, *deploy_args(namespace, hello)).returncode == 0
    again = kubeless(kubeless_cli, *deploy_args(namespace, hello, **{"--timeout": "9"}))
    assert again.returncode == 1
    assert f'error: function "hello" already exists in namespace "{namespace}"' in again.stderr
    assert "kubectl kubeless function update hello" in again.stderr
    assert functions_in(kubeless_cli, namespace) == ["hello"]
    assert kubeless_cli.get_json("function", "hello", "-n", namespace)["spec"]["timeout"] == "180"


def test_unknown_functions_are_named(kubeless_cli: Cluster, namespace: str):
    for verb in ("describe", "delete"):
        assert_refused(kubeless(kubeless_cli, "function", verb, "nope", "-n", namespace),
                       f'function "nope" not found in namespace "{namespace}"')
    assert_refused(kubeless(kubeless_cli, "function", "call", "nope", "-n", namespace),
                   'function "nope" has no service')
    assert_refused(kubeless(kubeless_cli, "function", "logs", "nope", "-n", namespace),
                   'function "nope" has no pod')


def test_bad_usage_exits_2_with_usage(kubeless_cli: Cluster, namespace: str):
    for args in (["function", "deploy"], ["function", "deploy", "x", "--no-such-flag"],
                 ["function", "ls", "-o", "table"], ["function", "frobnicate"]):
        result = kubeless(kubeless_cli, *args, "-n", namespace)
        assert result.returncode == 2, result
        assert "usage: kubectl kubeless" in result.stderr


def test_no_reachable_cluster_names_the_kubeconfig_and_the_server(kubeless_cli: Cluster, tmp_path: Path,
                                                                 hello: str):
    kubeconfig = tmp_path / "nowhere.kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "nowhere",
        "clusters": [{"name": "nowhere", "cluster": {"server": "https://127.0.0.1:1",
                                                     "insecure-skip-tls-verify": True}}],
        "users": [{"name": "nobody", "user": {"token": "x"}}],
        "contexts": [{"name": "nowhere", "context": {"cluster": "nowhere", "user": "nobody"}}]}))
    for args in (["function", "ls"], deploy_args("default", hello), ["get-server-config"]):
        result = kubeless(kubeless_cli, *args, "--kubeconfig", str(kubeconfig))
        assert_refused(result, "cannot reach the Kubernetes API server https://127.0.0.1:1")
        assert str(kubeconfig) in result.stderr and "Connection refused" in result.stderr
    missing = tmp_path / "missing.kubeconfig"
    assert_refused(kubeless(kubeless_cli, "function", "ls", "--kubeconfig", str(missing)),
                   f"kubeconfig {missing} does not exist")
    assert_refused(kubeless(kubeless_cli, "function", "ls", "--context", "no-such-context"),
                   'context "no-such-context" not found in kubeconfig')


def test_version_and_server_config(kubeless_cli: Cluster):
    version = kubeless(kubeless_cli, "version")
    assert version.returncode == 0
    assert version.stdout == f"kubectl-kubeless {(REPO / 'VERSION').read_text().strip()}\n"
    config = kubeless(kubeless_cli, "get-server-config")
    assert config.returncode == 0 and "python3.11" in config.stdout
