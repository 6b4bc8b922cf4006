"""The reconcile loop and leader election, against an in-memory API server."""
from __future__ import annotations

import copy
import hashlib
import json
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


from kubeless_api import meta
from kubeless_api.config import KubelessConfig
from kubeless_api.resources import object_path, path
from kubeless_controller.client import ApiError
from kubeless_controller.functions import status
from kubeless_controller.functions.reconciler import FunctionReconciler
from kubeless_controller.leader import LeaderElector
from kubeless_controller.copies import contains
from kubeless_controller.runner import Blocked, Runner
from kubeless_controller.settings import Environment, SettingsWatch
from kubeless_controller.workqueue import Backoff, WorkQueue

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
CATALOGUE = (REPO / "kubeless_api" / "catalogue.json").read_text()
FUNCTION_PATH = path(meta.API_VERSION, "Function", "ns", "hello")
PIP_ERROR = "ERROR: No matching distribution found for no-such-package-xyz==1.0"


def defaulted(obj: dict) -> dict:
    """What the API server adds to an applied object, in part: defaults the render never sets, empty values it omits,
    quantities in canonical form, and managedFields."""
    obj["metadata"]["managedFields"] = [{"manager": "kubeless-controller", "operation": "Apply",
                                         "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {}}}]
    spec = obj.get("spec") or {}
    if obj["kind"] == "Deployment":
        spec.setdefault("replicas", 1)
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        spec.get("strategy", {}).get("rollingUpdate", {}).setdefault("maxSurge", "25%")
        pod = spec["template"]["spec"]
        pod.setdefault("restartPolicy", "Always")
        pod.setdefault("dnsPolicy", "ClusterFirst")
        for container in [*pod.get("initContainers", []), *pod["containers"]]:
            container.setdefault("terminationMessagePath", "/dev/termination-log")
            for variable in container.get("env", []):
                if variable.get("value") == "":
                    del variable["value"]
            for amounts in (container.get("resources") or {}).values():
                for name, amount in amounts.items():
                    if amount == "0.5":
                        amounts[name] = "500m"
    if obj["kind"] == "Service":
        spec.setdefault("clusterIP", "10.96.0.42")
        spec.setdefault("sessionAffinity", "None")
    return obj


def selected(obj: dict, label_selector: str | None) -> bool:
    labels = obj["metadata"].get("labels") or {}
    return all(labels.get(name) == value for name, value in
               (term.split("=", 1) for term in (label_selector or "").split(",") if term))


class FakeApi:
    """Objects by path; server-side apply stores the body, defaulted; records every call."""

    def __init__(self):
        self.objects: dict[str, dict] = {}
        self.calls: list[tuple[str, str]] = []
        self.events: list[dict] = []
        self.fail: dict[tuple[str, str], ApiError] = {}
        self.deployment_status: dict = {}
        self.lock = threading.Lock()
        self.version = 0

    def _check(self, verb: str, where: str) -> None:
        self.calls.append((verb, where))
        error = self.fail.get((verb, where))
        if error:
            raise error

    def _stamp(self, obj: dict) -> dict:
        self.version += 1
        obj["metadata"]["resourceVersion"] = str(self.version)
        obj["metadata"].setdefault("uid", f"uid-{self.version}")
        return obj

    def get(self, where: str, **query) -> dict:
        with self.lock:
            self._check("get", where)
            if where not in self.objects:
                raise ApiError(404, "NotFound", f"{where} not found")
            return copy.deepcopy(self.objects[where])

    def apply(self, obj: dict, *, subresource: str | None = None) -> dict:
        with self.lock:
            where = object_path(obj, subresource)
            self._check("apply", where)
            if subresource == "status":
                stored = self.objects[object_path(obj)]
                stored["status"] = copy.deepcopy(obj["status"])
                return copy.deepcopy(self._stamp(stored))
            stored = self._stamp(defaulted(copy.deepcopy(obj)))
            if obj["kind"] == "Deployment":
                stored["metadata"]["generation"] = 1
                stored["status"] = copy.deepcopy(self.deployment_status)
            self.objects[where] = stored
            return copy.deepcopy(stored)

    def list(self, where: str, *, label_selector: str | None = None, field_selector: str | None = None,
             page_size: int = 500, transform=None, metadata_only: bool = False) -> tuple[list[dict], str]:
        with self.lock:
            self._check("list", where)
            items = [copy.deepcopy(obj) for obj in self.objects.values()
                     if where in (path(obj["apiVersion"], obj["kind"]),
                                  path(obj["apiVersion"], obj["kind"], obj["metadata"].get("namespace")))
                     and selected(obj, label_selector)]
            if metadata_only:
                items = [{"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
                          "metadata": item["metadata"]} for item in items]
            return [transform(item) for item in items] if transform else items, str(self.version)

    def create(self, obj: dict) -> dict:
        with self.lock:
            where = object_path(obj)
            self._check("create", where)
            if obj["kind"] == "Event":
                self.events.append(obj)
                return obj
            if where in self.objects:
                raise ApiError(409, "AlreadyExists", "exists")
            self.objects[where] = self._stamp(copy.deepcopy(obj))
            return copy.deepcopy(self.objects[where])

    def replace(self, obj: dict) -> dict:
        with self.lock:
            where = object_path(obj)
            self._check("replace", where)
            if self.objects[where]["metadata"]["resourceVersion"] != obj["metadata"]["resourceVersion"]:
                raise ApiError(409, "Conflict", "the object has been modified")
            self.objects[where] = self._stamp(copy.deepcopy(obj))
            return copy.deepcopy(self.objects[where])

    def delete(self, where: str, *, uid: str | None = None) -> dict:
        with self.lock:
            self._check("delete", where)
            return self.objects.pop(where)

    def applied(self) -> list[str]:
        return [where for verb, where in self.calls if verb == "apply"]

    def writes(self, since: int = 0) -> list[tuple[str, str]]:
        return [(verb, where) for verb, where in self.calls[since:] if verb not in ("get", "list")]

    def event_reasons(self) -> list[str]:
        return [event["reason"] for event in self.events]


def function(generation: int = 1, **spec) -> dict:
    base = {"handler": "hello.hello", "runtime": "python3.11", "function": "def hello(e, c):\n    return 1\n",
            "function-content-type": "text", "deps": ""}
    return {"apiVersion": meta.API_VERSION, "kind": "Function",
            "metadata": {"name": "hello", "namespace": "ns", "uid": "fn-uid", "generation": generation,
                         "resourceVersion": "1", "labels": {}},
            "spec": {**base, **spec}}


def settings(**data) -> KubelessConfig:
    return KubelessConfig.from_data({"runtime-images": CATALOGUE, "deployment": "{}",
                                     "provision-image": "localhost/kubeless/provision:test", **data})


@pytest.fixture
def fake() -> FakeApi:
    fake = FakeApi()
    fake.objects[FUNCTION_PATH] = function()
    return fake


def make_controller(fake: FakeApi) -> Runner:
    controller = Runner(fake, Environment(pod_name="pod-1", workers=1), FunctionReconciler(),
                        queue=WorkQueue(Backoff(0.01, 0.05)), now=lambda: NOW)
    controller.settings = settings()
    controller.informers = controller.build_informers("")  # fed by hand below, never started
    return controller


@pytest.fixture
def controller(fake: FakeApi) -> Runner:
    return make_controller(fake)


def config_watch(controller: Runner) -> SettingsWatch:
    watch = SettingsWatch(controller.client, controller.environment, [controller.configure])
    watch.current = controller.settings
    return watch


def stored_status(fake: FakeApi) -> dict:
    return fake.objects[FUNCTION_PATH]["status"]


def ready(fake: FakeApi) -> tuple[str, str, str]:
    condition = status.get_condition(stored_status(fake), "Ready")
    return condition["status"], condition["reason"], condition["message"]


def function_pod(name: str, deployment: dict, **pod_status) -> dict:
    template = deployment["spec"]["template"]["metadata"]
    return {"metadata": {"name": name, "namespace": "ns", "resourceVersion": "1", "labels": template["labels"],
                         "annotations": template["annotations"], "creationTimestamp": "2025-01-01T00:00:00Z"},
            "status": pod_status}


DEPLOYMENT_PATH = path("apps/v1", "Deployment", "ns", "hello")


# --- reconcile -------------------------------------------------------------------------------------------------

def test_a_new_function_gets_its_children_applied_in_order_and_a_status(fake: FakeApi, controller: Runner):
    summary = controller.reconcile("ns/hello")
    assert fake.applied() == [path("v1", "ConfigMap", "ns", "hello"), path("v1", "Service", "ns", "hello"),
                              DEPLOYMENT_PATH, FUNCTION_PATH + "/status"]
    assert stored_status(fake)["observedGeneration"] == 1
    assert ready(fake)[:2] == ("False", "Deploying")
    assert summary == "ready=False reason=Deploying generation=1"
    assert fake.event_reasons() == ["Synced"]
    event = fake.events[0]
    assert event["involvedObject"] == {"apiVersion": meta.API_VERSION, "kind": "Function", "name": "hello",
                                       "namespace": "ns", "uid": "fn-uid", "resourceVersion": "1"}
    assert event["type"] == "Normal" and event["reportingInstance"] == "pod-1"


def test_an_unchanged_world_writes_no_status_and_emits_no_event(fake: FakeApi, controller: Runner):
    controller.reconcile("ns/hello")
    calls, events = len(fake.calls), len(fake.events)
    controller.reconcile("ns/hello")
    new_calls = fake.calls[calls:]
    assert ("apply", FUNCTION_PATH + "/status") not in new_calls
    assert not any(verb == "get" and where != FUNCTION_PATH for verb, where in new_calls), \
        "ownership and autoscaler checks happen once"
    assert len(fake.events) == events


def test_ready_deployment_makes_the_function_ready_once(fake: FakeApi, controller: Runner):
    controller.reconcile("ns/hello")
    fake.deployment_status = {"observedGeneration": 1, "replicas": 1, "readyReplicas": 1, "updatedReplicas": 1,
                              "availableReplicas": 1}
    controller.reconcile("ns/hello")
    assert ready(fake) == ("True", "MinimumReplicasAvailable", "1/1 replicas ready")
    assert stored_status(fake)["readyReplicas"] == 1
    assert status.get_condition(stored_status(fake), "Progressing")["reason"] == "NewReplicaSetAvailable"
    assert fake.event_reasons() == ["Synced", "Ready"]
    controller.reconcile("ns/hello")
    assert fake.event_reasons() == ["Synced", "Ready"]


def test_a_failed_install_shows_in_ready_with_pips_message(fake: FakeApi, controller: Runner):
    controller.reconcile("ns/hello")
    controller.informers["pods"]._update("ADDED", function_pod("hello-1", fake.objects[DEPLOYMENT_PATH], initContainerStatuses=[
        {"name": "prepare", "state": {"terminated": {"exitCode": 0}}},
        {"name": "install", "state": {"terminated": {"exitCode": 1, "message": PIP_ERROR}}}]))
    assert controller.queue.get(timeout=0) == "ns/hello", "a pod change requeues its function"
    controller.reconcile("ns/hello")
    assert ready(fake) == ("False", "InstallFailed", PIP_ERROR)
    assert fake.events[-1]["reason"] == "NotReady" and fake.events[-1]["type"] == "Warning"
    assert PIP_ERROR in fake.events[-1]["message"]


def test_a_render_error_is_invalid_spec_and_one_sync_failed_event(fake: FakeApi, controller: Runner):
    fake.objects[FUNCTION_PATH] = function(runtime="cobol85")
    controller.reconcile("ns/hello")
    assert fake.applied() == [FUNCTION_PATH + "/status"], "nothing is applied for an invalid spec"
    assert ready(fake)[:2] == ("False", "InvalidSpec")
    assert "unknown runtime 'cobol85'" in ready(fake)[2]
    assert fake.event_reasons() == ["SyncFailed", "NotReady"]
    controller.reconcile("ns/hello")
    assert fake.event_reasons() == ["SyncFailed", "NotReady"], "the same error is not reported twice"


def test_an_object_the_api_server_rejects_is_invalid_spec(fake: FakeApi, controller: Runner):
    fake.fail[("apply", DEPLOYMENT_PATH)] = ApiError(422, "Invalid", 'Deployment "hello" is invalid: bad port')
    controller.reconcile("ns/hello")
    assert ready(fake) == ("False", "InvalidSpec",
                           'the API server rejected the Deployment hello: Deployment "hello" is invalid: bad port')
    assert controller.queue.get(timeout=0.1) is None, "no retry: the spec must change"


def test_a_failing_api_server_requeues_with_backoff_and_counts_the_error(fake: FakeApi, controller: Runner):
    fake.fail[("apply", DEPLOYMENT_PATH)] = ApiError(500, "InternalError", "etcd timeout")
    assert controller.process("ns/hello") is False
    assert controller.metrics.reconcile_total == {"success": 0, "error": 1}
    assert controller.metrics.errors_total == 1
    assert controller.queue.backoff.failures("ns/hello") == 1
    assert ready(fake) == ("False", "ApplyFailed",
                           "could not apply the Deployment hello: etcd timeout (500 InternalError)")
    assert fake.event_reasons() == ["SyncFailed", "NotReady"]
    assert controller.queue.get(timeout=1) == "ns/hello"
    controller.queue.done("ns/hello")
    del fake.fail[("apply", DEPLOYMENT_PATH)]
    assert controller.process("ns/hello") is True
    assert controller.queue.backoff.failures("ns/hello") == 0
    assert controller.metrics.reconcile_total == {"success": 1, "error": 1}


def test_a_deleted_function_needs_nothing(fake: FakeApi, controller: Runner):
    del fake.objects[FUNCTION_PATH]
    assert controller.reconcile("ns/hello") == "function=gone"
    assert fake.calls == [("get", FUNCTION_PATH)]


def test_functions_outside_the_functions_namespace_are_skipped(fake: FakeApi, controller: Runner):
    controller.settings = settings(**{"functions-namespace": "other"})
    assert controller.reconcile("ns/hello") == "skipped=outside-functions-namespace"
    assert fake.calls == []


def test_a_foreign_object_with_the_childs_name_is_not_taken_over(fake: FakeApi, controller: Runner):
    foreign = path("v1", "ConfigMap", "ns", "hello")
    fake.objects[foreign] = {"apiVersion": "v1", "kind": "ConfigMap",
                             "metadata": {"name": "hello", "namespace": "ns", "uid": "x"}}
    with pytest.raises(Blocked, match="already exists and does not belong to this function"):
        controller.reconcile("ns/hello")
    assert fake.applied() == [FUNCTION_PATH + "/status"]
    assert ready(fake)[:2] == ("False", "ResourceExists")


def test_children_of_a_previous_function_of_the_same_name_are_waited_for(fake: FakeApi, controller: Runner):
    leftover = path("v1", "ConfigMap", "ns", "hello")
    fake.objects[leftover] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
        "name": "hello", "namespace": "ns", "uid": "x", "ownerReferences": [
            {"apiVersion": meta.API_VERSION, "kind": "Function", "name": "hello", "uid": "old", "controller": True}]}}
    with pytest.raises(Blocked, match="garbage collector"):
        controller.reconcile("ns/hello")
    del fake.objects[leftover]
    controller.reconcile("ns/hello")
    assert ready(fake)[:2] == ("False", "Deploying")


