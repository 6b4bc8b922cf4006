"""Bad input at the command line: one `error:` line, exit 1, and no request that writes (kubectl's Validate step,
before Run). Each class of input the API server, the controller or the pods would refuse later is refused here."""
from __future__ import annotations

import io
import os
import threading
from pathlib import Path

import pytest
import yaml

from kubeless_api import meta
from kubectl_kubeless import cli, kube
from kubectl_kubeless.errors import UserError

from test_cli_main import FakeClient, deploy


@pytest.fixture
def hello(tmp_path: Path) -> str:
    path = tmp_path / "hello.py"
    path.write_text("def handler(event, context):\n    return 'hi'\n")
    return str(path)


def refused(argv: list[str], client: FakeClient | None = None, environ: dict | None = None) -> str:
    """Runs the line; asserts exit 1, one `error:` line on stderr, nothing on stdout and no write; returns the line."""
    client = FakeClient() if client is None and environ is None else client
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(argv, stdout=out, stderr=err, client=client, environ=environ or {})
    assert code == 1, err.getvalue()
    assert err.getvalue().startswith("error: ") and err.getvalue().count("\n") == 1, err.getvalue()
    assert out.getvalue() == ""
    if client is not None:
        assert client.writes == [] and client.requests == []
    return err.getvalue()


# --- names, labels, quantities, secrets, env: the function's flags ------------------------------------------------

@pytest.mark.parametrize(("extra", "message"), [
    (["--label", "function=other"], "invalid --label function=other: function=hello is the label"),
    (["--label", "created-by=me"], "invalid --label created-by=me: created-by=kubeless is the label"),
    (["--memory=-128Mi"], "invalid --memory '-128Mi': must not be negative"),
    (["--cpu", "-1"], "invalid --cpu '-1': must not be negative"),
    (["--secrets", "kubeless"], "it would be mounted at /kubeless, where the function's code is"),
    (["--secrets", "src"], "mounted at /src"),
    (["--secrets", "usr"], "it would be mounted at /usr, where the system's own files are"),
    (["--secrets", "etc"], "mounted at /etc"),
    (["--secrets", "tmp"], "mounted at /tmp"),
    (["--secrets", "hello"], None),  # hello-vol: no collision
    (["--secrets", "a" * 60], "at most 59 lowercase letters"),
    (["--secrets", "db,db"], "--secrets db is given twice"),
    (["--node-selectors", "bad key=x"], "invalid --node-selectors key 'bad key'"),
    (["--node-selectors", "disk=ssd fast"], "invalid --node-selectors value 'ssd fast'"),
    (["--service-account", "Admin_SA"], "invalid --service-account 'Admin_SA'"),
    (["--env", "1ABC=x"], "invalid --env name '1ABC'"),
    (["--env", "A B=x"], "invalid --env name 'A B'"),
    (["--env", "MULTI=one\ntwo"], "invalid value 'MULTI=one\\ntwo': it has a line break"),
    (["--env", '"MULTI=one\ntwo"'], "invalid --env value for 'MULTI': it has a line break"),
])
def test_bad_function_flags(hello, extra, message):
    if message is None:
        client = FakeClient()
        assert cli.main(deploy(hello, *extra), stdout=io.StringIO(), stderr=io.StringIO(), client=client,
                        environ={}) == 0
        return
    assert message in refused(deploy(hello, *extra))


def test_a_secret_whose_volume_is_the_functions_own(hello):
    line = refused(["function", "deploy", "x-vol", "-n", "ns", "-r", "python3.11", "--handler", "a.b", "-f", hello,
                    "--secrets", "x"])
    assert "its volume x-vol has the name of the function's own volume" in line


@pytest.mark.parametrize(("name", "message"), [
    ("a" * 59, "at most 58"), ("1hello", "DNS-1035 label"), ("hello-", "DNS-1035 label"),
])
def test_names_the_children_cannot_take(hello, name, message):
    assert message in refused(["function", "deploy", name, "-n", "ns", "-r", "python3.11", "--handler", "a.b",
                               "-f", hello])


def test_the_longest_name_is_accepted(hello):
    client = FakeClient()
    code = cli.main(["function", "deploy", "a" * 58, "-n", "ns", "-r", "python3.11", "--handler", "a.b", "-f", hello],
                    stdout=io.StringIO(), stderr=io.StringIO(), client=client, environ={})
    assert code == 0 and len(client.writes) == 1


def test_a_label_without_a_value_means_empty_like_kubeless(hello):
    client = FakeClient()
    cli.main(deploy(hello, "--label", "foobar", "-l", "function=hello"), stdout=io.StringIO(), stderr=io.StringIO(),
             client=client, environ={})
    assert client.writes[0][2]["metadata"]["labels"] == {**meta.function_labels("hello"), "foobar": ""}


def test_a_go_handler_must_be_exported(hello):
    line = refused(["function", "deploy", "g", "-n", "ns", "-r", "go1.21", "--handler", "hello.handler",
                    "-f", hello])
    assert "a Go function must be exported, starting with an upper-case letter, e.g. hello.Handler" in line


