"""The Function reconciler: render, apply, status, events."""
from __future__ import annotations

import logging

from kubeless_api import conditions, meta, resources
from kubeless_controller.client import ApiError
from kubeless_controller.functions import policy, render, status
from kubeless_controller.copies import data_digests, metadata_only, without_status
from kubeless_controller.runner import Blocked, Problem, Prunable, Runner, Watch

log = logging.getLogger(__name__)


def function_key(obj: dict) -> str | None:
    """The Function a labelled Deployment or Pod belongs to, from its `function` label."""
    metadata = obj["metadata"]
    name = (metadata.get("labels") or {}).get(meta.LABEL_FUNCTION)
    return f"{metadata['namespace']}/{name}" if name else None


class FunctionReconciler:
    kind = "Function"
    watches = (
        Watch("functions", meta.API_VERSION, "Function", transform=metadata_only),
        Watch("configmaps", "v1", "ConfigMap", key=function_key, label_selector=meta.CREATED_BY_SELECTOR,
              transform=data_digests),
        Watch("services", "v1", "Service", key=function_key, label_selector=meta.CREATED_BY_SELECTOR,
              transform=without_status),
        Watch("deployments", "apps/v1", "Deployment", key=function_key, label_selector=meta.CREATED_BY_SELECTOR),
        Watch("autoscalers", "autoscaling/v2", "HorizontalPodAutoscaler", key=function_key,
              label_selector=meta.CREATED_BY_SELECTOR, transform=without_status),
        Watch("pods", "v1", "Pod", key=function_key, label_selector=meta.CREATED_BY_SELECTOR, index=function_key),
        # the names taken, so that a new function's children need no GET to prove no one else has their names
        *(Watch(f"{plural}-names", api_version, kind, names_only=True) for plural, api_version, kind in (
            ("configmaps", "v1", "ConfigMap"), ("services", "v1", "Service"), ("deployments", "apps/v1", "Deployment"),
            ("autoscalers", "autoscaling/v2", "HorizontalPodAutoscaler"))),
    )
    prunable = (Prunable("autoscaling/v2", "HorizontalPodAutoscaler"),)

    def reconcile(self, key: str, runner: Runner) -> str:
        namespace, name = key.split("/", 1)
        settings = runner.settings
        if settings.functions_namespace and namespace != settings.functions_namespace:
            return "skipped=outside-functions-namespace"
        try:
            function = runner.client.get(resources.path(meta.API_VERSION, "Function", namespace, name))
        except ApiError as error:
            if error.not_found:
                runner.forget(key)
                return "function=gone"
            raise
        if function["metadata"].get("deletionTimestamp"):
            return "function=deleting"

        deployment, problem = self.apply(function, runner)
        if deployment is None and runner.cache("deployments") is not None:
            deployment = runner.cache("deployments").get(key)
        pods = runner.cache("pods").by_index(key) if runner.cache("pods") is not None else []
        before = function.get("status") or {}
        after = status.function_status(function, deployment, pods, problem and problem.message, runner.now(),
                                       error_reason=problem.reason if problem else status.INVALID_SPEC)
        runner.write_status(function, before, after, failing=problem is not None and problem.retry is not None)
        self.emit_events(function, before, after, problem, runner)
        if problem and problem.retry is not None:
            raise problem.retry
        ready = conditions.get_condition(after, conditions.READY)
        return f"ready={ready['status']} reason={ready['reason']} generation={after['observedGeneration']}"

    @staticmethod
    def apply(function: dict, runner: Runner) -> tuple[dict | None, Problem | None]:
        """Render and apply the children; (the Deployment as the API server has it, why nothing was applied)."""
        try:
            children = render.children(function, runner.settings)
        except render.RenderError as error:
            return None, Problem(status.INVALID_SPEC, str(error))
        except (TypeError, AttributeError, KeyError, ValueError) as error:  # a shape no check foresaw
            log.warning("cannot render %s/%s: %s: %s", function["metadata"]["namespace"],
                        function["metadata"]["name"], type(error).__name__, error)
            return None, Problem(status.INVALID_SPEC, f"the spec cannot be rendered: {type(error).__name__}: {error}")
        missing = FunctionReconciler.missing_service_account(function, runner)
        if missing:
            return None, Problem(status.INVALID_SPEC, missing)
        try:
            applied = runner.apply_children(function, children)
        except ApiError as error:
            if error.namespace_terminating:
                raise
            if error.invalid:  # retrying cannot help: the spec (or kubeless-config) must change
                return None, Problem(status.INVALID_SPEC, f"the API server rejected {error.message}")
            return None, Problem(status.APPLY_FAILED,
                                 f"could not apply {error.message} ({error.status} {error.reason})", error)
        except Blocked as error:
            return None, Problem(status.RESOURCE_EXISTS, str(error), error)
        return next((child for child in applied if child["kind"] == "Deployment"), None), None

    @staticmethod
    def missing_service_account(function: dict, runner: Runner) -> str | None:
        """A function may run as a service account of its own namespace, never as one that is not there."""
        account = policy.service_account(function["spec"])
        if not account or runner.settings.allow_privileged_functions:
            return None
        namespace = function["metadata"]["namespace"]
        try:
            runner.client.get(resources.path("v1", "ServiceAccount", namespace, account))
        except ApiError as error:
            if error.not_found:
                return (f"{policy.POD}.serviceAccountName: service account {account} does not exist in namespace "
                        f"{namespace}; create it, or deploy without --service-account")
            raise
        return None

    @staticmethod
    def emit_events(function: dict, before: dict, after: dict, problem: Problem | None, runner: Runner) -> None:
        events = runner.events
        if problem:
            events.warn_once(function, "SyncFailed", problem.message)
        else:
            events.forget(f"{function['metadata']['namespace']}/{function['metadata']['name']}")
            if before.get("observedGeneration") != after["observedGeneration"]:
                events.record(function, "Normal", "Synced", "applied the ConfigMap, Service and Deployment "
                              f"for generation {after['observedGeneration']}")
        change = status.ready_event(before, after)
        if change:
            events.record(function, *change)
