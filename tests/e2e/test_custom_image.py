"""--runtime-image: a user-built image that speaks the runtime contract runs as is, with no init containers."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, Cluster

RECIPE = """name = "custom-hello"
from = "python"
files = [ { src = "hello.py", dst = "/kubeless/hello.py", mode = "0644" } ]
"""


@pytest.fixture
def custom_image(plugin: Cluster, tmp_path: Path) -> str:
    """Build an image with the project's own builder and import it (the local cluster's containerd)."""
    if plugin.kind != "local":
        pytest.skip("importing a freshly built image is only wired for the local cluster")
    (tmp_path / "image.toml").write_text(RECIPE)
    (tmp_path / "hello.py").write_text("def hello(event, context):\n    return 'custom ' + event['data']\n")
    state = Path(os.environ.get("KUBELESS_CLUSTER_STATE", REPO / ".cluster"))
    ctr = next(Path(d) / "ctr" for d in plugin.env["PATH"].split(os.pathsep) if (Path(d) / "ctr").exists())
    subprocess.run([sys.executable, str(REPO / "hack" / "images" / "build.py"), "--import", "--address",
                    str(state / "containerd" / "containerd.sock"), "--ctr", str(ctr), "--tag", "e2e",
                    str(REPO / "hack" / "images" / "base"), str(REPO / "runtimes" / "python"), str(tmp_path)],
                   check=True, capture_output=True)
    return "localhost/kubeless/custom-hello:e2e"


def test_a_custom_image_runs_without_init_containers(plugin: Cluster, namespace: str, custom_image: str):
    plugin.run("kubectl", "kubeless", "function", "deploy", "custom", "-n", namespace, "--runtime-image",
               custom_image, "--handler", "hello.hello", "--wait", timeout=180)
    pod_spec = plugin.get_json("deployment", "custom", "-n", namespace)["spec"]["template"]["spec"]
    assert "initContainers" not in pod_spec
    assert pod_spec["containers"][0]["image"] == custom_image
    called = plugin.run("kubectl", "kubeless", "function", "call", "custom", "-n", namespace, "--data", "image")
    assert called.stdout == "custom image\n"
