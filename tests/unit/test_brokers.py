"""The brokers of the event triggers (brokers/): the manifest renderer's names, labels, ports and Pod Security, and
the image recipes, which the builder must parse and key on their downloads' versions. Nothing here builds an image
or starts a broker."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from scripts import REPO, load_script

from brokers import manifests
from kubeless_api import brokers, meta
from kubectl_kubeless import manifests as install_manifests

build = load_script("kubeless_image_builder", REPO / "hack" / "images" / "build.py")
BROKERS = REPO / "brokers"
VERSION = "9.9.9"


def objects() -> dict[tuple[str, str], dict]:
    return {(obj["kind"], obj["metadata"]["name"]): obj for obj in manifests.broker_objects(VERSION)}


def workloads() -> list[dict]:
    return [obj for obj in manifests.broker_objects(VERSION) if obj["kind"] in ("StatefulSet", "Deployment")]


def test_the_objects_are_named_as_kubeless_named_them():
    assert list(objects()) == [("Namespace", "kubeless"), ("StatefulSet", "kafka"), ("Service", "kafka"),
                               ("Deployment", "nats"), ("Service", "nats"),
                               ("Deployment", "kinesis"), ("Service", "kinesis")]
    assert {obj["metadata"].get("namespace") for obj in manifests.broker_objects(VERSION)} == {None, "kubeless"}


def test_kafka_is_where_kubeless_topic_execs():
    kafka = objects()[("StatefulSet", "kafka")]
    pod = kafka["spec"]["template"]
    assert pod["metadata"]["labels"] == {"kubeless": "kafka"}
    assert [container["name"] for container in pod["spec"]["containers"]] == ["broker"]
    assert kafka["spec"]["replicas"] == 1 and kafka["spec"]["serviceName"] == "kafka"


@pytest.mark.parametrize(("name", "ports"), [
    ("kafka", {"kafka": 9092}), ("nats", {"client": 4222, "monitor": 8222}), ("kinesis", {"http": 4567})])
def test_each_service_selects_its_pods_and_their_named_ports(name: str, ports: dict[str, int]):
    service = objects()[("Service", name)]
    pod = next(obj for obj in workloads() if obj["metadata"]["name"] == name)["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert {port["name"]: port["port"] for port in service["spec"]["ports"]} == ports
    assert {port["targetPort"] for port in service["spec"]["ports"]} == set(ports)
    assert {port["name"]: port["containerPort"] for port in container["ports"]} == ports


def test_the_addresses_triggers_default_to_name_these_services():
    assert brokers.KAFKA_BROKERS == "kafka.kubeless:9092"
    assert brokers.NATS_URL == "nats://nats.kubeless:4222"
    assert brokers.KINESIS_ENDPOINT == "http://kinesis.kubeless:4567"


@pytest.mark.parametrize("workload", workloads(), ids=lambda obj: obj["metadata"]["name"])
def test_every_pod_passes_pod_security_restricted(workload: dict):
    spec = workload["spec"]["template"]["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == 1000
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert all("hostPath" not in volume for volume in spec["volumes"])
    assert not {"hostNetwork", "hostPID", "hostIPC"} & set(spec)
    for container in spec["containers"]:
        security = container["securityContext"]
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"] == {"drop": ["ALL"]}
        assert "privileged" not in security and "runAsUser" not in security


def test_the_namespace_is_the_one_an_install_creates():
    installed = install_manifests.install_objects(VERSION, install_manifests.load_catalogue())
    assert manifests.namespace() in installed


@pytest.mark.parametrize("workload", workloads(), ids=lambda obj: obj["metadata"]["name"])
def test_every_pod_runs_its_local_image_with_a_probe_and_a_memory_limit(workload: dict):
    name = workload["metadata"]["name"]
    (container,) = workload["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"localhost/kubeless/{name}:{VERSION}"
    assert container["imagePullPolicy"] == "IfNotPresent"
    probe = container["readinessProbe"]
    probed_port = (probe.get("tcpSocket") or probe["httpGet"])["port"]
    assert probed_port in {port["name"] for port in container["ports"]}
    assert container["resources"]["limits"]["memory"].endswith("Mi")
    # no service links: Kubernetes would set KAFKA_PORT=tcp://... and the like in every pod of the namespace
    assert workload["spec"]["template"]["spec"]["enableServiceLinks"] is False


def test_kafka_gets_768Mi_and_its_data_and_tmp_folders():
    (container,) = objects()[("StatefulSet", "kafka")]["spec"]["template"]["spec"]["containers"]
    assert container["resources"]["limits"]["memory"] == "768Mi"
    assert {mount["mountPath"] for mount in container["volumeMounts"]} == {"/var/lib/kafka", "/tmp"}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_kafka_advertises_the_address_that_triggers_default_to():
    (container,) = objects()[("StatefulSet", "kafka")]["spec"]["template"]["spec"]["containers"]
    advertised = f"PLAINTEXT://{brokers.KAFKA_BROKERS}"
    assert {"name": "KAFKA_ADVERTISED_LISTENERS", "value": advertised} in container["env"]
    # the image's own default, for a pod started without the manifest
    assert f"${{KAFKA_ADVERTISED_LISTENERS:-{advertised}}}" in (BROKERS / "kafka" / "kafka-server.sh").read_text()


def test_the_data_folders_are_the_ones_the_images_write_to():
    kafka_script = (BROKERS / "kafka" / "kafka-server.sh").read_text()
    assert f"data=${{KAFKA_DATA_DIR:-{manifests.KAFKA_DATA_DIR}}}" in kafka_script
    assert f"store_dir: {manifests.NATS_DATA_DIR}\n" in (BROKERS / "nats" / "nats-server.conf").read_text()
    (container,) = objects()[("Deployment", "nats")]["spec"]["template"]["spec"]["containers"]
    assert {mount["mountPath"] for mount in container["volumeMounts"]} == {manifests.NATS_DATA_DIR}


def test_the_module_prints_one_list_that_kubectl_applies():
    printed = subprocess.run([sys.executable, "-m", "brokers.manifests"], cwd=REPO, capture_output=True,
                             text=True, check=True).stdout
    document = json.loads(printed)
    assert (document["apiVersion"], document["kind"]) == ("v1", "List")
    assert document["items"] == manifests.broker_objects(meta.project_version())


# --- the image recipes -----------------------------------------------------------------------------------------

def recipe(name: str):
    return build.load_recipe(BROKERS / name)


def test_the_recipes_parse_and_are_found_with_every_other():
    assert {name: (recipe(name).name, recipe(name).parent) for name in ("kafka", "nats", "kinesis")} == {
        "kafka": ("kafka", "base"), "nats": ("nats", "base"), "kinesis": ("kinesis", "python")}
    assert {BROKERS / "kafka", BROKERS / "nats", BROKERS / "kinesis"} <= set(build.find_recipes())
    assert "openjdk-17-jre-headless" in recipe("kafka").debs
    assert recipe("nats").debs == ("nats-server",)


def test_the_kinesis_image_builds_on_the_python_runtime_image():
    python = build.load_recipe(REPO / "runtimes" / "python")
    order = build.build_order([recipe("kinesis"), python], [build.IMAGES_DIR])
    assert [item.name for item in order] == ["base", "python", "kinesis"]


def test_the_download_scripts_and_the_requirements_key_the_images():
    assert build.run_inputs(recipe("kafka")) == [BROKERS / "kafka" / "fetch-jars.sh"]
    assert build.run_inputs(recipe("kinesis")) == [BROKERS / "kinesis" / "fetch-moto.sh",
                                                   BROKERS / "kinesis" / "requirements.txt"]


def test_a_new_kafka_version_is_a_new_image():
    kafka = recipe("kafka")
    (fetch,) = [command for command in kafka.run if any("fetch-jars.sh" in arg for arg in command)]
    assert "fetch-jars.sh 4.4.0)" in fetch[-1]

    def key(text: str) -> str:
        return build.content_key(recipe_text=text, inputs=build.key_inputs(kafka, REPO), deb_files=[],
                                 parent_key=None, tag=VERSION)

    assert key(kafka.text) != key(kafka.text.replace("4.4.0", "4.4.1"))


def test_every_kafka_tool_link_names_a_tool_the_script_knows():
    links = {link: target for link, target in recipe("kafka").symlinks if link.startswith("/opt/kafka/bin/")}
    assert set(links.values()) == {"kafka-tool.sh"}
    script = (BROKERS / "kafka" / "kafka-tool.sh").read_text()
    for link in links:
        assert f"  {link.rsplit('/', 1)[1]}) class=" in script
    assert {"/opt/kafka/bin/kafka-topics.sh", "/opt/kafka/bin/kafka-console-producer.sh"} <= set(links)


def test_the_kinesis_requirements_are_pinned():
    lines = [line for line in (BROKERS / "kinesis" / "requirements.txt").read_text().splitlines()
             if line and not line.startswith("#")]
    assert lines and all("==" in line for line in lines)
    assert any(line.startswith("moto==") for line in lines)
