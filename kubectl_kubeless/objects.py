"""What every noun does with API objects: read one (or say why it cannot), list them, change one with a merge patch,
wait until it is ready or gone, and say what its pods are doing (and which container stopped, when).

The messages name an object as the user typed it (`function "hello" not found in namespace "ns"`), and a 404 for
the API itself (the CRD not installed) says so rather than "not found". Paths come from kubeless_api.resources.
"""
from __future__ import annotations

import copy
import json
import time
from datetime import datetime, timedelta
from typing import Callable

from kubeless_api import meta, resources
from kubectl_kubeless import readiness
from kubectl_kubeless.command import Factory
from kubectl_kubeless.errors import UserError
from kubectl_kubeless.kube import ApiError, api_error

POLL_INTERVAL = 1.0  # seconds between two reads of what --wait waits for
CONFLICT_RETRIES = 5  # a merge patch whose object changed meanwhile (409) is computed again, this many times at most
# A list's items as metadata only (names, labels; no specs, no code): the API server's PartialObjectMetadataList,
# else plain JSON from a server that does not offer it.
METADATA_ONLY = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
# The kubelet stamps a container's finishedAt with the node's clock, which may be a little behind ours.
CLOCK_SKEW = timedelta(seconds=2)
ABSENT = object()  # a member that is not there, told from one that holds null


def kubeless_path(kind: str, namespace: str, name: str | None = None) -> str:
    """The path of a Kubeless object (Function, CronJobTrigger, ...), or of their list without a name."""
    return resources.path(meta.API_VERSION, kind, namespace, name)


# --- reading ---------------------------------------------------------------------------------------------------

def crd_missing(error: ApiError, kind: str) -> UserError:
    """A 404 for the API itself: Kubeless is not installed. Any other error as it is."""
    if error.resource_missing:
        return UserError(f"the {kind} API ({meta.KINDS[kind]}.{meta.GROUP}/{meta.VERSION}) is not installed on "
                         "this cluster; install Kubeless first (kubectl apply -f manifests/kubeless.yaml)")
    return error


def not_found_text(kind: str, name: str, namespace: str) -> str:
    return f"{kind.lower()} \"{name}\" not found in namespace \"{namespace}\""


def not_found(error: ApiError, kind: str, name: str, namespace: str) -> UserError:
    """A 404 for the object, in the user's words; else what `crd_missing` says."""
    if error.status == 404 and not error.resource_missing:
        return UserError(not_found_text(kind, name, namespace))
    return crd_missing(error, kind)


def get_or_none(factory: Factory, path: str) -> dict | None:
    """The object at `path`, None when there is none; ApiError for anything else (its API missing among them)."""
    try:
        return factory.client().get(path)
    except ApiError as error:
        if error.status == 404 and not error.resource_missing:
            return None
        raise


def get(factory: Factory, kind: str, namespace: str, name: str) -> dict:
    """A Kubeless object; UserError naming it when it, or its API, is not there."""
    try:
        return factory.client().get(kubeless_path(kind, namespace, name))
    except ApiError as error:
        raise not_found(error, kind, name, namespace) from None


def list_items(factory: Factory, kind: str, namespace: str) -> list[dict]:
    """Every object of a Kubeless kind in the namespace, by name."""
    try:
        items = factory.client().get(kubeless_path(kind, namespace)).get("items") or []
    except ApiError as error:
        raise crd_missing(error, kind) from None
    return sorted((typed(item, kind) for item in items), key=lambda item: item["metadata"]["name"])


def named_or_all(factory: Factory, kind: str, namespace: str, names: list[str]) -> tuple[list[dict], list[str]]:
    """What `ls [NAME...]` shows: the named objects that exist and the names of those that do not (kubectl prints
    the first and fails for the others), or, without names, every object of the kind in the namespace."""
    if not names:
        return list_items(factory, kind, namespace), []
    found, missing = [], []
    for name in names:
        try:
            obj = get_or_none(factory, kubeless_path(kind, namespace, name))
        except ApiError as error:
            raise crd_missing(error, kind) from None
        if obj is None:
            missing.append(name)
        else:
            found.append(typed(obj, kind))
    return found, missing


