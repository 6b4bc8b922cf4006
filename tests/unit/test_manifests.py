"""The install manifest and the runtime catalogue stay in step with their single sources."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from kubeless_api import meta, schema
from kubeless_api.config import KEY_RUNTIMES
from kubectl_kubeless import manifests

REPO = Path(__file__).resolve().parents[2]


def test_generated_manifest_is_up_to_date():
    pytest.importorskip("yaml")
    expected = manifests.render_yaml(manifests.install_objects(meta.project_version(), manifests.load_catalogue()))
    assert (REPO / "manifests" / "kubeless.yaml").read_text() == expected, "run `make manifests`"


def test_config_map_carries_the_catalogue_verbatim():
    catalogue = manifests.load_catalogue()
    config = manifests.config_map("9.9.9", catalogue)
    assert json.loads(config["data"][KEY_RUNTIMES]) == catalogue
    assert config["data"]["provision-image"] == "localhost/kubeless/provision:9.9.9"


def test_every_catalogue_image_is_a_project_image_of_this_version():
    images = [image["image"] for entry in manifests.load_catalogue() for version in entry["versions"]
              for image in version["images"]]
    assert images
    for image in images:
        repository, tag = image.rsplit(":", 1)
        assert repository.startswith("localhost/kubeless/")
        assert tag == meta.project_version() != "latest"


def test_every_crd_is_namespaced_v1beta1_with_status_and_printer_columns():
    for kind, plural in meta.KINDS.items():
        crd = schema.crd(kind)
        assert crd["metadata"]["name"] == f"{plural}.kubeless.io"
        assert crd["spec"]["scope"] == "Namespaced"
        (version,) = crd["spec"]["versions"]
        assert version["name"] == "v1beta1" and version["subresources"] == {"status": {}}
        assert version["additionalPrinterColumns"]


def test_controller_cannot_read_secrets_or_touch_nodes():
    rules = manifests.controller_rules()
    resources = {resource for rule in rules for resource in rule["resources"]}
    assert "secrets" not in resources and "nodes" not in resources
    assert all("*" not in rule["verbs"] for rule in rules)


def test_smoke_manifest_uses_this_versions_image():
    smoke = (REPO / "hack" / "demo" / "smoke.yaml").read_text()
    assert f"localhost/kubeless/base:{meta.project_version()}" in smoke


# --- the trigger consumers -------------------------------------------------------------------------------------

@pytest.mark.parametrize("broker", list(meta.EVENT_TRIGGERS))
def test_trigger_consumers_have_least_privilege(broker):
    plural = meta.KINDS[meta.EVENT_TRIGGERS[broker]]
    granted = {(group, resource, verb) for rule in manifests.trigger_controller_rules(broker)
               for group in rule["apiGroups"] for resource in rule["resources"] for verb in rule["verbs"]}
    assert ("kubeless.io", plural, "watch") in granted and ("kubeless.io", "functions", "list") in granted
    assert ("kubeless.io", f"{plural}/status", "patch") in granted
    assert not {g for g in granted if g[0] == "kubeless.io" and g[2] not in ("list", "watch", "patch")}
    assert ("kubeless.io", plural, "patch") not in granted, "only the status is written"
    assert ("", "secrets", "get") in granted if broker == "kinesis" else not {g for g in granted if g[1] == "secrets"}
    others = {meta.KINDS[k] for b, k in meta.EVENT_TRIGGERS.items() if b != broker}
    assert not {g for g in granted if g[1].split("/")[0] in others}
    assert all("*" not in rule["verbs"] for rule in manifests.trigger_controller_rules(broker))


@pytest.mark.parametrize("broker", list(meta.EVENT_TRIGGERS))
def test_trigger_consumer_deployment(broker):
    objects = manifests.trigger_controller("1.2.3", broker)
    assert [o["kind"] for o in objects] == ["ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Deployment"]
    assert {o["metadata"]["name"] for o in objects} == {f"{broker}-trigger-controller"}
    deployment = objects[-1]
    assert deployment["metadata"]["namespace"] == "kubeless"
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == f"{broker}-trigger-controller"
    (container,) = pod["containers"]
    assert container["image"] == "localhost/kubeless/consumers:1.2.3"
    assert container["command"] == ["python3", "-m", "kubeless_consumers", broker]
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env["BACKOFF_INTERVAL"] and env["KUBELESS_LOG_LEVEL"] == "INFO"
    if broker == "kafka":
        assert env["KAFKA_BROKERS"] == "kafka.kubeless:9092"
    if broker == "nats":
        assert env["NATS_URL"] == "nats://nats.kubeless:4222"
    # Pod Security "restricted", as the controller's
    controller = manifests.controller_deployment("1.2.3")["spec"]["template"]["spec"]
    assert pod["securityContext"] == controller["securityContext"]
    assert container["securityContext"] == controller["containers"][0]["securityContext"]
    assert deployment["spec"]["replicas"] == 1 and deployment["spec"]["strategy"] == {"type": "Recreate"}


def test_trigger_consumers_are_installed_only_when_asked():
    plain = manifests.install_objects("1.2.3", [])
    assert not [o for o in plain if "trigger-controller" in o["metadata"]["name"]]
    some = manifests.install_objects("1.2.3", [], ("nats",))
    assert [o["metadata"]["name"] for o in some if "trigger-controller" in o["metadata"]["name"]] == [
        "nats-trigger-controller"] * 4
