"""The pure renderers: a Function (plus kubeless-config) in, the objects that run it out."""
from __future__ import annotations

import copy
from dataclasses import replace
import json
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


from kubeless_api import meta
from kubeless_api.config import KubelessConfig
from kubeless_controller.functions import render

CATALOGUE = json.loads((REPO / "kubeless_api" / "catalogue.json").read_text())
CONFIG = KubelessConfig(runtime_images=CATALOGUE, provision_image="localhost/kubeless/provision:test")
HELLO = "def hello(event, context):\n    return event['data']\n"


def function(name: str = "hello", **spec) -> dict:
    base = {"handler": "hello.hello", "runtime": "python3.11", "function": HELLO,
            "function-content-type": "text", "deps": ""}
    return {"apiVersion": meta.API_VERSION, "kind": "Function",
            "metadata": {"name": name, "namespace": "ns", "uid": "uid-1", "generation": 1,
                         "labels": {"team": "a"}},
            "spec": {**base, **spec}}


def by_kind(objects: list[dict]) -> dict[str, dict]:
    return {obj["kind"]: obj for obj in objects}


def pod_spec(fn: dict, config: KubelessConfig = CONFIG) -> dict:
    return by_kind(render.children(fn, config))["Deployment"]["spec"]["template"]["spec"]


def env_of(container: dict) -> dict[str, str]:
    return {item["name"]: item.get("value") for item in container.get("env", [])}


# --- children --------------------------------------------------------------------------------------------------

def test_children_are_configmap_service_deployment_in_apply_order_and_owned_by_the_function():
    objects = render.children(function(), CONFIG)
    assert [obj["kind"] for obj in objects] == ["ConfigMap", "Service", "Deployment"]
    for obj in objects:
        metadata = obj["metadata"]
        assert (metadata["name"], metadata["namespace"]) == ("hello", "ns")
        assert metadata["ownerReferences"] == [{"apiVersion": meta.API_VERSION, "kind": "Function", "name": "hello",
                                            "uid": "uid-1", "controller": True, "blockOwnerDeletion": True}]
        assert metadata["labels"] == {"team": "a", "created-by": "kubeless", "function": "hello"}


def test_configmap_holds_handler_code_under_its_file_name_and_the_deps_file():
    data = by_kind(render.children(function(deps="requests\n"), CONFIG))["ConfigMap"]["data"]
    assert data == {"handler": "hello.hello", "hello.py": HELLO, "requirements.txt": "requests\n"}


def test_archive_code_keeps_the_bare_module_name():
    data = by_kind(render.children(function(**{"function-content-type": "base64+zip", "function": "UEs="}), CONFIG))["ConfigMap"]["data"]
    assert data["hello"] == "UEs="


def test_code_over_the_configmap_limit_is_a_render_error():
    with pytest.raises(render.RenderError, match="over the ConfigMap limit"):
        render.children(function(function="x" * (meta.CONFIGMAP_LIMIT + 1)), CONFIG)


def test_default_service_exposes_the_function_port_to_the_function_pods():
    service = by_kind(render.children(function(), CONFIG))["Service"]
    assert service["spec"] == {
        "ports": [{"name": meta.FUNCTION_PORT_NAME, "port": 8080, "targetPort": 8080, "protocol": "TCP"}],
        "selector": {"created-by": "kubeless", "function": "hello"}, "type": "ClusterIP"}


