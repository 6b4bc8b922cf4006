"""The plugin as users get it: the release archive installed by a real krew (built from the Go module proxy by
hack/build-krew.sh), then run by kubectl against the cluster, completed by kubectl, and uninstalled.

krew never reaches the network here: it installs from --manifest and --archive (and then checks the archive's
sha256 against the manifest), KREW_ROOT is a fresh folder whose plugin index is an empty local git repository
(`krew uninstall` insists on one), and the upgrade check is off (KREW_NO_UPGRADE_CHECK; the binary is also a
development build, which never checks).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from conftest import REPO, Cluster

VERSION = (REPO / "VERSION").read_text().strip()
ARCHIVE = REPO / "dist" / f"kubectl-kubeless_{VERSION}_any.tar.gz"


@pytest.fixture(scope="session")
def krew_bin() -> Path:
    """The folder holding `krew` and `kubectl-krew`, built once and cached."""
    return Path(subprocess.run([str(REPO / "hack" / "build-krew.sh")], check=True, capture_output=True,
                               text=True).stdout.strip())


@pytest.fixture(scope="session")
def release(plugin: Cluster, tmp_path_factory) -> Path:
    """The release archive of the current sources, and a krew manifest generated for it (in a temporary folder:
    the committed one is checked against it below, not overwritten)."""
    subprocess.run([sys.executable, str(REPO / "hack" / "release.py"), "archive"], check=True, capture_output=True)
    manifest = tmp_path_factory.mktemp("release") / "kubeless.yaml"
    subprocess.run([sys.executable, str(REPO / "hack" / "release.py"), "krew-manifest", "--archive", str(ARCHIVE),
                    "--output", str(manifest)], check=True, capture_output=True)
    return manifest


class Krew:
    """A user's shell with krew: KREW_ROOT/bin and kubectl-krew on PATH, and not the repository's dist/."""

    def __init__(self, cluster: Cluster, krew_bin: Path, root: Path):
        self.root = root
        (root / "index" / "default").mkdir(parents=True)
        if shutil.which("git"):
            subprocess.run(["git", "init", "-q", str(root / "index" / "default")], check=True)
        else:
            (root / "index" / "default" / ".git").mkdir()
        path = [p for p in cluster.env["PATH"].split(os.pathsep) if Path(p).resolve() != (REPO / "dist").resolve()]
        self.env = {**cluster.env, "KREW_ROOT": str(root), "KREW_NO_UPGRADE_CHECK": "1",
                    "PATH": os.pathsep.join([str(root / "bin"), str(krew_bin), *path])}

    def run(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        result = subprocess.run(list(args), capture_output=True, text=True, env=self.env, timeout=timeout,
                                stdin=subprocess.DEVNULL)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
        return result

    def kubectl(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        return self.run("kubectl", *args, **kwargs)


@pytest.fixture
def pkg_namespace(plugin: Cluster) -> str:
    name = f"pkg-{uuid.uuid4().hex[:8]}"
    plugin.kubectl("create", "namespace", name)
    yield name
    plugin.kubectl("delete", "namespace", name, "--wait=false", check=False)


def create_functions(cluster: Cluster, namespace: str, names: list[str]) -> None:
    """Function objects written directly: a runtime the catalogue does not have, so the controller only marks them
    InvalidSpec and starts no pod."""
    items = [{"apiVersion": "kubeless.io/v1beta1", "kind": "Function",
              "metadata": {"name": name, "namespace": namespace},
              "spec": {"handler": "hello.handler", "runtime": "nosuchruntime0.0", "function": "x"}} for name in names]
    cluster.kubectl("create", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))


def test_krew_installs_runs_completes_and_uninstalls_the_plugin(plugin: Cluster, krew_bin: Path, release: Path,
                                                                 pkg_namespace: str, tmp_path: Path):
    krew = Krew(plugin, krew_bin, tmp_path / "krew")
    assert krew.kubectl("kubeless", "version", check=False).returncode != 0  # not installed yet

    installed = krew.kubectl("krew", "install", f"--manifest={release}", f"--archive={ARCHIVE}")
    output = installed.stdout + installed.stderr
    assert "Installed plugin: kubeless" in output
    assert "kubectl kubeless install" in output  # the caveats
    assert (tmp_path / "krew" / "store" / "kubeless" / f"v{VERSION}" / "kubectl_complete-kubeless").is_file()

    plugins = krew.kubectl("plugin", "list", check=False).stdout
    assert str(tmp_path / "krew" / "bin" / "kubectl-kubeless") in plugins
    assert krew.kubectl("kubeless", "version").stdout == f"kubectl-kubeless {VERSION}\n"

    create_functions(plugin, pkg_namespace, ["hello", "world"])
    listed = krew.kubectl("kubeless", "function", "ls", "-n", pkg_namespace).stdout
    assert re.findall(r"^(\S+)\s", listed, re.M) == ["NAME", "hello", "world"]

    # completion, as the caveats say to enable it, then through kubectl as a shell asks it
    caveats = yaml.safe_load(release.read_text())["spec"]["caveats"]
    link = next(line.strip() for line in caveats.splitlines() if line.strip().startswith("ln "))
    krew.run("sh", "-c", link)
    completed = krew.kubectl("__complete", "kubeless", "-n", pkg_namespace, "function", "call", "").stdout
    assert completed.splitlines() == ["hello", "world", ":4"]
    verbs = krew.kubectl("__complete", "kubeless", "function", "de").stdout
    assert [line.split("\t")[0] for line in verbs.splitlines()] == ["deploy", "delete", "describe", ":4"]

    krew.kubectl("krew", "uninstall", "kubeless")
    assert not (tmp_path / "krew" / "store" / "kubeless").exists()
    assert str(tmp_path / "krew" / "bin" / "kubectl-kubeless") not in krew.kubectl("plugin", "list", check=False).stdout
    assert krew.kubectl("kubeless", "version", check=False).returncode != 0


def test_krew_refuses_an_archive_whose_sha256_differs(plugin: Cluster, krew_bin: Path, release: Path,
                                                      tmp_path: Path):
    tampered = tmp_path / ARCHIVE.name
    tampered.write_bytes(ARCHIVE.read_bytes() + b"\0")
    krew = Krew(plugin, krew_bin, tmp_path / "krew")
    result = krew.kubectl("krew", "install", f"--manifest={release}", f"--archive={tampered}", check=False)
    assert result.returncode != 0
    assert "checksum does not match" in result.stderr
    assert not (tmp_path / "krew" / "bin" / "kubectl-kubeless").exists()


def test_the_committed_krew_manifest_is_for_this_build(release: Path):
    """krew-manifest.yaml is the generated one, with the sha256 of the archive these sources build (the build is
    reproducible). After a change to the plugin, its pins or VERSION, `make krew-manifest` updates it."""
    built = yaml.safe_load(release.read_text())
    committed = yaml.safe_load((REPO / "krew-manifest.yaml").read_text())
    assert committed == built, "krew-manifest.yaml is not the one of this build: run `make krew-manifest`"
