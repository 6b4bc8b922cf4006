"""The HTTP trigger reconciler against the in-memory API server of the function reconciler's tests."""
from __future__ import annotations

import copy

import pytest
from test_controller_reconcile import NOW, FakeApi, settings

from kubeless_api import meta, schema
from kubeless_api.resources import object_path, path
from kubeless_controller.client import ApiError
from kubeless_controller.runner import Runner
from kubeless_controller.settings import Environment
from kubeless_controller.triggers.http import HTTPTriggerReconciler
from kubeless_controller.workqueue import Backoff, WorkQueue

TRIGGER_PATH = path(meta.API_VERSION, "HTTPTrigger", "ns", "web")
INGRESS_PATH = path("networking.k8s.io/v1", "Ingress", "ns", "web")
FUNCTION_PATH = path(meta.API_VERSION, "Function", "ns", "hello")


class TriggerApi(FakeApi):
    """Server-side apply as the real one in two more respects: a metadata-only body merges that metadata, and an
    apply of the object leaves its status alone."""

    def apply(self, obj: dict, *, subresource: str | None = None) -> dict:
        stored = self.objects.get(object_path(obj))
        if subresource is None and stored is not None and set(obj) == {"apiVersion", "kind", "metadata"}:
            with self.lock:
                self._check("apply", object_path(obj))
                stored["metadata"].update(copy.deepcopy(obj["metadata"]))
                return copy.deepcopy(self._stamp(stored))
        result = super().apply(obj, subresource=subresource)
        if subresource is None and stored is not None and "status" in stored:
            self.objects[object_path(obj)]["status"] = result["status"] = stored["status"]
        return result


@pytest.fixture
def api() -> TriggerApi:
    api = TriggerApi()
    api.objects[TRIGGER_PATH] = {
        "apiVersion": meta.API_VERSION, "kind": "HTTPTrigger",
        "metadata": {"name": "web", "namespace": "ns", "uid": "trigger-uid", "generation": 1, "resourceVersion": "1",
                     "labels": {"created-by": "kubeless"}},
        "spec": {schema.FUNCTION_NAME: "hello", schema.HOST_NAME: "hello.example", "path": "echo"}}
    return api


def add_function(api: TriggerApi) -> None:
    api.objects[FUNCTION_PATH] = {"apiVersion": meta.API_VERSION, "kind": "Function", "metadata": {
        "name": "hello", "namespace": "ns", "uid": "fn-uid", "resourceVersion": "1"}, "spec": {"function": "code"}}
    api.objects[path("v1", "Service", "ns", "hello")] = {"apiVersion": "v1", "kind": "Service", "metadata": {
        "name": "hello", "namespace": "ns", "resourceVersion": "1",
        "labels": meta.function_labels("hello")}, "spec": {"ports": [{"port": 8081, "targetPort": 8080}]}}
    api.objects[path("networking.k8s.io/v1", "IngressClass", None, "nginx")] = {
        "apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": {"name": "nginx"}}


def reconciled(api: TriggerApi) -> Runner:
    runner = Runner(api, Environment(pod_name="pod-1", workers=1), HTTPTriggerReconciler(),
                    queue=WorkQueue(Backoff(0.01, 0.05)), now=lambda: NOW)
    runner.settings = settings()
    runner.informers = runner.build_informers("")
    for informer in runner.informers.values():
        informer.relist()
    runner.process("ns/web")
    return runner


def ready(api: TriggerApi) -> dict:
    return next(c for c in api.objects[TRIGGER_PATH]["status"]["conditions"] if c["type"] == "Ready")


def test_a_trigger_of_a_missing_function_says_so_and_applies_nothing(api: TriggerApi):
    reconciled(api)
    assert (ready(api)["status"], ready(api)["reason"]) == ("False", "FunctionNotFound")
    assert INGRESS_PATH not in api.objects


def test_a_trigger_becomes_an_ingress_to_the_services_port_and_follows_its_function(api: TriggerApi):
    add_function(api)
    reconciled(api)
    ingress = api.objects[INGRESS_PATH]
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "hello", "port": {"number": 8081}}
    assert ingress["metadata"]["ownerReferences"][0]["uid"] == "trigger-uid"
    assert api.objects[TRIGGER_PATH]["metadata"]["ownerReferences"] == [
        {"apiVersion": meta.API_VERSION, "kind": "Function", "name": "hello", "uid": "fn-uid"}]
    assert (ready(api)["status"], ready(api)["reason"]) == ("False", "AddressPending")