def test_an_autoscaler_the_function_no_longer_wants_is_deleted(fake: FakeApi, controller: Runner):
    hpa_path = path("autoscaling/v2", "HorizontalPodAutoscaler", "ns", "hello")
    fake.objects[FUNCTION_PATH] = function(horizontalPodAutoscaler={"spec": {"maxReplicas": 3}})
    controller.reconcile("ns/hello")
    assert hpa_path in fake.applied()
    fake.objects[FUNCTION_PATH] = function(generation=2)
    controller.reconcile("ns/hello")
    assert ("delete", hpa_path) in fake.calls
    assert hpa_path not in fake.objects


def test_an_autoscaler_someone_else_owns_is_left_alone(fake: FakeApi, controller: Runner):
    hpa_path = path("autoscaling/v2", "HorizontalPodAutoscaler", "ns", "hello")
    fake.objects[hpa_path] = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                              "metadata": {"name": "hello", "namespace": "ns", "uid": "h"}}
    controller.reconcile("ns/hello")
    assert hpa_path in fake.objects


def test_a_new_generation_emits_synced_again(fake: FakeApi, controller: Runner):
    controller.reconcile("ns/hello")
    fake.objects[FUNCTION_PATH]["metadata"]["generation"] = 2
    controller.reconcile("ns/hello")
    assert fake.event_reasons() == ["Synced", "Synced"]
    assert stored_status(fake)["observedGeneration"] == 2


