"""`kubectl kubeless install` and `uninstall` against a fake API server: what is sent, in which order, and the
question before deleting functions."""
from __future__ import annotations

import io
import json

import pytest

from kubeless_api import meta, resources
from kubectl_kubeless import cli, install, manifests
from kubectl_kubeless.kube import ApiError, Target

OBJECTS = manifests.install_objects(meta.project_version(), manifests.load_catalogue())
# what uninstall deletes: everything any install adds, the trigger consumers of every broker included
EVERYTHING = manifests.install_objects(meta.project_version(), manifests.load_catalogue(), tuple(meta.EVENT_TRIGGERS))
FUNCTIONS = f"/apis/{meta.API_VERSION}/{meta.FUNCTIONS}"


class Response:
    def __init__(self, status: int, body: dict | None = None):
        self.status, self.reason, self.body = status, "", json.dumps(body or {}).encode()

    def read(self) -> bytes:
        return self.body


class FakeApi:
    """Records calls; `present` is the set of paths that exist; `lists` answers the cluster-wide lists."""

    target = Target(("/home/me/.kube/config",), "test", None, None, "default", "https://cluster.test:6443")

    def __init__(self, functions: list[tuple[str, str]] = (), present: set[str] | None = None):
        self.calls: list[tuple[str, str, dict | None, dict | None, str]] = []
        self.functions = functions
        self.present = {resources.object_path(o) for o in EVERYTHING} if present is None else present
        self.deployments_ready = True
        self.stored: dict[str, dict] = {}  # objects as the cluster has them, where they differ from OBJECTS

    def request(self, method, path, *, query=None, body=None, headers=None, timeout=None):
        self.calls.append((method, path, query, None, ""))
        if path == FUNCTIONS:
            return Response(200, {"items": [{"metadata": {"name": n, "namespace": ns}} for ns, n in self.functions]})
        return Response(200, {"items": []})

    def call(self, method, path, *, query=None, body=None, content_type="application/json"):
        self.calls.append((method, path, query, body, content_type))
        if method == "DELETE" and path not in self.present:
            raise ApiError(404, "NotFound", "not found", {"name": path.rsplit("/", 1)[-1]})
        return body or {}

    def get(self, path, **query):
        if path in self.stored:
            return self.stored[path]
        deployment = next(o for o in EVERYTHING if resources.object_path(o) == path)
        if deployment["kind"] != "Deployment":
            return deployment
        replicas = deployment["spec"].get("replicas", 1)
        return {**deployment, "metadata": {**deployment["metadata"], "generation": 1},
                "status": {"observedGeneration": 1, "replicas": replicas, "updatedReplicas": replicas,
                           "availableReplicas": replicas}}

    def writes(self):
        return [(m, p, q) for m, p, q, _, _ in self.calls if m in ("PATCH", "DELETE")]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def run(argv, fake=None, stdin=None):
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(argv, stdout=out, stderr=err, client=fake, environ={}, stdin=stdin or io.StringIO())
    return code, out.getvalue(), err.getvalue()


def test_every_kind_installed_has_a_resource_name():
    assert {(o["apiVersion"], o["kind"]) for o in OBJECTS} <= set(resources.RESOURCES)


def test_paths_and_names_like_kubectls():
    crd = next(o for o in OBJECTS if o["kind"] == "CustomResourceDefinition")
    assert resources.object_path(crd) == \
        f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd['metadata']['name']}"
    assert resources.display_name(crd) == f"customresourcedefinition.apiextensions.k8s.io/{crd['metadata']['name']}"
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kubeless"}}
    assert (resources.object_path(namespace), resources.display_name(namespace)) == (
        "/api/v1/namespaces/kubeless", "namespace/kubeless")
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "kubeless"}}
    assert resources.object_path(deployment) == "/apis/apps/v1/namespaces/kubeless/deployments/d"


@pytest.mark.parametrize("output", ["yaml", "json"])
def test_install_dry_run_prints_the_objects_and_sends_nothing(output):
    code, out, err = run(["install", "--dry-run", "-o", output])
    assert code == 0, err
    if output == "json":
        assert json.loads(out)["items"] == OBJECTS
    else:
        import yaml

        assert [d for d in yaml.safe_load_all(out) if d] == OBJECTS


def test_install_dry_run_names():
    code, out, _ = run(["install", "--dry-run", "-o", "name"])
    assert out.splitlines() == [resources.display_name(o) for o in OBJECTS]


def test_install_applies_each_object_server_side_in_order():
    fake = FakeApi()
    code, out, err = run(["install"], fake)
    assert code == 0, err
    patches = [c for c in fake.calls if c[0] == "PATCH"]
    assert [p for _, p, _, _, _ in patches] == [resources.object_path(o) for o in OBJECTS]
    for (_, _, query, body, content_type), obj in zip(patches, OBJECTS):
        assert query == {"fieldManager": "kubectl-kubeless", "force": "true"}
        assert content_type == "application/apply-patch+yaml" and body == obj
    assert out.splitlines() == [f"{resources.display_name(o)} serverside-applied" for o in OBJECTS]


def test_reinstalling_keeps_the_admins_kubeless_config():
    fake = FakeApi()
    config_map = next(o for o in OBJECTS if o["kind"] == "ConfigMap")
    where = resources.object_path(config_map)
    edited = {"install-env": '{"PIP_INDEX_URL": "http://pypi.local/simple/"}', "provision-image": "old:1"}
    fake.stored[where] = {**config_map, "data": {**config_map["data"], **edited}}
    assert run(["install"], fake)[0] == 0
    sent = next(body for method, path, _, body, _ in fake.calls if method == "PATCH" and path == where)
    assert sent["data"]["install-env"] == edited["install-env"], "the admin's setting survives the upgrade"
    assert sent["data"]["provision-image"] == config_map["data"]["provision-image"], "the version's own is new"


