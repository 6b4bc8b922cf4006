"""What every trigger reconciler shares: find the function, tie the trigger's life to it, write status and Events.

A trigger names its function (`function-name`, same namespace). The trigger is rendered only while that function
exists; the trigger then carries an owner reference to it (not a controller one), so deleting the function makes the
garbage collector delete its triggers and what they made, as Kubeless's trigger controllers did by hand.
"""
from __future__ import annotations

from datetime import datetime

from kubeless_api import conditions, meta, schema
from kubeless_controller.client import ApiError
from kubeless_controller.copies import slim
from kubeless_controller.functions.status import condition
from kubeless_controller.runner import Blocked, Problem, Prunable, Runner, Unready, Watch

FUNCTIONS_WATCH = "functions"
SERVICES_WATCH = "services"


def function_name(trigger: dict) -> str:
    return (trigger.get("spec") or {}).get(schema.FUNCTION_NAME) or ""


def named_function_key(trigger: dict) -> str | None:
    """The key (namespace/name) of the function a trigger names: the index that fans a function's changes out."""
    name = function_name(trigger)
    return f"{trigger['metadata']['namespace']}/{name}" if name else None


def function_essentials(function: dict) -> dict:
    """What a trigger needs of its function: its identity and its timeout (never its code)."""
    slimmed = slim(function)
    spec = {"timeout": slimmed["spec"]["timeout"]} if "timeout" in (slimmed.get("spec") or {}) else {}
    return {"apiVersion": slimmed.get("apiVersion"), "kind": slimmed.get("kind"), "metadata": slimmed["metadata"],
            "spec": spec}


def function_watches(trigger_watch: str) -> tuple[Watch, Watch]:
    """The function and its Service, each change fanned out to the triggers that name that function."""
    return (Watch(FUNCTIONS_WATCH, meta.API_VERSION, "Function", transform=function_essentials,
                  fan_out=trigger_watch),
            Watch(SERVICES_WATCH, "v1", "Service", label_selector=meta.CREATED_BY_SELECTOR, fan_out=trigger_watch,
                  key=lambda service: f"{service['metadata']['namespace']}/"
                                      f"{(service['metadata'].get('labels') or {}).get(meta.LABEL_FUNCTION, '')}"))


def service_port(service: dict) -> int:
    """The port a caller uses: the Service's own port (Kubeless's trigger used the target port by mistake)."""
    ports = meta.dig(service, "spec", "ports", default=[]) or []
    return ports[0].get("port") or meta.FUNCTION_PORT if ports else meta.FUNCTION_PORT


def trigger_labels(trigger: dict) -> dict:
    return {**(trigger["metadata"].get("labels") or {}), meta.LABEL_CREATED_BY: meta.CREATED_BY}


