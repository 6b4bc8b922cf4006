"""The `cluster` fixture: which real cluster the end-to-end tests talk to.

In order of preference:
1. the cluster named by KUBELESS_TEST_KUBECONFIG (any conformant cluster; the project's images must be loadable or
   already present there);
2. kind, through pytest-kind, when `kind` and a Docker engine are on the machine;
3. the project's own local cluster (hack/localcluster), brought up for the session and stopped after it if this
   session started it.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LOCAL_CLUSTER = [sys.executable, str(REPO / "hack" / "localcluster" / "cluster.py")]


@dataclass
class Cluster:
    kubeconfig: Path
    kind: str
    env: dict[str, str] = field(default_factory=dict)

    def run(self, *args: str, input: str | None = None, check: bool = True,
            timeout: float = 120) -> subprocess.CompletedProcess:
        """Run a command the way a user would, with this cluster's KUBECONFIG and tools on PATH."""
        result = subprocess.run(list(args), input=input, capture_output=True, text=True, env=self.env,
                                timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
        return result

    def kubectl(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        return self.run("kubectl", *args, **kwargs)

    def get_json(self, *args: str) -> dict:
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)

    def apply(self, manifest: str, namespace: str) -> None:
        self.kubectl("apply", "-n", namespace, "-f", "-", input=manifest)


def docker_engine_running() -> bool:
    return shutil.which("docker") is not None and subprocess.run(
        ["docker", "info"], capture_output=True).returncode == 0


def environment_with(kubeconfig: Path, extra_path: list[str]) -> dict[str, str]:
    env = dict(os.environ, KUBECONFIG=str(kubeconfig))
    env["PATH"] = os.pathsep.join([str(REPO / "dist"), *extra_path, env["PATH"]])
    return env


@pytest.fixture(scope="session")
def cluster(request: pytest.FixtureRequest) -> Cluster:
    named = os.environ.get("KUBELESS_TEST_KUBECONFIG")
    if named:
        yield Cluster(Path(named), "named", environment_with(Path(named), []))
        return
    if shutil.which("kind") and docker_engine_running():
        from pytest_kind import KindCluster  # noqa: PLC0415 - only users with kind have it in use

        kind = KindCluster("kubectl-kubeless-e2e")
        kind.create()
        images = subprocess.run([sys.executable, str(REPO / "hack" / "images" / "build.py"), "--print-archives",
                                 "--all"],
                                check=True, capture_output=True, text=True).stdout.split()
        for archive in images:
            subprocess.run([str(kind.kind_path), "load", "image-archive", archive, "--name", kind.name], check=True)
        yield Cluster(kind.kubeconfig_path, "kind", environment_with(kind.kubeconfig_path, []))
        kind.delete()
        return
    already_up = subprocess.run([*LOCAL_CLUSTER, "status"], capture_output=True).returncode == 0
    if not already_up:
        subprocess.run([*LOCAL_CLUSTER, "up"], check=True)
    kubeconfig = Path(subprocess.run([*LOCAL_CLUSTER, "kubeconfig"], check=True, capture_output=True,
                                     text=True).stdout.strip())
    bins = subprocess.run([*LOCAL_CLUSTER, "bins"], check=True, capture_output=True, text=True).stdout.split()
    yield Cluster(kubeconfig, "local", environment_with(kubeconfig, bins))
    if not already_up and not os.environ.get("KUBELESS_KEEP_CLUSTER"):
        subprocess.run([*LOCAL_CLUSTER, "down"], check=True)


@pytest.fixture
def namespace(cluster: Cluster) -> str:
    """A fresh namespace per test, deleted afterwards (without waiting: the garbage collector finishes the job)."""
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", name)
    # The ServiceAccount controller creates "default" shortly after the namespace; pods need it.
    deadline = time.monotonic() + 30
    while cluster.kubectl("get", "serviceaccount", "default", "-n", name, check=False).returncode != 0:
        assert time.monotonic() < deadline, f"namespace {name} never got its default service account"
        time.sleep(0.2)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="session")
def installed(cluster: Cluster) -> Cluster:
    """The product's server side (CRDs, RBAC, controller, kubeless-config), installed and running."""
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "manifests" / "kubeless.yaml"))
    for deployment in ("kubeless-controller-manager", "kubeless-deps-cache"):
        cluster.kubectl("-n", "kubeless", "rollout", "status", f"deployment/{deployment}", "--timeout=120s",
                        timeout=150)
    return cluster


@pytest.fixture(scope="session")
def plugin(installed: Cluster) -> Cluster:
    """The plugin as users run it: the built zipapp, found by kubectl on PATH as `kubectl kubeless`."""
    subprocess.run([str(REPO / "hack" / "build-plugin.sh")], check=True, stdout=subprocess.DEVNULL)
    return installed