def test_service_from_the_cli_drops_zero_node_port_and_empty_cluster_ip():
    fn = function(service={"ports": [{"name": "http-function-port", "port": 80, "targetPort": 9000,
                                      "protocol": "TCP", "nodePort": 0}], "clusterIP": "", "type": "ClusterIP"})
    objects = by_kind(render.children(fn, CONFIG))
    assert objects["Service"]["spec"]["ports"] == [{"name": "http-function-port", "port": 80, "targetPort": 9000,
                                                    "protocol": "TCP"}]
    assert "clusterIP" not in objects["Service"]["spec"]
    main = objects["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert main["ports"] == [{"containerPort": 9000, "name": "http", "protocol": "TCP"}]
    assert env_of(main)["FUNC_PORT"] == "9000"


def test_headless_service_keeps_cluster_ip_none():
    fn = function(service={"clusterIP": "None"})
    assert by_kind(render.children(fn, CONFIG))["Service"]["spec"]["clusterIP"] == "None"


# --- Deployment ------------------------------------------------------------------------------------------------

def test_deployment_runs_the_runtime_image_with_the_kubeless_environment():
    deployment = by_kind(render.children(function(timeout="30"), CONFIG))["Deployment"]
    assert deployment["spec"]["selector"] == {"matchLabels": {"created-by": "kubeless", "function": "hello"}}
    assert deployment["spec"]["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0}}
    template = deployment["spec"]["template"]
    assert template["metadata"]["labels"] == {"team": "a", "created-by": "kubeless", "function": "hello"}
    assert template["metadata"]["annotations"]["prometheus.io/port"] == "8080"
    main = template["spec"]["containers"][0]
    assert main["name"] == "hello"
    assert main["image"] == "localhost/kubeless/python:0.1.0"
    env = env_of(main)
    assert env["FUNC_HANDLER"] == "hello" and env["MOD_NAME"] == "hello"
    assert env["FUNC_TIMEOUT"] == "30" and env["FUNC_RUNTIME"] == "python3.11"
    assert env["FUNC_MEMORY_LIMIT"] == "0" and env["FUNC_PORT"] == "8080"
    names = [item["name"] for item in main["env"]]
    assert names.index("KUBELESS_INSTALL_VOLUME") < names.index("PYTHONPATH"), "$(VAR) expands only earlier vars"
    assert main["volumeMounts"] == [{"name": "hello", "mountPath": meta.INSTALL_VOLUME}]
    assert main["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert main["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": 8080}


def test_pod_runs_as_user_1000_without_a_service_account_token():
    spec = pod_spec(function())
    assert spec["securityContext"]["runAsUser"] == 1000
    assert spec["automountServiceAccountToken"] is False
    assert all(c["securityContext"]["allowPrivilegeEscalation"] is False
               for c in [*spec["containers"], *spec["initContainers"]])


def test_no_deps_means_only_the_prepare_init_container():
    spec = pod_spec(function())
    assert [c["name"] for c in spec["initContainers"]] == ["prepare"]
    prepare = spec["initContainers"][0]
    assert prepare["image"] == CONFIG.provision_image
    assert prepare["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert "cp /src/hello.py /kubeless/hello.py" in prepare["command"][2]
    assert {v["name"] for v in spec["volumes"]} == {"hello", "hello-deps"}


def test_deps_add_an_install_container_that_checks_the_deps_hash():
    deps = "requests==2.0\n"
    install = pod_spec(function(deps=deps))["initContainers"][1]
    assert install["name"] == "install"
    assert install["image"] == "localhost/kubeless/python-deps:0.1.0"
    assert render.sha256_hex(deps) in install["command"][2]
    assert "pip install" in install["command"][2]
    assert env_of(install)["KUBELESS_DEPS_FILE"] == "/kubeless/requirements.txt"


def test_install_runs_for_deps_inside_the_archive():
    spec = pod_spec(function(**{"function-content-type": "base64+zip+deps", "function": "UEs="}))
    assert [c["name"] for c in spec["initContainers"]] == ["prepare", "install"]
    assert "requirements.txt" not in spec["initContainers"][0]["command"][2]


def test_deps_for_a_runtime_without_installation_is_a_render_error():
    catalogue = copy.deepcopy(CATALOGUE)
    images = catalogue[0]["versions"][0]["images"]
    catalogue[0]["versions"][0]["images"] = [image for image in images if image["phase"] != "installation"]
    with pytest.raises(render.RenderError, match="cannot install dependencies"):
        render.children(function(deps="x"), replace(CONFIG, runtime_images=catalogue))


def test_compilation_phase_adds_a_compile_container():
    catalogue = copy.deepcopy(CATALOGUE)
    catalogue[0]["versions"][0]["images"].append({"phase": "compilation", "image": "compiler:1", "command": "make"})
    compile_ = pod_spec_with(catalogue, function())["initContainers"][-1]
    assert compile_["name"] == "compile" and compile_["command"] == ["sh", "-c", "make"]
    assert env_of(compile_)["KUBELESS_FUNC_NAME"] == "hello"


def pod_spec_with(catalogue: list[dict], fn: dict) -> dict:
    return by_kind(render.children(fn, replace(CONFIG, runtime_images=catalogue)))["Deployment"]["spec"]["template"]["spec"]


def test_code_change_changes_the_pod_template_even_without_a_checksum():
    one = pod_spec_and_annotations(function())
    two = pod_spec_and_annotations(function(function=HELLO + "# v2\n"))
    assert one["kubeless.io/content-hash"] != two["kubeless.io/content-hash"]


def pod_spec_and_annotations(fn: dict) -> dict:
    return by_kind(render.children(fn, CONFIG))["Deployment"]["spec"]["template"]["metadata"][
        "annotations"]


def test_custom_image_skips_the_build_steps():
    fn = function(deployment={"spec": {"template": {"spec": {"containers": [{"image": "example/fn:1"}]}}}})
    fn["spec"].pop("runtime")
    objects = by_kind(render.children(fn, CONFIG))
    spec = objects["Deployment"]["spec"]["template"]["spec"]
    assert "initContainers" not in spec
    assert spec["containers"][0]["image"] == "example/fn:1"
    assert objects["ConfigMap"]["data"] == {}


def test_config_default_deployment_merges_under_the_functions_own():
    config = replace(CONFIG, deployment={
        "metadata": {"labels": {"from": "config"}, "annotations": {"note": "x"}},
        "spec": {"replicas": 2, "template": {"metadata": {"labels": {"tier": "fn"}}, "spec": {
            "containers": [{"env": [{"name": "A", "value": "config"}], "resources": {"limits": {"memory": "64Mi"}}}],
            "nodeSelector": {"disk": "ssd"}}}}})
    fn = function(deployment={"spec": {"replicas": 3, "template": {"spec": {"containers": [
        {"env": [{"name": "B", "value": "fn"}], "image": ""}]}}}})
    deployment = by_kind(render.children(fn, config))["Deployment"]
    assert deployment["metadata"]["labels"]["from"] == "config"
    assert deployment["metadata"]["annotations"] == {"note": "x"}
    assert deployment["spec"]["replicas"] == 3
    template = deployment["spec"]["template"]
    assert template["metadata"]["labels"]["tier"] == "fn"
    assert template["spec"]["nodeSelector"] == {"disk": "ssd"}
    main = template["spec"]["containers"][0]
    env = env_of(main)
    assert env["A"] == "config" and env["B"] == "fn"
    assert env["FUNC_MEMORY_LIMIT"] == "64Mi"
    assert main["image"] == "localhost/kubeless/python:0.1.0", "an empty image from the CLI is no custom image"


def test_merge_template_rules():
    defaults = {"a": 1, "nested": {"x": 1, "y": 2}, "containers": [{"name": "c", "env": [{"name": "A"}]}]}
    own = {"a": 2, "nested": {"y": 3}, "empty": "", "containers": [{"env": [{"name": "B"}]}, {"name": "side"}]}
    assert render.merge_template(defaults, own) == {
        "a": 2, "nested": {"x": 1, "y": 3},
        "containers": [{"name": "c", "env": [{"name": "A"}, {"name": "B"}]}, {"name": "side"}]}
    assert defaults["nested"] == {"x": 1, "y": 2}, "inputs are not modified"


def test_openshift_style_empty_security_context_keeps_the_platforms_user():
    config = replace(CONFIG, deployment={"spec": {"template": {"spec": {"securityContext": {}}}}})
    assert pod_spec(function(), config)["securityContext"] == {"runAsNonRoot": True,
                                                                "seccompProfile": {"type": "RuntimeDefault"}}


def test_init_containers_take_the_resources_of_the_first_given_init_container():
    resources = {"limits": {"cpu": "1"}}
    fn = function(deps="x", deployment={"spec": {"template": {"spec": {"initContainers": [{"resources": resources}]}}}})
    assert all(c["resources"] == resources for c in pod_spec(fn)["initContainers"])


# --- prepare script ---------------------------------------------------------------------------------------------

RUNTIME = render.find_runtime(CATALOGUE, "python3.11")


def run_prepare(tmp_path: Path, spec: dict, files: dict[str, bytes]) -> subprocess.CompletedProcess:
    """Run the prepare script for real, with /src and /kubeless moved under tmp_path."""
    src, dst = tmp_path / "src", tmp_path / "kubeless"
    src.mkdir()
    dst.mkdir()
    for name, content in files.items():
        (src / name).write_bytes(content)
    script = render.prepare_script(spec, RUNTIME).replace("/tmp/func", f"{tmp_path}/func").replace(
        meta.SOURCE_VOLUME + "/", f"{src}/").replace(meta.INSTALL_VOLUME, str(dst))
    return subprocess.run(["sh", "-c", script], capture_output=True, text=True)


def test_prepare_copies_text_code_and_deps_and_verifies_the_checksum(tmp_path: Path):
    spec = {"handler": "hello.hello", "function-content-type": "text",
            "checksum": "sha256:" + render.sha256_hex(HELLO), "deps": "greeting==1.0\n"}
    result = run_prepare(tmp_path, spec, {"hello.py": HELLO.encode(), "requirements.txt": b"greeting==1.0\n"})
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "kubeless" / "hello.py").read_text() == HELLO
    assert (tmp_path / "kubeless" / "requirements.txt").read_text() == "greeting==1.0\n"


def test_prepare_leaves_out_an_empty_dependency_file(tmp_path: Path):
    """An empty package.json would break Node's module loading; an absent one is fine for every runtime."""
    spec = {"handler": "hello.hello", "function-content-type": "text", "deps": ""}
    result = run_prepare(tmp_path, spec, {"hello.py": HELLO.encode(), "requirements.txt": b""})
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "kubeless" / "requirements.txt").exists()


def test_prepare_fails_with_a_clear_message_on_a_checksum_mismatch(tmp_path: Path):
    spec = {"handler": "hello.hello", "function-content-type": "text", "checksum": "sha256:" + "0" * 64}
    result = run_prepare(tmp_path, spec, {"hello.py": HELLO.encode(), "requirements.txt": b""})
    assert result.returncode != 0
    assert "checksum mismatch" in result.stderr


def test_prepare_decodes_base64(tmp_path: Path):
    import base64  # noqa: PLC0415

    spec = {"handler": "hello.hello", "function-content-type": "base64"}
    result = run_prepare(tmp_path, spec, {"hello.py": base64.b64encode(HELLO.encode()), "requirements.txt": b""})
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "kubeless" / "hello.py").read_text() == HELLO


def test_bad_checksum_format_is_a_render_error():
    with pytest.raises(render.RenderError, match="sha256"):
        render.prepare_script({"handler": "a.b", "checksum": "md5:abc"}, RUNTIME)


def test_url_code_is_fetched_with_the_url_quoted():
    script = render.prepare_script({"handler": "a.b", "function-content-type": "url",
                                    "function": "https://example.com/f.py?x=1&y=2"}, RUNTIME)
    assert "'https://example.com/f.py?x=1&y=2'" in script


# --- errors ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("spec", "message"), [
    ({"runtime": "cobol85"}, "unknown runtime 'cobol85'; supported: python3.11"),
    ({"handler": "hello"}, "must be <module>.<function>"),
    ({"handler": "a.b.c"}, "must be <module>.<function>"),
    ({"handler": ""}, "needs a handler"),
    ({"horizontalPodAutoscaler": {"spec": {"minReplicas": 1}}}, "maxReplicas"),
])
def test_invalid_specs_raise_render_errors_with_a_useful_message(spec: dict, message: str):
    with pytest.raises(render.RenderError, match=re.escape(message)):
        render.children(function(**spec), CONFIG)


