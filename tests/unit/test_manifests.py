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