def missing_error(kind: str, names: list[str], namespace: str) -> UserError:
    """The one line for the names `named_or_all` did not find."""
    return UserError("; ".join(not_found_text(kind, name, namespace) for name in names))


def typed(obj: dict, kind: str) -> dict:
    """The object with its apiVersion and kind, which the items of a list may come without (`-o name` needs them)."""
    obj.setdefault("apiVersion", meta.API_VERSION)
    obj.setdefault("kind", kind)
    return obj


def list_metadata(client, path: str) -> list[dict]:
    """The items of a list, metadata only; [] when the API is not there (404); ApiError for anything else."""
    response = client.request("GET", path, headers={"Accept": METADATA_ONLY})
    body = response.read()
    if response.status == 404:
        return []
    if response.status != 200:
        raise api_error(response.status, body, response.reason)
    return json.loads(body).get("items") or []


def api_status(body: bytes) -> dict | None:
    """The API server's own refusal (a Status: no endpoints, no such pod) in a raw answer, rather than what a
    function or a container said."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) and parsed.get("kind") == "Status" and "apiVersion" in parsed else None


# --- changing --------------------------------------------------------------------------------------------------

def apply_merge_patch(target, patch):
    """RFC 7386: what the API server stores for a JSON merge patch (to show it in a dry run)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result


def merge_patch_from(current: dict, wanted: dict) -> dict:
    """The JSON merge patch that turns `current` into `wanted` (what `apply_merge_patch(current, patch)` gives back
    as `wanted`): the members that differ, those that are gone as null, and objects member by member, since a merge
    patch merges an object into the one it replaces (a member the new one lacks must be removed by name).

    ValueError, naming the member (`payload.user`), for a null in an object of `wanted` that `current` does not
    have: a merge patch can only read it as "remove". Arrays are replaced whole, nulls and all."""
    patch: dict = {key: None for key in current if key not in wanted}
    for key, value in wanted.items():
        old = current.get(key, ABSENT)
        if value == old:
            continue
        if value is None:
            raise ValueError(key)
        if isinstance(value, dict):
            try:
                inner = merge_patch_from(old if isinstance(old, dict) else {}, value)
            except ValueError as error:
                raise ValueError(f"{key}.{error}") from None
            patch[key] = inner if isinstance(old, dict) else value
        else:
            patch[key] = value
    return patch


def merge_patch(factory: Factory, current: dict, patch: dict, recompute: Callable[[dict], dict]) -> dict:
    """Send `patch` (computed from `current`) as a JSON merge patch guarded by current's resourceVersion, so it
    never overwrites a change made meanwhile: on a conflict, read the object again and send `recompute(object)`."""
    kind, name, namespace = current["kind"], current["metadata"]["name"], current["metadata"]["namespace"]
    attempt = 1
    while True:
        if not patch:
            raise UserError("nothing to update")
        guarded = {**patch, "metadata": {**patch.get("metadata", {}),
                                         "resourceVersion": current["metadata"]["resourceVersion"]}}
        try:
            return factory.client().merge_patch(resources.object_path(current), guarded)
        except ApiError as error:
            if error.status != 409 or attempt == CONFLICT_RETRIES:
                raise not_found(error, kind, name, namespace) from None
        attempt += 1
        current = get(factory, kind, namespace, name)
        patch = recompute(current)


# --- waiting ---------------------------------------------------------------------------------------------------

