"""Shipping the plugin: the krew manifest in step with its generator, the release archive, the zipapp's finishing
and checks, the pins, and the kubeconfig credentials read without the `kubernetes` package. No build, no cluster
(tests/e2e/test_krew.py builds and installs for real)."""
from __future__ import annotations

import base64
import importlib.util
import json
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from scripts import REPO, load_script
import yaml

from kubeless_api import meta
from kubectl_kubeless import kube
from kubectl_kubeless.errors import UserError



release = load_script("release", REPO / "hack" / "release.py")
zipapp = load_script("zipapp", REPO / "hack" / "zipapp.py")
COMMITTED = (REPO / "krew-manifest.yaml").read_text()
MANIFEST = yaml.safe_load(COMMITTED)


# --- the krew manifest -----------------------------------------------------------------------------------------

def test_the_committed_krew_manifest_is_what_the_script_writes_for_this_version():
    """Same version, same text; its sha256 is the release archive's (checked against a real build in e2e)."""
    digest = MANIFEST["spec"]["platforms"][0]["sha256"]
    assert COMMITTED == release.manifest(meta.project_version(), digest), \
        "krew-manifest.yaml is out of date: run `make krew-manifest`"


def test_the_krew_manifest_is_a_valid_plugin():
    spec = MANIFEST["spec"]
    assert (MANIFEST["apiVersion"], MANIFEST["kind"], MANIFEST["metadata"]["name"]) == (
        "krew.googlecontainertools.github.com/v1alpha2", "Plugin", "kubeless")
    assert spec["version"] == f"v{meta.project_version()}"
    assert spec["shortDescription"] and "\n" not in spec["shortDescription"]
    assert spec["homepage"].startswith("https://")
    assert "kubectl kubeless install" in spec["caveats"] and "python3 (3.10 or later)" in spec["caveats"]
    platforms = {(p["selector"]["matchLabels"]["os"], p["selector"]["matchLabels"]["arch"]): p
                 for p in spec["platforms"]}
    assert set(platforms) == {("linux", "amd64"), ("linux", "arm64"), ("darwin", "amd64"), ("darwin", "arm64")}
    for platform in platforms.values():
        assert platform["uri"].endswith(f"/v{meta.project_version()}/kubectl-kubeless_{meta.project_version()}"
                                        "_any.tar.gz")
        assert len(platform["sha256"]) == 64 and int(platform["sha256"], 16) >= 0
        assert platform["bin"] == "kubectl-kubeless"
        assert {f["from"] for f in platform["files"]} == {"kubectl-kubeless", "kubectl_complete-kubeless", "LICENSE"}
        assert all(f["to"] == "." for f in platform["files"])


def test_the_caveats_completion_line_names_the_helper_krew_installs():
    line = next(line for line in MANIFEST["spec"]["caveats"].splitlines() if line.strip().startswith("ln "))
    assert "kubectl_complete-kubeless" in line and "${KREW_ROOT:-$HOME/.krew}/bin/" in line


# --- the release archive ---------------------------------------------------------------------------------------

@pytest.fixture
def fake_repo(tmp_path: Path, monkeypatch) -> Path:
    (tmp_path / "dist").mkdir()
    (tmp_path / "hack").mkdir()
    (tmp_path / "dist" / "kubectl-kubeless").write_bytes(b"#!/usr/bin/env python3\nzip")
    (tmp_path / "hack" / "kubectl_complete-kubeless").write_text("#!/bin/sh\n")
    (tmp_path / "LICENSE").write_text("Apache License\n")
    monkeypatch.setattr(release, "REPO", tmp_path)
    monkeypatch.setattr(release, "DIST", tmp_path / "dist")
    return tmp_path


