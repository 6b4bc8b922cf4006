"""The walkthrough's own Go function, deployed and called exactly as written there (go1.14 there, go1.26 here)."""
from __future__ import annotations

from pathlib import Path

from conftest import Cluster

FUNCTIONS = Path(__file__).parent / "functions"


def test_the_seed_go_function_answers_hello_world(plugin: Cluster, namespace: str):
    seed = FUNCTIONS / "seed-go"
    plugin.run("kubectl", "kubeless", "function", "deploy", "hello-go", "-n", namespace, "--runtime", "go1.26",
               "--handler", "hello.Hello", "--from-file", str(seed / "hello.go"),
               "--dependencies", str(seed / "go.mod"), "--wait", timeout=300)
    init = [c["name"] for c in plugin.get_json("deployment", "hello-go", "-n", namespace)[
        "spec"]["template"]["spec"]["initContainers"]]
    assert init == ["prepare", "compile"]
    assert plugin.run("kubectl", "kubeless", "function", "call", "hello-go", "-n", namespace).stdout == "hello world!\n"
    assert "hello-go" in plugin.kubectl("get", "function.kubeless.io", "-n", namespace).stdout


def test_a_compile_error_shows_the_compilers_message(plugin: Cluster, namespace: str):
    deployed = plugin.run("kubectl", "kubeless", "function", "deploy", "broken-go", "-n", namespace, "--runtime",
                          "go1.26", "--handler", "hello.Hello", "--from-file",
                          str(FUNCTIONS / "go-broken" / "hello.go"), "--wait", check=False, timeout=300)
    assert deployed.returncode == 1
    assert "CompileFailed" in deployed.stderr
    ready = next(c for c in plugin.get_json("function", "broken-go", "-n", namespace)["status"]["conditions"]
                 if c["type"] == "Ready")
    assert ready["reason"] == "CompileFailed"
    assert "cannot use 42" in ready["message"]
    row = next(line for line in plugin.run("kubectl", "kubeless", "function", "ls", "-n", namespace).stdout.splitlines()
               if line.startswith("broken-go"))
    assert "CompileFailed" in row