def test_events_never_fail_a_reconcile(fake: FakeApi, controller: Runner):
    original = fake.create

    def failing_create(obj):
        if obj["kind"] == "Event":
            raise ApiError(403, "Forbidden", "no")
        return original(obj)

    fake.create = failing_create
    assert controller.process("ns/hello") is True


# --- compare before apply --------------------------------------------------------------------------------------

CONFIG_MAP_PATH = path("v1", "ConfigMap", "ns", "hello")
SERVICE_PATH = path("v1", "Service", "ns", "hello")
HPA_PATH = path("autoscaling/v2", "HorizontalPodAutoscaler", "ns", "hello")


def restarted(fake: FakeApi) -> Runner:
    """A new controller process: nothing remembered, informers that have listed the world (warm copies)."""
    controller = make_controller(fake)
    for informer in controller.informers.values():
        informer.relist()
    while (key := controller.queue.get(timeout=0)) is not None:  # what the lists reported: reconciled by hand
        controller.queue.done(key)
    return controller


ELABORATE = {  # defaults the API server adds, an empty value it omits, a quantity it rewrites, an autoscaler
    "deployment": {"spec": {"replicas": 0, "template": {"spec": {"containers": [{
        "env": [{"name": "EMPTY", "value": ""}], "resources": {"requests": {"cpu": "0.5"}}}]}}}},
    "horizontalPodAutoscaler": {"spec": {"maxReplicas": 3}},
}