def test_the_archive_holds_the_plugin_the_helper_and_the_license(fake_repo: Path):
    path = release.build_archive("1.2.3")
    assert path.name == "kubectl-kubeless_1.2.3_any.tar.gz"
    with tarfile.open(path) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert set(members) == {"kubectl-kubeless", "kubectl_complete-kubeless", "LICENSE"}
        assert members["kubectl-kubeless"].mode == members["kubectl_complete-kubeless"].mode == 0o755
        assert members["LICENSE"].mode == 0o644
        assert tar.extractfile("kubectl-kubeless").read() == b"#!/usr/bin/env python3\nzip"
    assert (fake_repo / "dist" / f"{path.name}.sha256").read_text() == f"{release.sha256(path)}  {path.name}\n"


def test_the_archive_is_reproducible(fake_repo: Path):
    first = release.build_archive("1.2.3").read_bytes()
    (fake_repo / "LICENSE").touch()  # a new date changes nothing
    assert release.build_archive("1.2.3").read_bytes() == first


def test_the_repository_has_the_license():
    assert "Apache License" in (REPO / "LICENSE").read_text() and "Version 2.0" in (REPO / "LICENSE").read_text()
    assert (REPO / "hack" / "kubectl_complete-kubeless").stat().st_mode & 0o111


# --- the zipapp ------------------------------------------------------------------------------------------------

def tiny_zipapp(path: Path, extra: dict[str, bytes] | None = None) -> Path:
    """A shiv-shaped archive: a shebang, then site-packages/, environment.json and a main."""
    with open(path, "wb") as raw:
        raw.write(b"#!/usr/bin/env python3\n")
        with zipfile.ZipFile(raw, "w") as archive:
            files = {"site-packages/kubectl_kubeless/__init__.py": b"ANSWER = 42\n",
                     "site-packages/other/__init__.py": b"X = 1\n",
                     "environment.json": json.dumps({"entry_point": "kubectl_kubeless.cli:main"}).encode(),
                     "__main__.py": b"print('main')\n", **(extra or {})}
            for name, data in files.items():
                archive.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)
    return path


def test_precompile_adds_hash_checked_bytecode_for_the_hot_packages(tmp_path: Path):
    path = tiny_zipapp(tmp_path / "app")
    zipapp.precompile(str(path))
    assert path.read_bytes().startswith(b"#!/usr/bin/env python3\n")
    cached = importlib.util.cache_from_source("site-packages/kubectl_kubeless/__init__.py")
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        assert cached in names and not any(n.startswith("site-packages/other/__pycache__") for n in names)
        archive.extractall(tmp_path / "out")
    # the interpreter takes it as it is: loading the module from the extracted folder uses the .pyc
    result = subprocess.run([sys.executable, "-v", "-c", "import kubectl_kubeless as k; print(k.ANSWER)"],
                            cwd=tmp_path / "out" / "site-packages", capture_output=True, text=True, check=True,
                            env={"PYTHONDONTWRITEBYTECODE": "1", "PATH": "/usr/bin:/bin"})
    assert result.stdout == "42\n"
    assert f"code object from '{tmp_path / 'out' / cached}'" in result.stderr
    again = tmp_path / "again"
    shutil.copy(tiny_zipapp(tmp_path / "app2"), again)
    zipapp.precompile(str(again))
    assert again.read_bytes() == path.read_bytes()  # reproducible


def test_check_refuses_compiled_extensions(tmp_path: Path):
    assert zipapp.check(str(tiny_zipapp(tmp_path / "pure"))) == 0
    native = tiny_zipapp(tmp_path / "native", {"site-packages/yaml/_yaml.cpython-311-x86_64-linux-gnu.so": b"\x7fELF"})
    assert zipapp.check(str(native)) == 1


def test_every_dependency_is_pinned():
    pins = [line for line in (REPO / "hack" / "plugin-requirements.txt").read_text().splitlines()
            if line and not line.startswith("#")]
    assert all("==" in line for line in pins)
    names = {line.split("==")[0].lower() for line in pins}
    assert {"kubernetes", "pyyaml", "urllib3"} <= names


