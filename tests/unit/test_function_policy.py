"""What a Function may ask for: shapes of its free-form parts, the refused escalations, Pod Security "restricted"."""
from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from kubeless_api import meta, shapes
from kubeless_api.config import ConfigError, KubelessConfig
from kubeless_controller.functions import render

REPO = Path(__file__).resolve().parents[2]
CATALOGUE = json.loads((REPO / "kubeless_api" / "catalogue.json").read_text())
CONFIG = KubelessConfig(runtime_images=CATALOGUE, provision_image="localhost/kubeless/provision:test")
POD = "spec.deployment.spec.template.spec"


def function(**spec) -> dict:
    base = {"handler": "hello.hello", "runtime": "python3.11", "function": "def hello(e, c): return 1\n",
            "function-content-type": "text", "deps": "requests\n"}
    return {"apiVersion": meta.API_VERSION, "kind": "Function",
            "metadata": {"name": "hello", "namespace": "ns", "uid": "uid-1", "generation": 1, "labels": {}},
            "spec": {**base, **spec}}


def pod(spec: dict) -> dict:
    return {"spec": {"template": {"spec": spec}}}


def render_error(fn: dict, config: KubelessConfig = CONFIG) -> str:
    with pytest.raises(render.RenderError) as raised:
        render.children(fn, config)
    return str(raised.value)


def deployment_pod(fn: dict, config: KubelessConfig = CONFIG) -> dict:
    children = {child["kind"]: child for child in render.children(fn, config)}
    return children["Deployment"]["spec"]["template"]["spec"]


# --- every wrong type is an InvalidSpec that names the field ---------------------------------------------------

WRONG_SHAPES = [
    ({"deployment": "x"}, "spec.deployment: must be an object, not a string"),
    ({"deployment": []}, "spec.deployment: must be an object, not a list"),
    ({"deployment": {"spec": 1}}, "spec.deployment.spec: must be an object, not a number"),
    ({"deployment": {"spec": {"replicas": "two"}}}, "spec.deployment.spec.replicas: must be a number, not a string"),
    ({"deployment": {"spec": {"replicas": True}}}, "spec.deployment.spec.replicas: must be a number, not a boolean"),
    ({"deployment": {"metadata": {"labels": {"a": 1}}}}, "spec.deployment.metadata.labels.a: must be a string"),
    ({"deployment": {"metadata": {"annotations": ["a"]}}}, "spec.deployment.metadata.annotations: must be an object"),
    ({"deployment": {"spec": {"template": "t"}}}, "spec.deployment.spec.template: must be an object"),
    ({"deployment": pod("s")}, f"{POD}: must be an object, not a string"),
    ({"deployment": pod({"containers": "c"})}, f"{POD}.containers: must be a list, not a string"),
    ({"deployment": pod({"containers": [1]})}, f"{POD}.containers[0]: must be an object, not a number"),
    ({"deployment": pod({"containers": [{"env": {"A": "1"}}]})}, f"{POD}.containers[0].env: must be a list"),
    ({"deployment": pod({"containers": [{"env": ["A=1"]}]})}, f"{POD}.containers[0].env[0]: must be an object"),
    ({"deployment": pod({"containers": [{"env": [{"name": "A", "value": 1}]}]})},
     f"{POD}.containers[0].env[0].value: must be a string, not a number"),
    ({"deployment": pod({"containers": [{"ports": [{"containerPort": "80"}]}]})},
     f"{POD}.containers[0].ports[0].containerPort: must be a number"),
    ({"deployment": pod({"containers": [{"resources": {"limits": {"memory": []}}}]})},
     f"{POD}.containers[0].resources.limits.memory: must be a number or a string, not a list"),
    ({"deployment": pod({"containers": [{"resources": "big"}]})}, f"{POD}.containers[0].resources: must be an object"),
    ({"deployment": pod({"containers": [{"volumeMounts": [{"mountPath": 1}]}]})},
     f"{POD}.containers[0].volumeMounts[0].mountPath: must be a string"),
    ({"deployment": pod({"containers": [{"securityContext": {"runAsUser": "root"}}]})},
     f"{POD}.containers[0].securityContext.runAsUser: must be a number"),
    ({"deployment": pod({"initContainers": {"a": 1}})}, f"{POD}.initContainers: must be a list"),
    ({"deployment": pod({"volumes": [{"name": 3}]})}, f"{POD}.volumes[0].name: must be a string"),
    ({"deployment": pod({"nodeSelector": {"disk": True}})}, f"{POD}.nodeSelector.disk: must be a string"),
    ({"deployment": pod({"securityContext": []})}, f"{POD}.securityContext: must be an object, not a list"),
    ({"deployment": pod({"serviceAccountName": 5})}, f"{POD}.serviceAccountName: must be a string"),
    ({"service": "s"}, "spec.service: must be an object, not a string"),
    ({"service": {"ports": {"port": 80}}}, "spec.service.ports: must be a list, not an object"),
    ({"service": {"ports": [{"port": "80"}]}}, "spec.service.ports[0].port: must be a number, not a string"),
    ({"service": {"ports": [{"port": 80, "targetPort": [8080]}]}},
     "spec.service.ports[0].targetPort: must be a number or a string, not a list"),
    ({"service": {"selector": {"a": 1}}}, "spec.service.selector.a: must be a string"),
    ({"horizontalPodAutoscaler": []}, "spec.horizontalPodAutoscaler: must be an object, not a list"),
    ({"horizontalPodAutoscaler": {"spec": {"maxReplicas": "3"}}},
     "spec.horizontalPodAutoscaler.spec.maxReplicas: must be a number, not a string"),
    ({"horizontalPodAutoscaler": {"spec": {"maxReplicas": 3, "metrics": {}}}},
     "spec.horizontalPodAutoscaler.spec.metrics: must be a list"),
    ({"horizontalPodAutoscaler": {"spec": {"maxReplicas": 3, "metrics": [{"resource": "cpu"}]}}},
     "spec.horizontalPodAutoscaler.spec.metrics[0].resource: must be an object"),
]


