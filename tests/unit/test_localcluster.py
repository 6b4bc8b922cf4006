"""Unit tests of hack/localcluster's pure parts: the ingress controller's flags, manifests and RBAC, the PKI's
certificate list, and build.sh's go.mod directives. Nothing here starts a component or talks to an API server."""
from __future__ import annotations

import json
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
from scripts import REPO, load_script

LOCALCLUSTER = REPO / "hack" / "localcluster"
NODE_IP = "192.0.2.2"


cluster = load_script("kubeless_localcluster", LOCALCLUSTER / "cluster.py")


def flags(argv: list[str]) -> dict[str, str]:
    return dict(arg[2:].split("=", 1) for arg in argv[1:])


def test_traefik_listens_on_the_node_address_only_and_reports_it_in_every_status() -> None:
    given = flags(cluster.traefik_argv("/bin/traefik", NODE_IP))
    assert given["entrypoints.web.address"] == f"{NODE_IP}:{cluster.HTTP_PORT}"
    assert given["entrypoints.websecure.address"] == f"{NODE_IP}:{cluster.HTTPS_PORT}"
    assert given["entrypoints.websecure.http.tls"] == "true"
    assert given["entrypoints.traefik.address"].startswith("127.0.0.1:")
    addresses = [value for name, value in given.items() if name.endswith(".address")]
    assert not any(address.startswith(":") or address.startswith("0.0.0.0") for address in addresses)
    for provider in ("kubernetesingress", "kubernetesingressnginx", "kubernetesgateway", "kubernetescrd"):
        assert given[f"providers.{provider}"] == "true"
    assert given["providers.kubernetesingress.ingressendpoint.ip"] == NODE_IP
    assert given["providers.kubernetesingressnginx.publishstatusaddress"] == NODE_IP
    assert given["providers.kubernetesgateway.statusaddress.ip"] == NODE_IP
    assert given["global.checknewversion"] == given["global.sendanonymoususage"] == "false"


