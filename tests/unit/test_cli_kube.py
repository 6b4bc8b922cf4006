"""kubectl's kubeconfig rules, flag parsing helpers and packaging facts of the plugin, without a cluster."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from kubeless_api import meta
from kubectl_kubeless import flags, kube
from kubectl_kubeless.errors import UserError
from kubectl_kubeless.kube import GlobalOptions, resolve

REPO = Path(__file__).resolve().parents[2]


def kubeconfig(path: Path, *, current: str = "dev", namespace: str | None = "team", server: str = "https://h:6443",
               extra_contexts: list[dict] | None = None) -> Path:
    import yaml

    context = {"cluster": "c1", "user": "u1", **({"namespace": namespace} if namespace else {})}
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": current,
        "clusters": [{"name": "c1", "cluster": {"server": server}}, {"name": "c2", "cluster": {"server": "https://o"}}],
        "users": [{"name": "u1", "user": {"token": "t"}}],
        "contexts": [{"name": "dev", "context": context}, *(extra_contexts or [])]}))
    return path


def test_the_namespace_is_the_contexts_else_default(tmp_path):
    path = kubeconfig(tmp_path / "config")
    target = resolve(GlobalOptions(kubeconfig=str(path)), {})
    assert (target.context, target.cluster, target.user, target.namespace, target.server) == (
        "dev", "c1", "u1", "team", "https://h:6443")
    other = kubeconfig(tmp_path / "other", namespace=None)
    assert resolve(GlobalOptions(kubeconfig=str(other)), {}).namespace == "default"


def test_kubeconfig_env_lists_files_and_the_first_wins(tmp_path):
    first = kubeconfig(tmp_path / "a", server="https://first")
    second = kubeconfig(tmp_path / "b", server="https://second", current="")
    target = resolve(GlobalOptions(), {"KUBECONFIG": os.pathsep.join([str(tmp_path / "missing"), str(first),
                                                                      str(second)])})
    assert target.server == "https://first"
    assert target.paths == (str(first), str(second))


def test_context_cluster_and_user_flags(tmp_path):
    path = kubeconfig(tmp_path / "config", extra_contexts=[{"name": "prod", "context": {"cluster": "c2"}}])
    assert resolve(GlobalOptions(kubeconfig=str(path), context="prod"), {}).server == "https://o"
    assert resolve(GlobalOptions(kubeconfig=str(path), cluster="c2"), {}).server == "https://o"
    for options, message in [(GlobalOptions(kubeconfig=str(path), context="nope"), 'context "nope" not found'),
                             (GlobalOptions(kubeconfig=str(path), cluster="nope"), 'cluster "nope" not found'),
                             (GlobalOptions(kubeconfig=str(path), user="nope"), 'user "nope" not found')]:
        with pytest.raises(UserError, match=message):
            resolve(options, {})


def test_a_missing_kubeconfig_names_the_path(tmp_path):
    with pytest.raises(UserError, match=f"kubeconfig {tmp_path}/nope does not exist"):
        resolve(GlobalOptions(kubeconfig=str(tmp_path / "nope")), {})
    with pytest.raises(UserError, match="no kubeconfig: .*set KUBECONFIG or pass --kubeconfig"):
        resolve(GlobalOptions(), {"KUBECONFIG": str(tmp_path / "nope")})


def test_no_current_context(tmp_path):
    path = kubeconfig(tmp_path / "config", current="")
    with pytest.raises(UserError, match="has no current context; pass --context"):
        resolve(GlobalOptions(kubeconfig=str(path)), {})


@pytest.mark.parametrize(("text", "seconds"), [("0", None), ("5", 5), ("5s", 5), ("2m", 120), ("1h", 3600),
                                               ("1m30s", 90), ("500ms", 0.5)])
def test_request_timeout_reads_like_kubectls(text, seconds):
    assert kube.parse_request_timeout(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "5x", "-1", "1 m"])
def test_bad_request_timeouts(text):
    with pytest.raises(UserError, match="invalid --request-timeout"):
        kube.parse_request_timeout(text)


def test_api_errors_keep_the_servers_message():
    error = kube.api_error(403, b'{"kind":"Status","reason":"Forbidden","message":"functions is forbidden: no",'
                                b'"details":{"kind":"functions"}}', "Forbidden")
    assert (error.status, error.reason, str(error)) == (403, "Forbidden", "functions is forbidden: no")
    assert kube.api_error(404, b'{"kind":"Status","details":{}}').resource_missing
    assert not kube.api_error(404, b'{"kind":"Status","details":{"name":"x"}}').resource_missing
    assert str(kube.api_error(502, b"bad gateway", "Bad Gateway")) == "502 Bad Gateway: bad gateway"


def test_transport_errors_are_reduced_to_their_cause():
    refused = ConnectionRefusedError(111, "Connection refused")

    class Wrapper(Exception):
        def __init__(self):
            super().__init__("<urllib3.connection.HTTPSConnection object at 0x1>: Failed to establish")
            self.reason = refused

    assert kube.transport_reason(Wrapper()) == "Connection refused"


# --- flag values -----------------------------------------------------------------------------------------------

def test_list_flags_split_at_commas_like_kubeless():
    assert flags.split_list(["a=1,b=2", "c=3"]) == ["a=1", "b=2", "c=3"]
    assert flags.split_list(['"x=1,2",y=3']) == ["x=1,2", "y=3"]  # CSV quoting keeps a comma in a value


def test_key_values_split_at_the_first_separator():
    assert flags.key_value("URL=http://x:1", "--env") == ("URL", "http://x:1")
    assert flags.key_value("A:b=c", "--env") == ("A", "b=c")
    assert flags.key_value("EMPTY=", "--env") == ("EMPTY", "")


@pytest.mark.parametrize("good", ["*/5 * * * *", "0 0 1 1 *", "0 9-17 * * mon-fri", "30 2 * jan,jul sun",
                                  "@hourly", "@every 90s", "@every 1h30m", "0,15,30,45 * * * ?"])
def test_good_schedules(good):
    assert flags.schedule(good) == good


@pytest.mark.parametrize("bad", ["* * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "* * * 13 *", "* * * * 7",
                                 "*/0 * * * *", "@sometimes", "@every soon", "5-1 * * * *"])
def test_bad_schedules(bad):
    with pytest.raises(UserError, match="invalid --schedule"):
        flags.schedule(bad)


@pytest.mark.parametrize("good", ["128Mi", "1Gi", "250m", "0.5", "1", "1e3", "100k", ".5"])
def test_quantities(good):
    assert flags.quantity(good, "--memory") == good


def test_the_handler_rule_is_the_crds():
    assert flags.handler("hello.handler") == "hello.handler"
    assert flags.handler("my-module.main_2") == "my-module.main_2"
    with pytest.raises(UserError):
        flags.handler("hello.2bad")


# --- packaging -------------------------------------------------------------------------------------------------

def test_the_package_version_is_the_repository_version():
    pyproject = (REPO / "pyproject.toml").read_text()
    assert re.search(r'dynamic = \["version"\]', pyproject) and 'version = { file = "VERSION" }' in pyproject
    assert meta.project_version() == (REPO / "VERSION").read_text().strip()


def test_the_entry_point_and_package_data():
    pyproject = (REPO / "pyproject.toml").read_text()
    assert 'kubectl-kubeless = "kubectl_kubeless.cli:main"' in pyproject
    assert re.search(r'kubeless_api = \[.*"catalogue\.json".*\]', pyproject)
    assert os.access(REPO / "hack" / "build-plugin.sh", os.X_OK)