@pytest.mark.parametrize("spec", [{}, ELABORATE], ids=["plain", "elaborate"])
def test_a_restart_with_nothing_changed_applies_nothing_and_reads_only_the_function(fake: FakeApi, spec: dict):
    fake.objects[FUNCTION_PATH] = function(**spec)
    fake.deployment_status = {"observedGeneration": 1, "replicas": 0}
    make_controller(fake).reconcile("ns/hello")
    assert (CONFIG_MAP_PATH in fake.objects, HPA_PATH in fake.objects) == (True, bool(spec))
    controller = restarted(fake)
    calls = len(fake.calls)
    assert controller.process("ns/hello")
    assert fake.calls[calls:] == [("get", FUNCTION_PATH)], \
        "no apply, no status, no event; the ownership and autoscaler checks read the informers' copies"


def test_a_changed_field_is_one_apply_of_the_child_it_changes(fake: FakeApi):
    make_controller(fake).reconcile("ns/hello")
    controller = restarted(fake)
    fake.objects[FUNCTION_PATH] = function(generation=2, timeout="30")
    calls = len(fake.calls)
    controller.reconcile("ns/hello")
    assert fake.writes(calls) == [("apply", DEPLOYMENT_PATH), ("apply", FUNCTION_PATH + "/status"),
                                  ("create", path("v1", "Event", "ns", fake.events[-1]["metadata"]["name"]))]
    variables = fake.objects[DEPLOYMENT_PATH]["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "FUNC_TIMEOUT", "value": "30"} in variables


def test_a_field_the_render_no_longer_sets_is_applied_away(fake: FakeApi):
    fake.objects[FUNCTION_PATH] = function(deployment={"metadata": {"annotations": {"team": "a"}}})
    make_controller(fake).reconcile("ns/hello")
    controller = restarted(fake)
    fake.objects[FUNCTION_PATH] = function(generation=2)  # the annotation is gone: live still has it, a superset
    calls = len(fake.calls)
    controller.reconcile("ns/hello")
    assert [where for verb, where in fake.writes(calls) if verb == "apply"] == [DEPLOYMENT_PATH,
                                                                                FUNCTION_PATH + "/status"]
    assert "team" not in fake.objects[DEPLOYMENT_PATH]["metadata"]["annotations"]


def test_a_child_changed_by_someone_else_is_applied_back(fake: FakeApi):
    make_controller(fake).reconcile("ns/hello")
    controller = restarted(fake)
    edited = copy.deepcopy(fake.objects[DEPLOYMENT_PATH])
    edited["spec"]["template"]["spec"]["containers"][0]["image"] = "someone/else:latest"
    edited["metadata"]["resourceVersion"] = "99"
    fake.objects[DEPLOYMENT_PATH] = edited
    controller.informers["deployments"].handle({"type": "MODIFIED", "object": copy.deepcopy(edited)})
    assert controller.queue.get(timeout=0) == "ns/hello"
    calls = len(fake.calls)
    controller.reconcile("ns/hello")
    assert fake.writes(calls) == [("apply", DEPLOYMENT_PATH)]
    assert fake.objects[DEPLOYMENT_PATH]["spec"]["template"]["spec"]["containers"][0]["image"] != \
        "someone/else:latest"


def test_an_autoscaler_no_longer_wanted_is_deleted_by_its_copy_without_a_get(fake: FakeApi):
    fake.objects[FUNCTION_PATH] = function(horizontalPodAutoscaler={"spec": {"maxReplicas": 3}})
    make_controller(fake).reconcile("ns/hello")
    controller = restarted(fake)
    fake.objects[FUNCTION_PATH] = function(generation=2)
    calls = len(fake.calls)
    controller.reconcile("ns/hello")
    assert ("delete", HPA_PATH) in fake.calls[calls:] and ("get", HPA_PATH) not in fake.calls[calls:]
    assert HPA_PATH not in fake.objects


def test_a_copy_owned_by_someone_else_is_not_taken_over(fake: FakeApi):
    foreign = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
        "name": "hello", "namespace": "ns", "uid": "x", "resourceVersion": "1", "labels": meta.function_labels("hello")}}
    fake.objects[CONFIG_MAP_PATH] = foreign
    controller = restarted(fake)
    with pytest.raises(Blocked, match="does not belong to this function"):
        controller.reconcile("ns/hello")
    assert CONFIG_MAP_PATH not in fake.applied()


