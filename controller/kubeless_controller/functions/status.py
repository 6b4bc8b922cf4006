"""A Function's status, computed from what the cluster shows: a pure function, so every rule is unit-tested.

The status answers the user's first question, "does my function work, and if not, why?", without a trip through
pod logs. It has two conditions:

Ready
  True   MinimumReplicasAvailable   at least one replica answers
  False  InvalidSpec                the Function cannot be rendered (unknown runtime, bad handler, ...) or the
                                    API server rejected what it renders to; message: the error
  False  ResourceExists             a child's name is taken by an object that is not the function's
  False  ApplyFailed                the API server failed to store a child (retried with backoff)
  False  PrepareFailed              init container `prepare` (fetch, checksum, unpack the code) failed,
         InstallFailed              `install` (the dependencies, e.g. pip) failed,
         CompileFailed              `compile` failed; message: the container's termination message, which
                                    `terminationMessagePolicy: FallbackToLogsOnError` fills with its log's tail
  False  InitContainerFailed        another init container failed
  False  FunctionCrashed            a container of the function exited or is in CrashLoopBackOff; message: its
                                    last termination message (the runtime writes why it could not load the handler)
  False  ImagePullFailed            an image cannot be pulled
  False  ContainerConfigError       a container cannot be created (e.g. a missing Secret)
  False  ReplicaFailure             the Deployment cannot create pods (quota, admission)
  False  Unschedulable              no node takes the pod
  False  ScaledToZero               the Deployment asks for no replica
  False  Deploying                  pods are on their way and nothing failed

Progressing
  True   ReplicaSetUpdating         a rollout is underway
  False  NewReplicaSetAvailable     the rollout is complete
  False  ProgressDeadlineExceeded   the Deployment gave up progressing
  False  InvalidSpec, ResourceExists, ApplyFailed   nothing was rolled out

Failures are read from the pods of the Deployment's current code (the `kubeless.io/content-hash` annotation), so a
broken update shows at once while the previous pods still serve, and a fixed one is not blamed for old crashes.

Beside the conditions, `restarts` counts the restarts of the function's containers in its live pods (as kubectl's
RESTARTS column does) and names the last stop: its reason (OOMKilled, Error), exit code, time and pod. A function
that is Ready can still be killed by its memory limit on every large call; this is where `ls -o wide` and
`describe` see it. It is left out while no container ever stopped, so the status of a healthy function does not
change.
"""
from __future__ import annotations

from datetime import datetime

from kubeless_api import conditions, meta
from kubeless_api.conditions import get_condition

CONTENT_HASH = meta.CONTENT_HASH_ANNOTATION
INIT_FAILURES = conditions.REASON_INIT_FAILED
IMAGE_PROBLEMS = frozenset({"ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName"})
CONFIG_PROBLEMS = frozenset({"CreateContainerConfigError", "CreateContainerError"})

READY_REASON = conditions.REASON_READY
RESOURCE_EXISTS = conditions.REASON_RESOURCE_EXISTS
APPLY_FAILED = conditions.REASON_APPLY_FAILED
DEPLOYING = conditions.REASON_DEPLOYING
SCALED_TO_ZERO = conditions.REASON_SCALED_TO_ZERO
INVALID_SPEC = conditions.REASON_INVALID_SPEC
UPDATING = conditions.REASON_UPDATING
ROLLED_OUT = conditions.REASON_ROLLED_OUT


def function_status(function: dict, deployment: dict | None, pods: list[dict], render_error: str | None,
                    now: datetime, *, error_reason: str = INVALID_SPEC) -> dict:
    """The whole `status` of a Function. `render_error` says why its spec could not be applied, if it could not;
    `error_reason` names that case (InvalidSpec, or ResourceExists when a child's name is taken)."""
    generation = function["metadata"].get("generation", 0)
    previous = {c.get("type"): c for c in (function.get("status") or {}).get("conditions") or []}
    deployment_status = (deployment or {}).get("status") or {}
    ready = readiness(deployment, pods, render_error, error_reason)
    progress = progressing(deployment, render_error, error_reason)
    result = {
        "observedGeneration": generation,
        "replicas": deployment_status.get("replicas", 0),
        "readyReplicas": deployment_status.get("readyReplicas", 0),
        "conditions": [condition(conditions.READY, *ready, previous, now, generation),
                       condition(conditions.PROGRESSING, *progress, previous, now, generation)],
    }
    stopped = restarts(pods)
    if stopped:
        result["restarts"] = stopped
    return result


def condition(condition_type: str, status: bool, reason: str, message: str, previous: dict[str, dict], now: datetime,
              generation: int) -> dict:
    value = "True" if status else "False"
    before = previous.get(condition_type) or {}
    since = before.get("lastTransitionTime") if before.get("status") == value else None
    return {"type": condition_type, "status": value, "reason": reason, "message": message,
            "lastTransitionTime": since or meta.rfc3339(now), "observedGeneration": generation}