def test_an_update_to_an_unexported_go_handler_is_refused_before_the_patch():
    client = FakeClient({f"/apis/{meta.API_VERSION}/namespaces/ns/functions/g": {
        "metadata": {"name": "g", "resourceVersion": "1"}, "spec": {"runtime": "go1.21", "handler": "m.Run"}}})
    assert "must be exported" in refused(["function", "update", "g", "-n", "ns", "--handler", "m.run"], client)


# --- the code: files and URLs --------------------------------------------------------------------------------------

def test_a_fifo_is_refused_without_reading_it(hello, tmp_path):
    fifo = tmp_path / "code.py"
    os.mkfifo(fifo)
    result: list[str] = []
    worker = threading.Thread(target=lambda: result.append(refused(deploy(hello, "--from-file", str(fifo)))))
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), "reading the FIFO blocked"
    assert "is not a regular file (a pipe or a device?)" in result[0]


def test_a_huge_file_is_refused_before_reading_it(hello, tmp_path):
    huge = tmp_path / "deps.txt"
    with open(huge, "wb") as handle:
        handle.truncate(10 * 1024 ** 3)  # sparse: 10 GiB that would not fit in memory
    line = refused(deploy(hello, "--dependencies", str(huge)))
    assert f"--dependencies {huge} takes {10 * 1024 ** 3} bytes, over the 1 MiB" in line


def test_an_archive_that_is_not_one(hello, tmp_path):
    fake = tmp_path / "code.zip"
    fake.write_text("def handler(e, c): pass\n")
    assert "the name says a zip archive, but the content is not one" in refused(deploy(hello, "-f", str(fake)))


@pytest.mark.parametrize(("url", "message"), [
    ("http://example.com:99999/f.py", "Port out of range"),
    ("http://example.com:http/f.py", "Port could not be cast"),
    ("https://example.com/my code.py", "percent-encoded"),
    ("http://[example.com/f.py", "Invalid IPv6 URL"),
    ("http://example.com/f[1].py", "percent-encoded"),
])
def test_malformed_urls_are_refused_before_any_download(hello, url, message):
    line = refused(deploy(hello, "--from-file", url))
    assert line.startswith(f"error: invalid --from-file URL '{url}'") and message in line


# --- global flags ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("argv", "message"), [
    (["function", "ls", "-n", ".."], "invalid namespace '..' (-n/--namespace): a namespace is a DNS-1123 label"),
    (["-n", "Team_A", "function", "call", "hello"], "invalid namespace 'Team_A'"),
    (["function", "ls", "--request-timeout", "25h"], 'invalid --request-timeout "25h": at most 24h'),
    (["function", "ls", "--request-timeout", "100000"], "at most 24h (0 means no limit)"),
])
def test_bad_global_flags(argv, message):
    assert message in refused(argv)


def test_a_request_timeout_says_kubeless_words():
    class Slow(FakeClient):
        def request(self, *args, **kwargs):
            raise kube.RequestTimeout("https://h:6443", 5.0)

    client = Slow({"/api/v1/namespaces/ns/services/hello": {"spec": {"ports": [{"name": "http-function-port"}]}}})
    out, err = io.StringIO(), io.StringIO()
    assert cli.main(["function", "call", "hello", "-n", "ns"], stdout=out, stderr=err, client=client,
                    environ={}) == 1
    assert err.getvalue() == ("error: Request timeout exceeded: no answer from https://h:6443 within 5 s "
                              "(--request-timeout); give more, or 0 for no limit\n")


# --- kubeconfig problems --------------------------------------------------------------------------------------------

def write_kubeconfig(tmp_path: Path, document) -> dict[str, str]:
    path = tmp_path / "config"
    path.write_text(document if isinstance(document, str) else yaml.safe_dump(document))
    return {"KUBECONFIG": str(path)}


def config(cluster: dict | None = None, user: dict | None = None, namespace: str = "team") -> dict:
    return {"current-context": "c",
            "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u", "namespace": namespace}}],
            "clusters": [{"name": "k", "cluster": {"server": "https://127.0.0.1:1", **(cluster or {})}}],
            "users": [{"name": "u", "user": user or {"token": "t"}}]}


@pytest.mark.parametrize(("document", "message"), [
    ("- just\n- a list\n", "is not a kubeconfig: expected a mapping with clusters, contexts and users, found a list"),
    ({"clusters": {"k": 1}, "current-context": "c"}, "clusters must be a list of entries"),
    ({"contexts": [{"name": "c", "context": "k"}], "current-context": "c"}, "contexts[0] must be a mapping"),
    ({"current-context": ["c"]}, "current-context must be a string"),
    (config({"server": 6443}), 'cluster "k" in kubeconfig'),
    (config({"server": "h:6443"}), "is not an http(s)://host[:port] URL"),
    (config({"insecure-skip-tls-verify": "maybe"}), "insecure-skip-tls-verify must be true or false, not 'maybe'"),
    (config(user={"token": "abc\ndef"}), "the token has a line break or a space"),
    (config(user={"token": 12345}), "token must be a string"),
    (config(user={"exec": "aws"}), "exec must be a mapping with a command"),
    (config(namespace=".."), "has namespace '..', which is not a DNS-1123 label"),
])
def test_kubeconfigs_of_the_wrong_shape(tmp_path, document, message):
    assert message in refused(["function", "ls"], None, write_kubeconfig(tmp_path, document))