def test_the_copies_keep_neither_code_nor_managed_fields(fake: FakeApi):
    code = "def hello(e, c):\n    return 'a long function'\n"
    fake.objects[FUNCTION_PATH] = function(function=code)
    fake.objects[FUNCTION_PATH]["metadata"]["annotations"] = {
        "kubectl.kubernetes.io/last-applied-configuration": json.dumps(fake.objects[FUNCTION_PATH])}
    make_controller(fake).reconcile("ns/hello")
    controller = restarted(fake)
    kept = {name: controller.cache(name).get("ns/hello") for name in ("functions", "configmaps", "deployments")}
    assert code not in json.dumps(kept) and "managedFields" not in json.dumps(kept)
    assert set(kept["functions"]) == {"apiVersion", "kind", "metadata"}
    assert kept["configmaps"]["data"]["hello.py"] == hashlib.sha256(code.encode()).hexdigest()


def test_a_status_the_controller_wrote_requeues_nothing_but_a_label_does(fake: FakeApi):
    make_controller(fake).reconcile("ns/hello")
    controller = restarted(fake)
    functions = controller.informers["functions"]
    written = copy.deepcopy(fake.objects[FUNCTION_PATH])
    written["status"]["replicas"], written["metadata"]["resourceVersion"] = 7, "100"
    functions.handle({"type": "MODIFIED", "object": written})
    assert controller.queue.get(timeout=0) is None
    assert functions.get("ns/hello")["metadata"]["resourceVersion"] == "100", "the copy still moves forward"
    labelled = copy.deepcopy(written)
    labelled["metadata"]["labels"], labelled["metadata"]["resourceVersion"] = {"tier": "gold"}, "101"
    functions.handle({"type": "MODIFIED", "object": labelled})
    assert controller.queue.get(timeout=0) == "ns/hello"


