"""Every source form of a function: text, binary, archives and URLs, each verified by its sha256 in `prepare`."""
from __future__ import annotations

import functools
import http.server
import io
import tarfile
import threading
import zipfile
from pathlib import Path

import pytest

from conftest import Cluster

HELLO = "def hello(event, context):\n    return 'hello from ' + event['data']\n"


def deploy_and_call(cluster: Cluster, namespace: str, name: str, source: str, *extra: str, check: bool = True):
    deployed = cluster.run("kubectl", "kubeless", "function", "deploy", name, "-n", namespace, "--runtime",
                           "python3.11", "--from-file", source, "--handler", "hello.hello", "--wait", *extra,
                           check=check, timeout=240)
    if not check and deployed.returncode != 0:
        return deployed
    return cluster.run("kubectl", "kubeless", "function", "call", name, "-n", namespace, "--data", name)


def archive(path: Path, kind: str) -> Path:
    data = HELLO.encode()
    if kind == "zip":
        with zipfile.ZipFile(path, "w") as zipped:
            zipped.writestr("hello.py", data)
        return path
    with tarfile.open(path, f"w:{kind}") as tarred:
        info = tarfile.TarInfo("hello.py")
        info.size = len(data)
        tarred.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.parametrize("suffix,kind", [(".zip", "zip"), (".tar.gz", "gz"), (".tar.bz2", "bz2"), (".tar.xz", "xz")])
def test_archives(plugin: Cluster, namespace: str, tmp_path: Path, suffix: str, kind: str):
    source = archive(tmp_path / f"hello{suffix}", kind)
    name = "arch-" + kind
    assert deploy_and_call(plugin, namespace, name, str(source)).stdout == f"hello from {name}\n"
    spec = plugin.get_json("function", name, "-n", namespace)["spec"]
    assert spec["function-content-type"] == ("base64+zip" if kind == "zip" else "base64+compressedtar")


def test_a_binary_file_is_stored_as_base64(plugin: Cluster, namespace: str, tmp_path: Path):
    source = tmp_path / "hello.py"
    source.write_bytes(b"# -*- coding: latin-1 -*-\n# caf\xe9\n" + HELLO.encode())
    assert deploy_and_call(plugin, namespace, "binary", str(source)).stdout == "hello from binary\n"
    assert plugin.get_json("function", "binary", "-n", namespace)["spec"]["function-content-type"] == "base64"


@pytest.fixture
def file_server(plugin: Cluster, tmp_path: Path):
    """Files served over HTTP from this machine at the node's address, which pods of the local cluster reach."""
    if plugin.kind != "local":
        pytest.skip("a URL that both this machine and the pods reach is only known for the local cluster")
    node_ip = plugin.kubectl("get", "nodes", "-o",
                             "jsonpath={.items[0].status.addresses[?(@.type=='InternalIP')].address}").stdout
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer((node_ip, 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield tmp_path, f"http://{node_ip}:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_urls_including_code_too_big_for_a_configmap(plugin: Cluster, namespace: str, file_server):
    folder, base = file_server
    archive(folder / "hello.tar.gz", "gz")
    padding = "# " + "x" * 1000 + "\n"
    (folder / "big.py").write_text(padding * 1200 + HELLO)  # 1.2 MB: over the ConfigMap limit
    assert deploy_and_call(plugin, namespace, "url-tgz", f"{base}/hello.tar.gz").stdout == "hello from url-tgz\n"
    big = plugin.run("kubectl", "kubeless", "function", "deploy", "big", "-n", namespace, "--runtime", "python3.11",
                     "--from-file", f"{base}/big.py", "--handler", "big.hello", "--wait", timeout=240)
    assert big.returncode == 0
    assert plugin.get_json("function", "big", "-n", namespace)["spec"]["function-content-type"] == "url"
    called = plugin.run("kubectl", "kubeless", "function", "call", "big", "-n", namespace, "--data", "big")
    assert called.stdout == "hello from big\n"


def test_a_checksum_mismatch_fails_prepare_clearly(plugin: Cluster, namespace: str, file_server):
    folder, base = file_server
    (folder / "hello.py").write_text(HELLO)
    printed = plugin.run("kubectl", "kubeless", "function", "deploy", "changed", "-n", namespace, "--runtime",
                         "python3.11", "--from-file", f"{base}/hello.py", "--handler", "hello.hello", "--dryrun",
                         "-o", "yaml")
    (folder / "hello.py").write_text(HELLO + "# changed after the checksum was taken\n")
    plugin.kubectl("apply", "-n", namespace, "-f", "-", input=printed.stdout)
    waited = plugin.kubectl("wait", "--for=jsonpath={.status.conditions[?(@.type=='Ready')].reason}=PrepareFailed",
                            "function/changed", "-n", namespace, "--timeout=90s", check=False, timeout=120)
    assert waited.returncode == 0, waited.stderr
    function = plugin.get_json("function", "changed", "-n", namespace)
    ready = next(c for c in function["status"]["conditions"] if c["type"] == "Ready")
    assert "checksum mismatch" in ready["message"]