# --- kubeconfig credentials without the `kubernetes` package ---------------------------------------------------

def target(tmp_path: Path, user: dict, cluster: dict | None = None) -> kube.Target:
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump({
        "current-context": "c", "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
        "clusters": [{"name": "k", "cluster": {"server": "https://127.0.0.1:1", **(cluster or {})}}],
        "users": [{"name": "u", "user": user}]}))
    return kube.resolve(kube.GlobalOptions(kubeconfig=str(path)), {})


def test_static_credentials_are_read_here_and_the_rest_goes_to_kubernetes(tmp_path: Path):
    assert kube.static_credentials(target(tmp_path, {"token": "t"}))
    assert kube.static_credentials(target(tmp_path, {"client-certificate": "a", "client-key": "b"}))
    assert not kube.static_credentials(target(tmp_path, {"exec": {"command": "aws"}}))
    assert not kube.static_credentials(target(tmp_path, {"auth-provider": {"name": "oidc"}}))
    assert not kube.static_credentials(target(tmp_path, {"token": "t"}, {"proxy-url": "http://p:3128"}))


def test_relative_paths_are_relative_to_the_kubeconfig(tmp_path: Path):
    found = target(tmp_path, {"client-certificate": "pki/admin.crt", "tokenFile": "/abs/token"},
                   {"certificate-authority": "ca.crt"})
    assert found.user_entry["client-certificate"] == str(tmp_path / "pki" / "admin.crt")
    assert found.user_entry["tokenFile"] == "/abs/token"
    assert found.cluster_entry["certificate-authority"] == str(tmp_path / "ca.crt")


def test_tokens_and_basic_auth(tmp_path: Path):
    assert kube.auth_headers({"token": "abc"}, "k") == {"Authorization": "Bearer abc"}
    (tmp_path / "token").write_text("from-file\n")
    assert kube.auth_headers({"tokenFile": str(tmp_path / "token")}, "k") == {"Authorization": "Bearer from-file"}
    assert kube.auth_headers({"username": "a", "password": "b"}, "k") == {
        "Authorization": "Basic " + base64.b64encode(b"a:b").decode()}
    assert kube.auth_headers({}, "k") == {}
    with pytest.raises(UserError, match="cannot read the tokenFile of k"):
        kube.auth_headers({"tokenFile": str(tmp_path / "missing")}, "k")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[bytes, bytes]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    folder = tmp_path_factory.mktemp("pki")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=test", "-days", "1",
                    "-keyout", str(folder / "key.pem"), "-out", str(folder / "cert.pem")],
                   check=True, capture_output=True)
    return (folder / "cert.pem").read_bytes(), (folder / "key.pem").read_bytes()


def test_inline_certificates_and_keys(certificate):
    cert, key = certificate
    data = {"client-certificate-data": base64.b64encode(cert).decode(),
            "client-key-data": base64.b64encode(key).decode()}
    context = kube.tls_context({"certificate-authority-data": base64.b64encode(cert).decode()}, data, False)
    assert context.check_hostname and len(context.get_ca_certs()) == 1
    insecure = kube.tls_context({}, {}, True)
    assert not insecure.check_hostname


def test_connecting_with_static_credentials_does_not_import_kubernetes(tmp_path: Path):
    found = target(tmp_path, {"token": "t"}, {"insecure-skip-tls-verify": True})
    probe = ("import sys, json; from kubectl_kubeless import kube; "
             f"t = kube.resolve(kube.GlobalOptions(kubeconfig={str(tmp_path / 'config')!r}), {{}}); "
             "c = kube.Client(t); c._connect(); "
             "print(json.dumps([c._headers({})['Authorization'], 'kubernetes' in sys.modules]))")
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True)
    assert json.loads(result.stdout) == ["Bearer t", False]
    assert found.server == "https://127.0.0.1:1"