def test_the_echo_of_an_apply_requeues_nothing_but_a_later_version_does(fake: FakeApi, controller: Runner):
    controller.reconcile("ns/hello")
    deployments = controller.informers["deployments"]
    for name, where in (("configmaps", CONFIG_MAP_PATH), ("services", SERVICE_PATH), ("deployments", DEPLOYMENT_PATH)):
        controller.informers[name].handle({"type": "ADDED", "object": copy.deepcopy(fake.objects[where])})
    assert controller.queue.get(timeout=0) is None
    progressed = copy.deepcopy(fake.objects[DEPLOYMENT_PATH])
    progressed["status"], progressed["metadata"]["resourceVersion"] = {"observedGeneration": 1}, "200"
    deployments.handle({"type": "MODIFIED", "object": progressed})
    assert controller.queue.get(timeout=0) == "ns/hello"


def test_workers_wait_for_warm_copies_only_as_long_as_asked(fake: FakeApi, controller: Runner):
    assert controller.wait_for_sync(timeout=0.01) is False
    assert restarted(fake).wait_for_sync(timeout=0.01) is True


@pytest.mark.parametrize(("live", "desired", "expected"), [
    ({"a": 1, "b": 2}, {"a": 1}, True),
    ({"a": 1}, {"a": 2}, False),
    ({"a": 1}, {"b": 1}, False),
    ({}, {"a": "", "b": 0, "c": False, "d": [], "e": {}, "f": None}, True),
    ({"a": [{"x": 1, "default": 2}]}, {"a": [{"x": 1}]}, True),
    ({"a": [{"x": 1}, {"x": 2}]}, {"a": [{"x": 1}]}, False),
    ({"a": [{"x": 2}, {"x": 1}]}, {"a": [{"x": 1}, {"x": 2}]}, False),
    ({"a": 1}, {"a": True}, False),
    ({"limits": {"cpu": "500m", "memory": "1Gi"}}, {"limits": {"cpu": "0.5", "memory": "1024Mi"}}, True),
    ({"limits": {"cpu": "500m"}}, {"limits": {"cpu": "0.6"}}, False),
    ({"env": "500m"}, {"env": "0.5"}, False),
])
def test_desired_is_a_subset_of_live(live: dict, desired: dict, expected: bool):
    assert contains(live, desired) is expected


# --- watches to keys -------------------------------------------------------------------------------------------

def test_deployments_and_pods_requeue_the_function_named_by_their_label(controller: Runner):
    controller.informers["pods"].on_event("MODIFIED", {"metadata": {"namespace": "ns", "name": "hello-abc",
                                                   "labels": {"function": "hello"}}})
    controller.informers["pods"].on_event("MODIFIED", {"metadata": {"namespace": "ns", "name": "stray", "labels": {}}})
    assert controller.queue.get(timeout=0) == "ns/hello"
    assert controller.queue.get(timeout=0) is None