def test_a_function_without_spec_is_a_render_error():
    fn = function()
    fn.pop("spec")
    with pytest.raises(render.RenderError, match="no spec"):
        render.children(fn, CONFIG)


def test_a_runtime_without_a_runtime_image_is_a_render_error():
    catalogue = copy.deepcopy(CATALOGUE)
    catalogue[0]["versions"][0]["images"] = []
    with pytest.raises(render.RenderError, match="no runtime image"):
        render.children(function(), replace(CONFIG, runtime_images=catalogue))


# --- HorizontalPodAutoscaler ----------------------------------------------------------------------------------

def test_kubeless_v2beta1_autoscalers_become_autoscaling_v2():
    fn = function(horizontalPodAutoscaler={"spec": {"minReplicas": 1, "maxReplicas": 3, "metrics": [
        {"type": "Resource", "resource": {"name": "cpu", "targetAverageUtilization": 70}},
        {"type": "Object", "object": {"metricName": "function_calls", "target": {"kind": "Service", "name": "hello"},
                                      "targetValue": "10"}}]}})
    hpa = by_kind(render.children(fn, CONFIG))["HorizontalPodAutoscaler"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "hello"}
    assert hpa["spec"]["metrics"] == [
        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}},
        {"type": "Object", "object": {"metric": {"name": "function_calls"},
                                      "describedObject": {"apiVersion": "v1", "kind": "Service", "name": "hello"},
                                      "target": {"type": "Value", "value": "10"}}}]


def test_an_empty_autoscaler_spec_means_no_autoscaler():
    assert "HorizontalPodAutoscaler" not in by_kind(render.children(function(horizontalPodAutoscaler={}), CONFIG))