@pytest.mark.parametrize("spec, message", WRONG_SHAPES)
def test_a_wrong_type_is_a_render_error_naming_the_field(spec: dict, message: str):
    assert message in render_error(function(**spec))


def test_a_kubeless_config_deployment_of_the_wrong_shape_names_the_key():
    config = replace(CONFIG, deployment={"spec": {"template": {"spec": {"containers": "x"}}}})
    assert render_error(function(), config) == \
        "kubeless-config deployment.spec.template.spec.containers: must be a list, not a string"


@pytest.mark.parametrize("data, message", [
    ({"allow-privileged-functions": "yes"}, 'allow-privileged-functions must be "true" or "false"'),
    ({"runtime-images": '{"ID": "python"}'}, "not a list of runtimes"),
    ({"deployment": '"x"'}, "deployment must be a JSON object"),
])
def test_a_kubeless_config_of_the_wrong_shape_is_refused(data: dict, message: str):
    with pytest.raises(ConfigError, match=re.escape(message)):
        KubelessConfig.from_data(data)


def test_nulls_are_unset_fields_and_unknown_fields_are_the_api_servers():
    shapes.check_function_spec({"deployment": {"spec": {"replicas": None, "paused": "whatever"}}, "service": None})


# --- what only a trusted author may have -----------------------------------------------------------------------