def test_a_config_change_requeues_every_function_and_is_used_without_restart(fake: FakeApi, controller: Runner):
    watch = config_watch(controller)
    for name in ("a", "b"):
        controller.informers["functions"]._update("ADDED", {"metadata": {"namespace": "ns", "name": name}})
    for _ in range(2):
        controller.queue.done(controller.queue.get(timeout=0))
    config = {"metadata": {"name": "kubeless-config", "namespace": "kubeless"},
              "data": {"runtime-images": CATALOGUE, "provision-image": "localhost/kubeless/provision:test",
                       "deployment": json.dumps({"metadata": {"labels": {"tier": "functions"}}})}}
    watch.on_event("MODIFIED", config)
    assert sorted([controller.queue.get(timeout=0), controller.queue.get(timeout=0)]) == ["ns/a", "ns/b"]
    controller.reconcile("ns/hello")
    assert fake.objects[DEPLOYMENT_PATH]["metadata"]["labels"]["tier"] == "functions"
    watch.on_event("MODIFIED", config)
    assert controller.queue.get(timeout=0) is None, "an unchanged config requeues nothing"


def test_a_broken_config_keeps_the_last_settings(controller: Runner):
    watch = config_watch(controller)
    before = controller.settings
    watch.on_event("MODIFIED", {"metadata": {"name": "kubeless-config"}, "data": {"runtime-images": "{"}})
    watch.on_event("DELETED", {"metadata": {"name": "kubeless-config"}})
    assert controller.settings is before


def test_workers_run_only_once_started_and_drain_the_queue(fake: FakeApi, controller: Runner):
    controller.queue.add("ns/hello")
    time.sleep(0.05)
    assert fake.calls == []
    controller.start_workers()
    assert controller.metrics.is_leader
    deadline = time.monotonic() + 5
    while "status" not in fake.objects[FUNCTION_PATH] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert controller.stop_workers()
    assert ready(fake)[1] == "Deploying"
    assert not controller.metrics.is_leader


# --- leader election -------------------------------------------------------------------------------------------

class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


LEASE_PATH = path("coordination.k8s.io/v1", "Lease", "kubeless", "kubeless-controller")


def elector(fake: FakeApi, identity: str, clock: Clock, **kwargs) -> LeaderElector:
    return LeaderElector(fake, "kubeless", "kubeless-controller", identity, clock=clock,
                         wall=lambda: datetime.fromtimestamp(clock.now, timezone.utc),
                         on_started=lambda: None, on_stopped=lambda: None, **kwargs)


def test_the_first_candidate_creates_the_lease():
    fake, clock = FakeApi(), Clock()
    assert elector(fake, "a", clock).try_acquire_or_renew()
    spec = fake.objects[LEASE_PATH]["spec"]
    assert spec["holderIdentity"] == "a" and spec["leaseDurationSeconds"] == 15
    assert spec["leaseTransitions"] == 0


def test_a_held_lease_is_taken_only_after_it_went_unrenewed_for_its_duration():
    fake, clock = FakeApi(), Clock()
    a, b = elector(fake, "a", clock), elector(fake, "b", clock)
    assert a.try_acquire_or_renew()
    assert not b.try_acquire_or_renew()
    for _ in range(10):  # a renews every 5 s: b never gets it
        clock.now += 5
        assert a.try_acquire_or_renew()
        assert not b.try_acquire_or_renew()
    clock.now += 14
    assert not b.try_acquire_or_renew()
    clock.now += 2
    assert b.try_acquire_or_renew()
    spec = fake.objects[LEASE_PATH]["spec"]
    assert spec["holderIdentity"] == "b" and spec["leaseTransitions"] == 1
    assert not a.try_acquire_or_renew(), "the old leader sees b hold a fresh lease"


def test_racing_candidates_cannot_both_win():
    fake, clock = FakeApi(), Clock()
    assert elector(fake, "a", clock).try_acquire_or_renew()
    clock.now += 100
    b, c = elector(fake, "b", clock), elector(fake, "c", clock)
    # both read the expired lease; the second write carries a stale resourceVersion
    lease = fake.get(LEASE_PATH)
    original_get = fake.get
    fake.get = lambda where, **query: copy.deepcopy(lease) if where == LEASE_PATH else original_get(where)
    for candidate in (b, c):  # both saw the record unchanged for a long time
        candidate._observed = ("a", lease["spec"]["renewTime"], 15, 0)
        candidate._observed_at = clock.now - 100
    results = [b.try_acquire_or_renew(), c.try_acquire_or_renew()]
    assert results == [True, False]