# --- Ready -----------------------------------------------------------------------------------------------------

def readiness(deployment: dict | None, pods: list[dict], render_error: str | None,
              error_reason: str = INVALID_SPEC) -> tuple[bool, str, str]:
    if render_error:
        return False, error_reason, render_error
    current = current_pods(deployment, pods)
    for pod in current:
        failure = pod_failure(pod)
        if failure:
            return (False, *failure)
    if deployment is None:
        return False, DEPLOYING, "waiting for the Deployment"
    desired = desired_replicas(deployment)
    status = deployment.get("status") or {}
    ready = status.get("readyReplicas") or 0
    if desired == 0:
        return False, conditions.REASON_SCALED_TO_ZERO, "the Deployment asks for 0 replicas"
    replica_failure = deployment_condition(deployment, conditions.REASON_REPLICA_FAILURE)
    if replica_failure.get("status") == "True" and not ready:
        return False, conditions.REASON_REPLICA_FAILURE, replica_failure.get("message") or replica_failure.get("reason", "")
    if ready >= 1:
        return True, READY_REASON, f"{ready}/{desired} replicas ready"
    for pod in current:
        scheduled = pod_condition(pod, "PodScheduled")
        if scheduled.get("status") == "False" and scheduled.get("reason") == conditions.REASON_UNSCHEDULABLE:
            return False, conditions.REASON_UNSCHEDULABLE, scheduled.get("message") or "no node can run the pod"
    hint = next(filter(None, map(pod_progress, current)), "")
    return False, DEPLOYING, f"0/{desired} replicas ready" + (f": {hint}" if hint else "")