REFUSED = [
    (pod({"hostNetwork": True}), f"{POD}.hostNetwork"),
    (pod({"hostPID": True}), f"{POD}.hostPID"),
    (pod({"hostIPC": True}), f"{POD}.hostIPC"),
    (pod({"volumes": [{"name": "root", "hostPath": {"path": "/"}}]}), f"{POD}.volumes[0].hostPath"),
    (pod({"containers": [{"securityContext": {"privileged": True}}]}), f"{POD}.containers[0].securityContext.privileged"),
    (pod({"initContainers": [{"name": "x", "securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}}]}),
     f"{POD}.initContainers[0].securityContext.capabilities.add"),
    (pod({"containers": [{"ports": [{"containerPort": 80, "hostPort": 80}]}]}), f"{POD}.containers[0].ports[0].hostPort"),
]


@pytest.mark.parametrize("deployment, field", REFUSED)
def test_escalations_are_refused_naming_the_field(deployment: dict, field: str):
    assert render_error(function(deployment=deployment)).startswith(field + ":")


@pytest.mark.parametrize("service, field", [
    ({"type": "NodePort"}, "spec.service.type"), ({"type": "LoadBalancer"}, "spec.service.type"),
    ({"externalIPs": ["192.0.2.1"]}, "spec.service.externalIPs"),
    ({"ports": [{"port": 8080, "nodePort": 30080}]}, "spec.service.ports[0].nodePort"),
])
def test_services_reaching_outside_the_cluster_are_refused(service: dict, field: str):
    assert render_error(function(service=service)).startswith(field + ":")


def test_a_trusting_cluster_allows_them():
    trusted = replace(CONFIG, allow_privileged_functions=True)
    for deployment, _ in REFUSED:
        render.children(function(deployment=deployment), trusted)
    assert KubelessConfig.from_data({"allow-privileged-functions": "true"}).allow_privileged_functions


def test_kubeless_cli_defaults_are_not_escalations():
    """What `function deploy` writes: nodePort 0, ClusterIP, a service account by name."""
    render.children(function(service={"ports": [{"name": "http-function-port", "port": 8080, "targetPort": 8080,
                                                 "protocol": "TCP", "nodePort": 0}], "type": "ClusterIP"},
                             deployment=pod({"serviceAccountName": "builder"})), CONFIG)


# --- Pod Security "restricted" ---------------------------------------------------------------------------------

def test_every_container_and_the_pod_are_restricted():
    spec = deployment_pod(function())
    assert spec["securityContext"] == {"runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000, "runAsNonRoot": True,
                                       "seccompProfile": {"type": "RuntimeDefault"}}
    for container in [*spec["initContainers"], *spec["containers"]]:
        security = container["securityContext"]
        assert security["seccompProfile"] == {"type": "RuntimeDefault"}, container["name"]
        assert security["runAsNonRoot"] is True and security["allowPrivilegeEscalation"] is False
        assert security["capabilities"]["drop"] == ["ALL"]
    assert len(spec["initContainers"]) >= 2


def test_a_users_security_context_is_merged_field_by_field():
    fn = function(deployment=pod({
        "securityContext": {"runAsUser": 2000},
        "containers": [{"securityContext": {"readOnlyRootFilesystem": True, "capabilities": {"drop": ["NET_RAW"]}}},
                       {"name": "sidecar", "image": "side:1"}]}))
    spec = deployment_pod(fn)
    assert spec["securityContext"] == {"runAsUser": 2000, "runAsGroup": 1000, "fsGroup": 1000, "runAsNonRoot": True,
                                       "seccompProfile": {"type": "RuntimeDefault"}}
    main, sidecar = spec["containers"]
    assert main["securityContext"]["readOnlyRootFilesystem"] is True
    assert main["securityContext"]["capabilities"]["drop"] == ["ALL", "NET_RAW"]
    assert main["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert sidecar["securityContext"]["allowPrivilegeEscalation"] is False, "a sidecar is restricted too"


def test_the_service_account_token_is_mounted_only_for_a_named_service_account():
    assert deployment_pod(function())["automountServiceAccountToken"] is False
    assert deployment_pod(function(deployment=pod({"serviceAccountName": "reader"})))[
        "automountServiceAccountToken"] is True
    assert deployment_pod(function(deployment=pod({"serviceAccountName": "reader",
                                                   "automountServiceAccountToken": False})))[
        "automountServiceAccountToken"] is False


def test_a_service_account_must_exist_in_the_functions_namespace():
    from test_controller_reconcile import FUNCTION_PATH, FakeApi, make_controller, ready  # the in-memory API

    from kubeless_api.resources import path

    fake = FakeApi()
    fake.objects[FUNCTION_PATH] = function(deployment=pod({"serviceAccountName": "ghost"}))
    controller = make_controller(fake)
    controller.reconcile("ns/hello")
    assert ready(fake) == ("False", "InvalidSpec", f"{POD}.serviceAccountName: service account ghost does not "
                           "exist in namespace ns; create it, or deploy without --service-account")
    fake.objects[path("v1", "ServiceAccount", "ns", "ghost")] = {"metadata": {"name": "ghost"}}
    fake.objects[FUNCTION_PATH]["metadata"]["generation"] = 2
    controller.reconcile("ns/hello")
    assert ready(fake)[:2] == ("False", "Deploying")


def test_the_runtime_drains_for_the_pods_grace_period():
    def grace(fn: dict) -> str:
        main = deployment_pod(fn)["containers"][0]
        return next(e["value"] for e in main["env"] if e["name"] == "FUNC_GRACE_PERIOD")

    assert grace(function()) == "30"
    assert grace(function(deployment=pod({"terminationGracePeriodSeconds": 90}))) == "90"