def wait_ready(factory: Factory, obj: dict, limit: float, summary: Callable[[dict], str] | None = None) -> int:
    """Poll a Kubeless object until Ready=True for its current generation; fail fast on a failure reason. Each new
    condition is shown once on stderr, in full; the final error line keeps the message's last line. `summary` adds
    a few words to the last line (a function's replica count)."""
    noun, name, namespace = obj["kind"].lower(), obj["metadata"]["name"], obj["metadata"]["namespace"]
    deadline = time.monotonic() + limit
    shown: set[str] = set()
    while True:
        if readiness.current(obj):
            for item in meta.dig(obj, "status", "conditions", default=[]):
                line = readiness.condition_line(item)
                if line not in shown:
                    shown.add(line)
                    factory.info(f"{noun} {name}: " + line.replace("\n", "\n    "))
        state = readiness.wait_state(obj)
        if state == "ready":
            factory.info(f"{noun} {name} is ready" + (f" ({summary(obj)})" if summary else ""))
            return 0
        ready = readiness.ready_condition(obj)
        if state == "failed":
            raise UserError(f"{noun} {name} failed: {readiness.short_reason(ready)} (kubectl kubeless {noun} "
                            f"describe {name} -n {namespace})")
        if time.monotonic() >= deadline:
            why = (readiness.short_reason(ready) if ready and readiness.current(obj) else
                   "the controller has not reported on it (is it running? kubectl -n kubeless get pods)")
            raise UserError(f"{noun} {name} is not ready after {limit:g} s: {why}")
        time.sleep(POLL_INTERVAL)
        obj = get(factory, obj["kind"], namespace, name)


def wait_gone(factory: Factory, objects: list[dict], limit: float) -> None:
    """Poll each object until the API server answers 404 for it, all within `limit` seconds."""
    deadline = time.monotonic() + limit
    for obj in objects:
        while True:
            try:
                factory.client().get(resources.object_path(obj))
            except ApiError as error:
                if error.status == 404:
                    factory.info(f"{resources.display_name(obj)} is gone")
                    break
                raise
            if time.monotonic() >= deadline:
                raise UserError(f"{resources.display_name(obj)} is still being deleted after {limit:g} s (kubectl "
                                f"get {resources.display_name(obj)} -o yaml shows what it waits for)")
            time.sleep(POLL_INTERVAL)


# --- pods ------------------------------------------------------------------------------------------------------

def pod_state(pod: dict) -> str:
    """Why a pod is not up (yet), in kubectl's words: Init:1/2, PodInitializing, ImagePullBackOff, ..."""
    inits = meta.dig(pod, "status", "initContainerStatuses", default=[])
    for index, item in enumerate(inits):
        waiting = meta.dig(item, "state", "waiting", default={})
        terminated = meta.dig(item, "state", "terminated", default={})
        if terminated.get("exitCode"):
            return f"Init:{terminated.get('reason') or 'Error'} in {item.get('name')}"
        if waiting or "running" in (item.get("state") or {}):
            return f"Init:{waiting.get('reason') or f'{index}/{len(inits)}'} ({item.get('name')})"
    for item in meta.dig(pod, "status", "containerStatuses", default=[]):
        reason = meta.dig(item, "state", "waiting", "reason")
        if reason:
            return reason
    return meta.dig(pod, "status", "phase") or "Pending"


def pod_states(pods: list[dict]) -> str:
    """`hello-1: Init:0/2 (install), hello-2: Running`: what each pod is doing, for a message."""
    return ", ".join(f"{pod['metadata']['name']}: {pod_state(pod)}" for pod in pods)


def recent_stop(pods: list[dict], since: datetime) -> dict | None:
    """The latest stop of a (non-init) container of `pods` that finished at `since` or after, less CLOCK_SKEW:
    `{pod, container, reason, exit_code, memory_limit, current}`, `current` when the container has not been
    restarted yet (its log is then the current one, not --previous). None when no container stopped since.

    The restart count cannot tell a stop during a call from one before it without a read before the call, which
    every call would pay for; the time of the stop tells it, read only when a call failed."""
    found, latest = None, since - CLOCK_SKEW
    for pod in pods:
        limits = {c.get("name"): meta.dig(c, "resources", "limits", "memory")
                  for c in meta.dig(pod, "spec", "containers", default=[])}
        for item in meta.dig(pod, "status", "containerStatuses", default=[]):
            for current, terminated in ((False, meta.dig(item, "lastState", "terminated")),
                                        (True, meta.dig(item, "state", "terminated"))):
                finished = readiness.parse_time((terminated or {}).get("finishedAt"))
                if finished is not None and finished >= latest:
                    latest = finished
                    found = {"pod": pod["metadata"].get("name", ""), "container": item.get("name", ""),
                             "reason": terminated.get("reason") or "Error", "exit_code": terminated.get("exitCode"),
                             "memory_limit": limits.get(item.get("name")), "current": current}
    return found