def live_pods(pods: list[dict]) -> list[dict]:
    """The pods that serve or will: not the terminating or evicted ones."""
    return [pod for pod in pods if not pod["metadata"].get("deletionTimestamp")
            and (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]


def current_pods(deployment: dict | None, pods: list[dict]) -> list[dict]:
    """The live pods of the Deployment's current code, newest first (not the terminating or evicted ones)."""
    live = live_pods(pods)
    template = (((deployment or {}).get("spec") or {}).get("template") or {}).get("metadata") or {}
    wanted = (template.get("annotations") or {}).get(CONTENT_HASH)
    if wanted:
        live = [pod for pod in live if (pod["metadata"].get("annotations") or {}).get(CONTENT_HASH) == wanted]
    return sorted(live, key=lambda pod: pod["metadata"].get("creationTimestamp") or "", reverse=True)


def pod_failure(pod: dict) -> tuple[str, str] | None:
    """(reason, message) when one of the pod's containers failed, init containers first."""
    status = pod.get("status") or {}
    for container in status.get("initContainerStatuses") or []:
        reason = INIT_FAILURES.get(container.get("name"), conditions.REASON_OTHER_INIT_FAILED)
        terminated = failed_termination(container, init=True)
        if terminated is not None:
            return reason, termination_message(terminated)
        problem = waiting_problem(container)
        if problem:
            return problem
    for container in status.get("containerStatuses") or []:
        terminated = failed_termination(container, init=False)
        if terminated is not None:
            message = termination_message(terminated)
            return conditions.REASON_CRASHED, message
        problem = waiting_problem(container)
        if problem:
            return problem
    return None


def failed_termination(container: dict, *, init: bool) -> dict | None:
    """The termination that shows the container is failing, if it is.

    An init container fails when it exited non-zero and has not succeeded since (it may be retrying). A long-running
    container fails when it is not running (exited, or waiting in CrashLoopBackOff), or is running again but not yet
    ready after an earlier exit: in a crash loop the state cycles through all three, and the status must not flap.
    """
    state = container.get("state") or {}
    last = (container.get("lastState") or {}).get("terminated")
    terminated = state.get("terminated")
    if init:
        if terminated is not None:
            return terminated if terminated.get("exitCode", 0) != 0 else None
        if last is not None and last.get("exitCode", 0) != 0:
            return last
        return None
    if terminated is not None:
        return terminated
    if last is not None and not container.get("ready"):
        return last
    return None


def termination_message(terminated: dict) -> str:
    message = (terminated.get("message") or "").strip()
    if message:
        return message
    reason = terminated.get("reason") or "Error"
    return f"{reason}: exit code {terminated.get('exitCode', '?')}"


def waiting_problem(container: dict) -> tuple[str, str] | None:
    waiting = (container.get("state") or {}).get("waiting") or {}
    reason = waiting.get("reason")
    message = waiting.get("message") or f"container {container.get('name')}: {reason}"
    if reason in IMAGE_PROBLEMS:
        return conditions.REASON_IMAGE_PULL_FAILED, message
    if reason in CONFIG_PROBLEMS:
        return conditions.REASON_CONTAINER_CONFIG, message
    return None


def pod_progress(pod: dict) -> str:
    """What a pod that is on its way is doing, for the Deploying message."""
    name = pod["metadata"].get("name", "")
    status = pod.get("status") or {}
    for container in status.get("initContainerStatuses") or []:
        if "running" in (container.get("state") or {}):
            return f"pod {name} is running init container {container.get('name')}"
    for container in status.get("containerStatuses") or []:
        if "running" in (container.get("state") or {}) and not container.get("ready"):
            return f"pod {name} is starting, not ready yet"
    return f"pod {name} is {status.get('phase', 'Pending')}" if name else ""


def pod_condition(pod: dict, condition_type: str) -> dict:
    return get_condition(pod.get("status"), condition_type)


def deployment_condition(deployment: dict | None, condition_type: str) -> dict:
    return get_condition((deployment or {}).get("status"), condition_type)


def desired_replicas(deployment: dict) -> int:
    replicas = (deployment.get("spec") or {}).get("replicas")
    return 1 if replicas is None else replicas


# --- Restarts --------------------------------------------------------------------------------------------------

def restarts(pods: list[dict]) -> dict | None:
    """`{count, lastReason, lastExitCode, lastTime, lastPod}` over the containers (not the init containers, whose
    failures the conditions name) of the live pods, of any code: an old pod that still serves and is OOM-killed
    counts. The last stop is the latest `finishedAt` of a container's last termination, or of its current one while
    it waits to be restarted. None when no container ever stopped."""
    count, last, last_pod = 0, None, ""
    for pod in live_pods(pods):
        for container in (pod.get("status") or {}).get("containerStatuses") or []:
            count += container.get("restartCount") or 0
            for terminated in ((container.get("lastState") or {}).get("terminated"),
                               (container.get("state") or {}).get("terminated")):
                # the kubelet writes RFC 3339 in seconds and UTC: the strings sort as the times do
                if terminated and terminated.get("finishedAt") and \
                        (last is None or terminated["finishedAt"] > last["finishedAt"]):
                    last, last_pod = terminated, pod["metadata"].get("name", "")
    if last is None:
        return {"count": count} if count else None
    return {"count": count, "lastReason": last.get("reason") or "Error", "lastExitCode": last.get("exitCode", 0),
            "lastTime": last["finishedAt"], "lastPod": last_pod}


# --- Progressing -----------------------------------------------------------------------------------------------

def progressing(deployment: dict | None, render_error: str | None,
                error_reason: str = INVALID_SPEC) -> tuple[bool, str, str]:
    """After `kubectl rollout status`: the rollout is done when every replica runs the current template."""
    if render_error:
        return False, error_reason, "nothing is rolled out until the function can be applied"
    if deployment is None:
        return True, UPDATING, "creating the Deployment"
    deadline = deployment_condition(deployment, "Progressing")
    if deadline.get("status") == "False" and deadline.get("reason") == conditions.REASON_DEADLINE_EXCEEDED:
        return False, conditions.REASON_DEADLINE_EXCEEDED, deadline.get("message") or "the rollout stopped progressing"
    state = conditions.rollout(deployment)
    if state.stage == "observed":
        return True, UPDATING, "waiting for the Deployment controller to see the new spec"
    if state.stage == "updated":
        return True, UPDATING, f"{state.updated} of {state.wanted} replicas updated"
    if state.stage == "terminated":
        return True, UPDATING, f"{state.replicas - state.updated} old replicas pending termination"
    if state.stage == "available":
        return True, UPDATING, f"{state.available} of {state.updated} updated replicas available"
    return False, ROLLED_OUT, f"{state.updated} replicas up to date and available"


# --- Events ----------------------------------------------------------------------------------------------------

def ready_event(before: dict | None, after: dict) -> tuple[str, str, str] | None:
    """The (type, reason, message) of the Event to emit when the Ready condition changes, if it does.

    A flip of Ready emits `Ready` or `NotReady`; so does a new failure reason while not ready (Deploying becoming
    InstallFailed). Staying the same, or a brand-new function starting to deploy, emits nothing. Scaling to zero is
    asked for, not a failure: a Normal `ScaledToZero` when a ready function goes there, nothing when a new one starts
    there.
    """
    old = get_condition(before, conditions.READY)
    new = get_condition(after, conditions.READY)
    if new.get("status") == "True":
        if old.get("status") != "True":
            return "Normal", "Ready", new.get("message", "")
        return None
    if new.get("reason") in (DEPLOYING, SCALED_TO_ZERO) and old.get("status") != "True":
        return None  # on its way, or asked for no replica: nothing went wrong
    if new.get("reason") == SCALED_TO_ZERO:
        return "Normal", "ScaledToZero", new.get("message", "")
    if old.get("status") == "True" or old.get("reason") != new.get("reason"):
        return "Warning", "NotReady", f"{new.get('reason')}: {new.get('message', '')}"
    return None