def test_a_leader_that_cannot_renew_stops_before_the_lease_expires():
    fake = FakeApi()
    stopped = threading.Event()
    leader = LeaderElector(fake, "kubeless", "kubeless-controller", "a", on_started=lambda: None,
                           on_stopped=stopped.set, lease_seconds=2, renew_seconds=0.05, renew_deadline=0.5,
                           retry_seconds=0.05)
    thread = threading.Thread(target=leader.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 2
    while not leader.is_leader and time.monotonic() < deadline:
        time.sleep(0.01)
    assert leader.is_leader
    fake.fail[("get", LEASE_PATH)] = ApiError(500, "InternalError", "down")
    lost_at = time.monotonic()
    assert stopped.wait(2)
    assert time.monotonic() - lost_at < 2, "before another replica may take the 2 s lease"
    leader.stop()


def test_release_hands_the_lease_over_at_once():
    fake, clock = FakeApi(), Clock()
    a, b = elector(fake, "a", clock), elector(fake, "b", clock)
    assert a.try_acquire_or_renew()
    a.is_leader = True
    a.release()
    assert fake.objects[LEASE_PATH]["spec"]["holderIdentity"] is None
    assert b.try_acquire_or_renew()


def test_long_event_messages_keep_their_reason_and_their_end(fake: FakeApi, controller: Runner):
    message = "InstallFailed: " + "WARNING: retrying\n" * 200 + "ERROR: No matching distribution found"
    controller.events.record(fake.objects[FUNCTION_PATH], "Warning", "NotReady", message)
    sent = fake.events[-1]["message"]
    assert len(sent) <= 1024
    assert sent.startswith("InstallFailed: …") and sent.endswith("ERROR: No matching distribution found")


def test_a_new_functions_namespace_restarts_the_watches_in_it(controller: Runner, monkeypatch):
    watch = config_watch(controller)
    scopes = []
    monkeypatch.setattr(controller, "start_informers", scopes.append)
    data = {"runtime-images": CATALOGUE, "provision-image": "localhost/kubeless/provision:test"}
    watch.on_event("MODIFIED", {"data": {**data, "functions-namespace": "team-a"}})
    watch.on_event("MODIFIED", {"data": {**data, "functions-namespace": "team-a", "deployment": "{}"}})
    watch.on_event("MODIFIED", {"data": data})
    assert scopes == ["team-a", ""]


def test_an_api_server_that_cannot_even_store_the_status_still_gets_the_first_error_retried(
        fake: FakeApi, controller: Runner):
    fake.fail[("apply", DEPLOYMENT_PATH)] = ApiError(500, "InternalError", "etcd timeout")
    fake.fail[("apply", FUNCTION_PATH + "/status")] = ApiError(500, "InternalError", "etcd down")
    with pytest.raises(ApiError, match="etcd timeout"):
        controller.reconcile("ns/hello")


def test_a_namespace_being_deleted_is_nothing_to_do_and_not_retried(fake: FakeApi, controller: Runner):
    fake.fail[("apply", CONFIG_MAP_PATH)] = ApiError(
        403, "Forbidden", 'configmaps "hello" is forbidden: unable to create new content in namespace ns because it '
                          "is being terminated")
    assert controller.process("ns/hello")
    assert controller.queue.get(timeout=0) is None, "not requeued"
    assert "status" not in fake.objects[FUNCTION_PATH]


def test_with_the_names_listed_a_new_function_needs_no_get_but_its_own_and_an_unlabelled_name_is_not_taken(
        fake: FakeApi):
    controller = restarted(fake)
    calls = len(fake.calls)
    controller.reconcile("ns/hello")
    assert [where for verb, where in fake.calls[calls:] if verb == "get"] == [FUNCTION_PATH]

    other = function()
    other["metadata"].update(name="other", uid="other-uid")
    fake.objects[path(meta.API_VERSION, "Function", "ns", "other")] = other
    fake.objects[path("v1", "Service", "ns", "other")] = {"apiVersion": "v1", "kind": "Service", "metadata": {
        "name": "other", "namespace": "ns", "uid": "s", "resourceVersion": "1"}}  # someone's, without our label
    controller = restarted(fake)
    with pytest.raises(Blocked, match="Service ns/other already exists"):
        controller.reconcile("ns/other")
    assert path("v1", "Service", "ns", "other") not in fake.applied()