def test_install_wait_follows_each_rollout():
    code, _, err = run(["install", "--wait"], FakeApi())
    assert code == 0
    for obj in OBJECTS:
        if obj["kind"] == "Deployment":
            assert f'deployment "{obj["metadata"]["name"]}" successfully rolled out' in err


def test_rollout_states():
    deployment = {"metadata": {"name": "c", "generation": 2}, "spec": {"replicas": 1}}
    assert install.rollout_state({**deployment, "status": {"observedGeneration": 1}}) == (
        False, 'waiting for deployment "c" spec update to be observed')
    assert install.rollout_state({**deployment, "status": {"observedGeneration": 2, "updatedReplicas": 0}})[0] is False
    assert install.rollout_state({**deployment, "status": {"observedGeneration": 2, "updatedReplicas": 1,
                                                          "replicas": 2, "availableReplicas": 1}}) == (
        False, "1 old replicas are pending termination")
    assert install.rollout_state({**deployment, "status": {"observedGeneration": 2, "updatedReplicas": 1,
                                                          "replicas": 1, "availableReplicas": 1}})[0] is True


def test_uninstall_order_controller_then_crds_then_rbac_then_namespace():
    kinds = [o["kind"] for o in install.uninstall_order(OBJECTS)]
    last = {kind: max(i for i, k in enumerate(kinds) if k == kind) for kind in kinds}
    first = {kind: min(i for i, k in enumerate(kinds) if k == kind) for kind in kinds}
    assert last["Deployment"] < first["CustomResourceDefinition"]
    assert last["ConfigMap"] < first["CustomResourceDefinition"]
    assert last["CustomResourceDefinition"] < min(first[k] for k in install.RBAC if k in first)
    assert kinds[-1] == "Namespace"
    assert sorted(map(json.dumps, install.uninstall_order(OBJECTS))) == sorted(map(json.dumps, OBJECTS))


def test_uninstall_without_a_terminal_or_yes_refuses_and_deletes_nothing():
    fake = FakeApi(functions=[("a", "f1"), ("b", "f2"), ("b", "f3")])
    code, out, err = run(["uninstall"], fake)
    assert code == 1
    assert "error: uninstall deletes 3 Functions and the Kubeless server side, and stdin is not a terminal" in err
    assert "--yes" in err
    assert fake.writes() == []


def test_uninstall_asks_and_a_no_deletes_nothing():
    fake = FakeApi(functions=[("a", "f1"), ("b", "f2")])
    code, out, err = run(["uninstall"], fake, stdin=Terminal("n\n"))
    assert code == 1
    assert "2 Functions in 2 namespaces" in err and "Delete them? [y/N]" in err
    assert fake.writes() == []


@pytest.mark.parametrize("argv,stdin", [(["uninstall"], Terminal("y\n")), (["uninstall", "--yes"], None)])
def test_uninstall_deletes_in_order(argv, stdin):
    fake = FakeApi()
    code, out, err = run(argv, fake, stdin=stdin)
    assert code == 0, err
    order = install.uninstall_order(EVERYTHING)
    assert [p for _, p, _ in fake.writes()] == [resources.object_path(o) for o in order]
    assert all(q == {"propagationPolicy": "Background", "dryRun": None} for _, _, q in fake.writes())
    assert out.splitlines() == [f"{resources.display_name(o)} deleted" for o in order]


def test_uninstall_dry_run_asks_the_server_to_check_each_deletion():
    fake = FakeApi(present=set())
    code, out, err = run(["uninstall", "--dry-run"], fake)
    assert code == 0, err
    assert all(q["dryRun"] == "All" for _, _, q in fake.writes())
    assert out.splitlines()[0].endswith("not found (server dry run)")
    assert "Would delete from" in err


# --- --triggers ------------------------------------------------------------------------------------------------

def test_install_triggers_adds_each_brokers_consumers_after_the_rest():
    fake = FakeApi()
    code, out, err = run(["install", "--triggers", "kafka,nats"], fake)
    assert code == 0, err
    applied = [p for m, p, _, _, _ in fake.calls if m == "PATCH"]
    wanted = manifests.install_objects(meta.project_version(), manifests.load_catalogue(), ("kafka", "nats"))
    assert applied == [resources.object_path(o) for o in wanted]
    assert applied[:len(OBJECTS)] == [resources.object_path(o) for o in OBJECTS]
    assert "deployment.apps/kafka-trigger-controller serverside-applied" in out
    assert "deployment.apps/nats-trigger-controller serverside-applied" in out
    assert "kinesis-trigger-controller" not in out


def test_install_triggers_refuses_an_unknown_kind_in_one_line():
    fake = FakeApi()
    code, _, err = run(["install", "--triggers", "kafka,rabbitmq"], fake)
    assert code == 1 and fake.calls == []
    assert err.strip().splitlines() == ["error: unknown trigger kind 'rabbitmq' in --triggers: use a "
                                        "comma-separated list of kafka, nats, kinesis"]


def test_uninstall_removes_the_trigger_consumers_too():
    fake = FakeApi()
    code, out, err = run(["uninstall", "--yes"], fake)
    assert code == 0, err
    for broker in meta.EVENT_TRIGGERS:
        assert f"deployment.apps/{broker}-trigger-controller deleted" in out
        assert f"clusterrole.rbac.authorization.k8s.io/{broker}-trigger-controller deleted" in out