def test_the_published_address_makes_the_trigger_ready_with_its_url(api: TriggerApi):
    add_function(api)
    reconciled(api)
    api.objects[INGRESS_PATH]["status"] = {"loadBalancer": {"ingress": [{"ip": "10.1.2.3"}]}}
    reconciled(api)
    status = api.objects[TRIGGER_PATH]["status"]
    assert (ready(api)["status"], ready(api)["reason"]) == ("True", "RouteReady")
    assert (status["address"], status["url"]) == ("10.1.2.3", "http://hello.example/echo")


def test_an_unknown_ingress_class_is_reported(api: TriggerApi):
    add_function(api)
    api.objects[TRIGGER_PATH]["spec"]["gateway"] = "kong"
    reconciled(api)
    assert ready(api)["reason"] == "IngressClassNotFound"
    assert "kong" in ready(api)["message"]


def test_a_switch_to_gateway_api_waits_for_the_gateway_then_replaces_the_ingress_by_a_route(api: TriggerApi):
    add_function(api)
    reconciled(api)
    api.objects[TRIGGER_PATH]["spec"]["gateway"] = "gateway-api"
    api.objects[TRIGGER_PATH]["metadata"]["generation"] = 2
    reconciled(api)
    assert ready(api)["reason"] == "GatewayNotFound"
    assert schema.DEFAULT_GATEWAY_REF in ready(api)["message"]
    assert INGRESS_PATH in api.objects, "the old route serves until the new one can be made"
    namespace, name = schema.DEFAULT_GATEWAY_REF.split("/")
    api.objects[path("gateway.networking.k8s.io/v1", "Gateway", namespace, name)] = {
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
        "metadata": {"name": name, "namespace": namespace},
        "status": {"addresses": [{"type": "IPAddress", "value": "10.1.2.3"}]}}
    reconciled(api)
    assert INGRESS_PATH not in api.objects
    route = api.objects[path("gateway.networking.k8s.io/v1", "HTTPRoute", "ns", "web")]
    assert route["spec"]["parentRefs"][0]["name"] == name
    assert ready(api)["reason"] == "AddressPending", "until the Gateway accepts the route"
    route["status"] = {"parents": [{"conditions": [{"type": "Accepted", "status": "True"}]}]}
    reconciled(api)
    assert (ready(api)["status"], api.objects[TRIGGER_PATH]["status"]["url"]) == ("True", "http://hello.example/echo")


def test_a_functions_change_requeues_the_triggers_that_name_it(api: TriggerApi):
    add_function(api)
    runner = reconciled(api)
    while (key := runner.queue.get(timeout=0)) is not None:
        runner.queue.done(key)
    runner.informers["functions"]._update("MODIFIED", {**api.objects[FUNCTION_PATH], "metadata": {
        **api.objects[FUNCTION_PATH]["metadata"], "resourceVersion": "9", "labels": {"x": "y"}}})
    assert runner.queue.get(timeout=0) == "ns/web"


MIDDLEWARE_PATH = path("traefik.io/v1alpha1", "Middleware", "ns", "web-cors")
AUTH_PATH = path("traefik.io/v1alpha1", "Middleware", "ns", "web-basic-auth")


def traefik(api: TriggerApi, **spec) -> None:
    api.objects[path("networking.k8s.io/v1", "IngressClass", None, "traefik")] = {
        "apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": {"name": "traefik"}}
    api.objects[TRIGGER_PATH]["spec"].update(gateway="traefik", **spec)
    api.objects[TRIGGER_PATH]["metadata"]["generation"] += 1


def test_a_traefik_trigger_with_cors_gets_its_middleware_and_loses_it_with_the_flag(api: TriggerApi):
    add_function(api)
    traefik(api, **{schema.CORS_ENABLE: True})
    reconciled(api)
    assert api.objects[MIDDLEWARE_PATH]["metadata"]["ownerReferences"][0]["uid"] == "trigger-uid"
    assert api.objects[INGRESS_PATH]["metadata"]["annotations"][
        "traefik.ingress.kubernetes.io/router.middlewares"] == "ns-web-cors@kubernetescrd"
    traefik(api, **{schema.CORS_ENABLE: False})
    reconciled(api)
    assert MIDDLEWARE_PATH not in api.objects
    assert "traefik.ingress.kubernetes.io/router.middlewares" not in api.objects[INGRESS_PATH]["metadata"].get(
        "annotations", {})


def test_a_middleware_where_traefiks_crds_are_missing_is_an_invalid_spec_not_a_retry(api: TriggerApi):
    add_function(api)
    traefik(api, **{schema.BASIC_AUTH_SECRET: "users"})
    api.fail[("apply", AUTH_PATH)] = ApiError(404, "NotFound", "the server could not find the requested resource")
    reconciled(api)
    assert (ready(api)["status"], ready(api)["reason"]) == ("False", "InvalidSpec")
    assert "Middleware web-basic-auth" in ready(api)["message"] and INGRESS_PATH not in api.objects