def owner_reference(trigger: dict) -> dict:
    return {"apiVersion": meta.API_VERSION, "kind": trigger["kind"], "name": trigger["metadata"]["name"],
            "uid": trigger["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}


def child_metadata(trigger: dict, *, name: str | None = None, labels: dict | None = None,
                   annotations: dict | None = None) -> dict:
    metadata = trigger["metadata"]
    result = {"name": name or metadata["name"], "namespace": metadata["namespace"],
              "labels": labels if labels is not None else trigger_labels(trigger),
              "ownerReferences": [owner_reference(trigger)]}
    if annotations:
        result["annotations"] = annotations
    return result


def trigger_status(trigger: dict, ready: bool, reason: str, message: str, now: datetime, **fields) -> dict:
    previous = {c.get("type"): c for c in (trigger.get("status") or {}).get("conditions") or []}
    generation = trigger["metadata"].get("generation", 0)
    return {"observedGeneration": generation, **{key: value for key, value in fields.items() if value is not None},
            "conditions": [condition(conditions.READY, ready, reason, message, previous, now, generation)]}


class TriggerReconciler:
    """Subclasses name their kind and watches and render their children; `reconcile` is the same four steps for
    every trigger: find the function, apply the children, write the status, record the Events."""
    kind: str
    watches: tuple[Watch, ...]
    prunable: tuple[Prunable, ...] = ()

    def children(self, trigger: dict, function: dict, service: dict | None, runner: Runner) -> list[dict]:
        raise NotImplementedError

    def status(self, trigger: dict, applied: list[dict], runner: Runner) -> dict:
        """The status once the children are applied; may raise Blocked to look again later."""
        raise NotImplementedError

    def reconcile(self, key: str, runner: Runner) -> str:
        trigger = runner.cache(self.watches[0].name).get(key)
        if trigger is None:
            runner.forget(key)
            return "trigger=gone"
        if trigger["metadata"].get("deletionTimestamp"):
            return "trigger=deleting"
        trigger = {**trigger, "apiVersion": meta.API_VERSION, "kind": self.kind}
        namespace = trigger["metadata"]["namespace"]
        function = runner.cache(FUNCTIONS_WATCH).get(named_function_key(trigger) or "")
        problem, after, retry = None, None, None
        if function is None:
            problem = Problem(conditions.REASON_FUNCTION_NOT_FOUND,
                              f"function {function_name(trigger)} does not exist in namespace {namespace}; deploy "
                              f"it, or point the trigger at another function")
        else:
            self.follow(trigger, function, runner)
            service = runner.cache(SERVICES_WATCH).get(f"{namespace}/{function['metadata']['name']}")
            try:
                applied = runner.apply_children(trigger, self.children(trigger, function, service, runner))
                after = self.status(trigger, applied, runner)
            except Unready as error:
                problem = error.problem
            except ApiError as error:
                if error.not_found:  # on apply, the kind itself is missing (a CRD this cluster does not have)
                    problem = Problem(conditions.REASON_INVALID_SPEC, f"the API server does not serve {error.message}")
                elif error.invalid:
                    problem = Problem(conditions.REASON_INVALID_SPEC, f"the API server rejected {error.message}")
                else:
                    raise
            except Blocked as error:
                problem, retry = Problem(conditions.REASON_RESOURCE_EXISTS, str(error)), error
        if problem is not None:
            after = trigger_status(trigger, False, problem.reason, problem.message, runner.now())
            retry = retry or problem.retry
        before = trigger.get("status") or {}
        runner.write_status(trigger, before, after)
        self.events(trigger, before, after, runner)
        if retry is not None:
            raise retry
        ready = conditions.get_condition(after, conditions.READY)
        return f"ready={ready['status']} reason={ready['reason']}"

    @staticmethod
    def follow(trigger: dict, function: dict, runner: Runner) -> None:
        """Make the function an owner of the trigger, so the trigger goes with it."""
        uid = function["metadata"]["uid"]
        if any(owner.get("uid") == uid for owner in trigger["metadata"].get("ownerReferences") or []):
            return
        metadata = trigger["metadata"]
        runner.client.apply({"apiVersion": meta.API_VERSION, "kind": trigger["kind"], "metadata": {
            "name": metadata["name"], "namespace": metadata["namespace"], "ownerReferences": [{
                "apiVersion": meta.API_VERSION, "kind": "Function", "name": function["metadata"]["name"],
                "uid": uid}]}})

    @staticmethod
    def events(trigger: dict, before: dict, after: dict, runner: Runner) -> None:
        old = conditions.get_condition(before, conditions.READY)
        new = conditions.get_condition(after, conditions.READY)
        if (old.get("status"), old.get("reason")) == (new.get("status"), new.get("reason")):
            return
        if new.get("status") == "True":
            runner.events.record(trigger, "Normal", "Ready", new.get("message", ""))
        elif new.get("reason") != conditions.REASON_ROUTE_PENDING:
            runner.events.record(trigger, "Warning", "NotReady", f"{new.get('reason')}: {new.get('message', '')}")


def get_or_none(runner: Runner, path: str) -> dict | None:
    try:
        return runner.client.get(path)
    except ApiError as error:
        if error.not_found:
            return None
        raise