@pytest.fixture
def manifests(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    monkeypatch.setattr(cluster, "PKI", tmp_path)
    (tmp_path / "gateway.crt").write_text("CERT")
    (tmp_path / "gateway.key").write_text("KEY")
    return json.loads(cluster.ingress_manifests())["items"]


def by_kind(items: list[dict], kind: str) -> list[dict]:
    return [item for item in items if item["kind"] == kind]


def test_ingress_classes_name_the_controllers_traefiks_providers_serve(manifests: list[dict]) -> None:
    classes = {c["metadata"]["name"]: c["spec"]["controller"] for c in by_kind(manifests, "IngressClass")}
    assert classes == {"nginx": "k8s.io/ingress-nginx", "traefik": "traefik.io/ingress-controller"}
    [gateway_class] = by_kind(manifests, "GatewayClass")
    assert gateway_class["spec"]["controllerName"] == "traefik.io/gateway-controller"


def test_the_gateway_listens_on_the_entry_points_ports_for_every_namespace(manifests: list[dict]) -> None:
    [gateway] = by_kind(manifests, "Gateway")
    assert (gateway["metadata"]["namespace"], gateway["metadata"]["name"]) == ("default", "kubeless")
    assert gateway["spec"]["gatewayClassName"] == cluster.GATEWAY_CLASS
    given = flags(cluster.traefik_argv("/bin/traefik", NODE_IP))
    entry_point_ports = {int(given[f"entrypoints.{name}.address"].rsplit(":", 1)[1]) for name in ("web", "websecure")}
    listeners = gateway["spec"]["listeners"]
    # Traefik maps a listener to the entry point whose address ends in the listener's port
    assert {listener["port"] for listener in listeners} == entry_point_ports
    assert all(listener["allowedRoutes"] == {"namespaces": {"from": "All"}} for listener in listeners)
    [https] = [listener for listener in listeners if listener["protocol"] == "HTTPS"]
    [secret] = by_kind(manifests, "Secret")
    assert https["tls"]["certificateRefs"] == [{"kind": "Secret", "name": secret["metadata"]["name"]}]
    assert secret["metadata"]["namespace"] == gateway["metadata"]["namespace"]
    assert secret["stringData"] == {"tls.crt": "CERT", "tls.key": "KEY"}


def test_the_gateway_is_the_one_the_product_attaches_httproutes_to() -> None:
    from kubeless_api import schema
    assert schema.DEFAULT_GATEWAY_REF == f"{cluster.GATEWAY_NAMESPACE}/{cluster.GATEWAY_NAME}"


def test_traefiks_user_reads_and_writes_statuses_only(manifests: list[dict]) -> None:
    [binding] = by_kind(manifests, "ClusterRoleBinding")
    [role] = by_kind(manifests, "ClusterRole")
    user, group = cluster.CLIENT_IDENTITIES["traefik"]
    assert group is None  # not system:masters
    assert binding["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    for rule in role["rules"]:
        writes = set(rule["verbs"]) - {"get", "list", "watch"}
        assert not writes or (writes == {"update"} and all(r.endswith("/status") for r in rule["resources"]))

    def granted(group: str, resource: str, verb: str) -> bool:
        return any(group in r["apiGroups"] and verb in r["verbs"]
                   and (resource in r["resources"] or "*" in r["resources"]
                        or ("/" in resource and "*/" + resource.split("/")[1] in r["resources"]))
                   for r in role["rules"])

    assert granted("networking.k8s.io", "ingresses/status", "update")
    assert granted("gateway.networking.k8s.io", "gateways/status", "update")
    assert granted("gateway.networking.k8s.io", "httproutes", "watch")
    assert granted("traefik.io", "middlewares", "watch")
    assert granted("discovery.k8s.io", "endpointslices", "watch")
    assert granted("", "secrets", "watch")


def test_every_identity_gets_a_certificate_and_the_gateway_one_names_the_node() -> None:
    issued = cluster.certificates(NODE_IP, "vm")
    assert set(cluster.CLIENT_IDENTITIES) <= set(issued)
    assert issued["traefik"] == (f"/CN={cluster.TRAEFIK_USER}", None)
    assert f"IP:{NODE_IP}" in issued["gateway"][1]


@pytest.mark.skipif(not shutil.which("openssl"), reason="needs openssl")
def test_a_kept_ca_issues_only_the_certificates_it_lacks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cluster, "PKI", tmp_path / "pki")
    cluster.ensure_pki(NODE_IP, "vm")
    ca, kept = (tmp_path / "pki" / "ca.crt").read_bytes(), (tmp_path / "pki" / "admin.crt").read_bytes()
    (tmp_path / "pki" / "traefik.crt").unlink()  # as if traefik were added after this PKI was made
    cluster.ensure_pki(NODE_IP, "vm")
    assert (tmp_path / "pki" / "ca.crt").read_bytes() == ca
    assert (tmp_path / "pki" / "admin.crt").read_bytes() == kept
    verify = subprocess.run(["openssl", "verify", "-CAfile", tmp_path / "pki" / "ca.crt", tmp_path / "pki" / "traefik.crt"],
                            capture_output=True, text=True)
    assert verify.returncode == 0, verify.stderr


def test_port_free_sees_a_listener() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert not cluster.port_free("127.0.0.1", port)
    assert cluster.port_free("127.0.0.1", port)


@pytest.mark.skipif(not shutil.which("go"), reason="needs the go command (offline: go mod edit only)")
def test_build_carries_a_modules_exclude_and_versioned_replace_lines(tmp_path: Path) -> None:
    gomod = tmp_path / "go.mod"
    gomod.write_text("""module example.com/x

go 1.25

require github.com/a/a v1.0.0

replace (
\tgithub.com/a/a => github.com/fork/a v1.0.1
\tgithub.com/b/b v1.2.0 => github.com/fork/b v1.2.1
\texample.com/sibling => ../sibling
)

exclude github.com/c/c v3.0.0+incompatible
""")
    # the function as build.sh defines it, without running the build
    shell = f'source <(sed -n "/^carried_directives() {{/,/^}}/p" "$1") && carried_directives "{gomod}"'
    out = subprocess.run(["bash", "-c", shell, "-", str(LOCALCLUSTER / "build.sh")], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["-replace=github.com/a/a=github.com/fork/a@v1.0.1",
                   "-replace=github.com/b/b@v1.2.0=github.com/fork/b@v1.2.1",
                   "-exclude=github.com/c/c@v3.0.0+incompatible"]