def test_insecure_skip_tls_verify_as_a_string_means_what_it_says(tmp_path):
    def cluster_entry(value):
        environ = write_kubeconfig(tmp_path, config({"insecure-skip-tls-verify": value}))
        return kube.resolve(kube.GlobalOptions(), environ).cluster_entry["insecure-skip-tls-verify"]

    assert cluster_entry("false") is False and cluster_entry("False") is False
    assert cluster_entry("true") is True and cluster_entry(True) is True


def test_a_token_file_of_several_lines(tmp_path):
    (tmp_path / "token").write_text("one\ntwo\n")
    with pytest.raises(UserError, match="the tokenFile of k has more than one line"):
        kube.auth_headers({"tokenFile": str(tmp_path / "token")}, "k")


def test_a_missing_exec_plugin_is_named(tmp_path):
    pytest.importorskip("kubernetes")
    environ = write_kubeconfig(tmp_path, config(user={"exec": {"apiVersion": "client.authentication.k8s.io/v1",
                                                               "command": "no-such-credential-plugin"}}))
    line = refused(["function", "ls"], None, {**environ, "PATH": str(tmp_path)})
    assert "the credential plugin 'no-such-credential-plugin' of the kubeconfig user u is not installed" in line


def test_a_failing_exec_plugin_stops_before_any_request(tmp_path):
    pytest.importorskip("kubernetes")
    plugin = tmp_path / "fails"
    plugin.write_text("#!/bin/sh\necho 'token expired' >&2\nexit 3\n")
    plugin.chmod(0o755)
    environ = write_kubeconfig(tmp_path, config(user={"exec": {"apiVersion": "client.authentication.k8s.io/v1",
                                                               "command": str(plugin)}}))
    line = refused(["function", "ls"], None, environ)
    assert line.startswith("error: cannot get the credentials of the kubeconfig user u")


# --- plain http (kubectl proxy) and proxies -------------------------------------------------------------------------

def test_a_plain_http_server_needs_no_tls(tmp_path):
    environ = write_kubeconfig(tmp_path, config({"server": "http://127.0.0.1:8001",
                                                 "certificate-authority": str(tmp_path / "absent.crt")}))
    client = kube.Client(kube.resolve(kube.GlobalOptions(), environ), environ={})
    client._connect()
    import urllib3

    assert isinstance(client._pool, urllib3.PoolManager) and not isinstance(client._pool, urllib3.ProxyManager)


@pytest.mark.parametrize(("server", "environ", "proxy"), [
    ("https://api.example.com:6443", {"HTTPS_PROXY": "http://proxy:3128"}, "http://proxy:3128"),
    ("https://api.example.com:6443", {"https_proxy": "proxy:3128"}, "http://proxy:3128"),
    ("http://api.example.com:8001", {"HTTPS_PROXY": "http://proxy:3128"}, None),
    ("http://api.example.com:8001", {"HTTP_PROXY": "http://proxy:3128"}, "http://proxy:3128"),
    ("https://api.example.com", {"HTTPS_PROXY": "http://p:1", "NO_PROXY": "example.com"}, None),
    ("https://api.example.com", {"HTTPS_PROXY": "http://p:1", "NO_PROXY": ".example.com"}, None),
    ("https://api.example.com", {"HTTPS_PROXY": "http://p:1", "NO_PROXY": "other.com,*"}, None),
    ("https://api.example.com", {"HTTPS_PROXY": "http://p:1", "NO_PROXY": "api.example.com:80"}, "http://p:1"),
    ("https://10.1.2.3:6443", {"HTTPS_PROXY": "http://p:1", "NO_PROXY": "10.0.0.0/8"}, None),
    ("https://10.1.2.3:6443", {"HTTPS_PROXY": "http://p:1", "NO_PROXY": "192.168.0.0/16"}, "http://p:1"),
    ("https://127.0.0.1:6443", {"HTTPS_PROXY": "http://p:1"}, None),
    ("https://localhost:6443", {"HTTPS_PROXY": "http://p:1"}, None),
])
def test_the_proxy_is_chosen_as_kubectl_does(server, environ, proxy):
    assert kube.proxy_for(server, None, environ) == proxy


def test_a_proxy_tunnels_https_with_connect(tmp_path):
    import urllib3

    environ = write_kubeconfig(tmp_path, config({"server": "https://api.example.com:6443"}))
    client = kube.Client(kube.resolve(kube.GlobalOptions(), environ), environ={"HTTPS_PROXY": "http://127.0.0.1:9"})
    client._connect()
    assert isinstance(client._pool, urllib3.ProxyManager)
    assert client._pool.proxy.host == "127.0.0.1"
