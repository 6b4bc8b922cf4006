"""A Function's status from its Deployment and pods: the pure function behind `kubectl get functions`."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest


from kubeless_controller.functions import status

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
HASH = "abc"
PIP_ERROR = "ERROR: Could not find a version that satisfies the requirement no-such-package-xyz==1.0"
IMPORT_ERROR = "cannot load handler hello.hello: ModuleNotFoundError: No module named 'nope'"


def function(generation: int = 2, conditions: list[dict] | None = None) -> dict:
    fn = {"metadata": {"name": "hello", "namespace": "ns", "generation": generation}, "spec": {}}
    if conditions is not None:
        fn["status"] = {"conditions": conditions}
    return fn


def deployment(*, replicas: int = 1, ready: int = 0, updated: int | None = None, available: int | None = None,
               generation: int = 1, observed: int = 1, conditions: list[dict] | None = None,
               content_hash: str = HASH) -> dict:
    return {"metadata": {"name": "hello", "generation": generation},
            "spec": {"replicas": replicas,
                     "template": {"metadata": {"annotations": {status.CONTENT_HASH: content_hash}}}},
            "status": {"observedGeneration": observed, "replicas": replicas, "readyReplicas": ready,
                       "updatedReplicas": replicas if updated is None else updated,
                       "availableReplicas": ready if available is None else available,
                       "conditions": conditions or []}}


def pod(name: str = "hello-1", *, init: list[dict] | None = None, containers: list[dict] | None = None,
        content_hash: str = HASH, created: str = "2025-01-01T00:00:00Z", phase: str = "Pending",
        deleting: bool = False, conditions: list[dict] | None = None) -> dict:
    meta = {"name": name, "creationTimestamp": created, "annotations": {status.CONTENT_HASH: content_hash}}
    if deleting:
        meta["deletionTimestamp"] = "2025-01-01T00:00:00Z"
    return {"metadata": meta, "status": {"phase": phase, "initContainerStatuses": init or [],
                                         "containerStatuses": containers or [], "conditions": conditions or []}}


def terminated(exit_code: int, message: str = "", reason: str = "Error") -> dict:
    return {"terminated": {"exitCode": exit_code, "reason": reason, "message": message}}


def container(name: str, *, state: dict | None = None, last: dict | None = None, ready: bool = False) -> dict:
    return {"name": name, "state": state or {"waiting": {"reason": "PodInitializing"}}, "lastState": last or {},
            "ready": ready}


def ready_of(result: dict) -> tuple[str, str, str]:
    condition = status.get_condition(result, "Ready")
    return condition["status"], condition["reason"], condition["message"]


def progressing_of(result: dict) -> tuple[str, str]:
    condition = status.get_condition(result, "Progressing")
    return condition["status"], condition["reason"]


def compute(fn=None, dep=None, pods=(), error=None, now=NOW, **kwargs) -> dict:
    return status.function_status(fn or function(), dep, list(pods), error, now, **kwargs)


# --- the shape -----------------------------------------------------------------------------------------------

def test_ready_function_status_has_replicas_and_both_conditions():
    result = compute(dep=deployment(replicas=2, ready=2))
    assert result["observedGeneration"] == 2
    assert (result["replicas"], result["readyReplicas"]) == (2, 2)
    assert [c["type"] for c in result["conditions"]] == ["Ready", "Progressing"]
    assert ready_of(result) == ("True", "MinimumReplicasAvailable", "2/2 replicas ready")
    assert progressing_of(result) == ("False", "NewReplicaSetAvailable")
    for condition in result["conditions"]:
        assert condition["lastTransitionTime"] == "2025-01-02T03:04:05Z"
        assert condition["observedGeneration"] == 2


def test_last_transition_time_only_moves_when_the_status_flips():
    first = compute(dep=deployment(ready=1))
    later = NOW + timedelta(minutes=5)
    same = compute(fn=function(conditions=first["conditions"]), dep=deployment(ready=1), now=later)
    assert status.get_condition(same, "Ready")["lastTransitionTime"] == "2025-01-02T03:04:05Z"
    flipped = compute(fn=function(conditions=first["conditions"]), dep=deployment(ready=0), now=later)
    assert status.get_condition(flipped, "Ready")["lastTransitionTime"] == "2025-01-02T03:09:05Z"
    assert status.get_condition(flipped, "Progressing")["lastTransitionTime"] == "2025-01-02T03:09:05Z"


def test_a_status_computed_twice_from_the_same_world_is_equal():
    """The controller skips the write when nothing changed; that needs a stable result."""
    first = compute(dep=deployment(ready=1))
    again = compute(fn=function(conditions=first["conditions"]), dep=deployment(ready=1),
                    now=NOW + timedelta(hours=1))
    assert again == first


# --- Ready=False reasons ---------------------------------------------------------------------------------------

def test_render_error_is_invalid_spec_with_its_message():
    result = compute(dep=None, error="unknown runtime 'cobol85'; supported: python3.11")
    assert ready_of(result) == ("False", "InvalidSpec", "unknown runtime 'cobol85'; supported: python3.11")
    assert progressing_of(result) == ("False", "InvalidSpec")


def test_blocked_apply_uses_the_given_reason():
    result = compute(error="ConfigMap ns/hello already exists", error_reason=status.RESOURCE_EXISTS)
    assert ready_of(result)[:2] == ("False", "ResourceExists")


@pytest.mark.parametrize(("name", "reason"), [("prepare", "PrepareFailed"), ("install", "InstallFailed"),
                                              ("compile", "CompileFailed"), ("user-init", "InitContainerFailed")])
def test_a_failed_init_container_names_its_step_and_carries_its_termination_message(name: str, reason: str):
    failing = pod(init=[container(name, state=terminated(1, PIP_ERROR + "\n"))])
    assert ready_of(compute(dep=deployment(), pods=[failing])) == ("False", reason, PIP_ERROR)


def test_an_init_container_retrying_after_a_failure_still_shows_the_failure():
    retrying = pod(init=[container("prepare", state=terminated(0)),
                         container("install", state={"running": {}}, last=terminated(1, PIP_ERROR))])
    assert ready_of(compute(dep=deployment(), pods=[retrying]))[:2] == ("False", "InstallFailed")


def test_an_init_container_in_crash_loop_backoff_shows_the_failure():
    waiting = pod(init=[container("install", state={"waiting": {"reason": "CrashLoopBackOff"}},
                                  last=terminated(1, PIP_ERROR))])
    assert ready_of(compute(dep=deployment(), pods=[waiting])) == ("False", "InstallFailed", PIP_ERROR)


def test_an_init_container_that_succeeded_after_a_failure_is_fine():
    healed = pod(init=[container("install", state=terminated(0), last=terminated(1, PIP_ERROR))])
    assert ready_of(compute(dep=deployment(), pods=[healed]))[1] == "Deploying"


@pytest.mark.parametrize("state", [{"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}},
                                   terminated(1, IMPORT_ERROR), {"running": {}}])
def test_a_crash_looping_runtime_is_function_crashed_with_the_runtimes_message(state: dict):
    """The state cycles through waiting, running and terminated; the reason must not flap."""
    crashing = pod(init=[container("prepare", state=terminated(0))],
                   containers=[container("hello", state=state, last=terminated(1, IMPORT_ERROR))], phase="Running")
    assert ready_of(compute(dep=deployment(), pods=[crashing])) == ("False", "FunctionCrashed", IMPORT_ERROR)


def test_a_termination_without_a_message_says_reason_and_exit_code():
    crashing = pod(containers=[container("hello", state={"waiting": {"reason": "CrashLoopBackOff"}},
                                         last=terminated(137, reason="OOMKilled"))])
    assert ready_of(compute(dep=deployment(), pods=[crashing]))[1:] == ("FunctionCrashed", "OOMKilled: exit code 137")


def test_a_runtime_that_recovered_is_ready():
    recovered = pod(containers=[container("hello", state={"running": {}}, last=terminated(1, "x"), ready=True)],
                    phase="Running")
    assert ready_of(compute(dep=deployment(ready=1), pods=[recovered]))[:2] == ("True", "MinimumReplicasAvailable")


def test_image_problems_are_reported():
    pulling = pod(init=[container("prepare", state={"waiting": {"reason": "ErrImageNeverPull",
                                                                "message": "image not present"}})])
    assert ready_of(compute(dep=deployment(), pods=[pulling])) == ("False", "ImagePullFailed", "image not present")
    config = pod(containers=[container("hello", state={"waiting": {"reason": "CreateContainerConfigError",
                                                                   "message": 'secret "s" not found'}})])
    assert ready_of(compute(dep=deployment(), pods=[config]))[:2] == ("False", "ContainerConfigError")


def test_failures_of_old_code_terminating_or_evicted_pods_are_ignored():
    broken = [container("hello", state={"waiting": {"reason": "CrashLoopBackOff"}}, last=terminated(1, "old"))]
    old = pod("old", containers=broken, content_hash="previous")
    leaving = pod("leaving", containers=broken, deleting=True)
    evicted = pod("evicted", containers=[container("hello", state=terminated(137))], phase="Failed")
    result = compute(dep=deployment(ready=1), pods=[old, leaving, evicted])
    assert ready_of(result)[:2] == ("True", "MinimumReplicasAvailable")


def test_a_broken_update_shows_even_while_the_previous_pods_serve():
    old = pod("old", containers=[container("hello", state={"running": {}}, ready=True)], content_hash="previous",
              phase="Running")
    new = pod("new", init=[container("install", state=terminated(1, PIP_ERROR))], created="2025-01-01T00:01:00Z")
    result = compute(dep=deployment(ready=1, updated=0), pods=[old, new])
    assert ready_of(result) == ("False", "InstallFailed", PIP_ERROR)
    assert progressing_of(result) == ("True", "ReplicaSetUpdating")


def test_the_newest_failing_pod_is_reported():
    older = pod("a", init=[container("install", state=terminated(1, "old failure"))], created="2025-01-01T00:00:00Z")
    newer = pod("b", init=[container("prepare", state=terminated(1, "new failure"))], created="2025-01-01T00:05:00Z")
    assert ready_of(compute(dep=deployment(), pods=[older, newer])) == ("False", "PrepareFailed", "new failure")


def test_deploying_says_what_the_pod_is_doing():
    installing = pod(init=[container("prepare", state=terminated(0)), container("install", state={"running": {}})])
    assert ready_of(compute(dep=deployment(), pods=[installing])) == (
        "False", "Deploying", "0/1 replicas ready: pod hello-1 is running init container install")
    assert ready_of(compute(dep=None))[:2] == ("False", "Deploying")


def test_unschedulable_replica_failure_and_zero_replicas():
    pending = pod(conditions=[{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                               "message": "0/1 nodes are available"}])
    assert ready_of(compute(dep=deployment(), pods=[pending])) == ("False", "Unschedulable", "0/1 nodes are available")
    quota = deployment(conditions=[{"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
                                    "message": "exceeded quota"}])
    assert ready_of(compute(dep=quota)) == ("False", "ReplicaFailure", "exceeded quota")
    assert ready_of(compute(dep=deployment(replicas=0)))[:2] == ("False", "ScaledToZero")


# --- restarts --------------------------------------------------------------------------------------------------

def stopped(exit_code: int, reason: str, finished: str) -> dict:
    return {"terminated": {"exitCode": exit_code, "reason": reason, "finishedAt": finished}}


def test_restarts_count_every_live_pod_and_name_the_last_stop():
    """A function that is Ready again after an OOM kill still shows it (ls -o wide, describe)."""
    first = pod("hello-a", phase="Running", containers=[
        dict(container("hello", state={"running": {}}, last=stopped(137, "OOMKilled", "2025-01-02T03:00:00Z"),
                       ready=True), restartCount=2)])
    second = pod("hello-b", phase="Running", content_hash="previous", containers=[
        dict(container("hello", state={"running": {}}, last=stopped(1, "Error", "2025-01-02T02:00:00Z"),
                       ready=True), restartCount=1)])
    gone = pod("hello-c", deleting=True, containers=[
        dict(container("hello", last=stopped(1, "Error", "2025-01-02T03:04:00Z")), restartCount=5)])
    result = compute(dep=deployment(replicas=2, ready=2), pods=[first, second, gone])
    assert ready_of(result)[0] == "True"
    assert result["restarts"] == {"count": 3, "lastReason": "OOMKilled", "lastExitCode": 137,
                                  "lastTime": "2025-01-02T03:00:00Z", "lastPod": "hello-a"}


def test_a_container_that_just_stopped_counts_before_its_restart():
    dead = pod(phase="Running", containers=[container("hello", state=stopped(1, "Error", "2025-01-02T03:04:00Z"))])
    assert compute(dep=deployment(), pods=[dead])["restarts"] == {
        "count": 0, "lastReason": "Error", "lastExitCode": 1, "lastTime": "2025-01-02T03:04:00Z", "lastPod": "hello-1"}


def test_no_restarts_leave_the_status_as_it_was():
    """Nothing is added for a function whose containers never stopped: its status is not written again."""
    healthy = pod(phase="Running", containers=[dict(container("hello", state={"running": {}}, ready=True),
                                                    restartCount=0)])
    assert "restarts" not in compute(dep=deployment(ready=1), pods=[healthy])
    init_retry = pod(init=[container("install", state={"running": {}}, last=stopped(1, "Error", "2025-01-02T03:00Z"))])
    assert "restarts" not in compute(dep=deployment(), pods=[init_retry])


# --- Progressing -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("dep", "expected"), [
    (None, ("True", "ReplicaSetUpdating")),
    (deployment(generation=2, observed=1, ready=1), ("True", "ReplicaSetUpdating")),
    (deployment(replicas=2, updated=1, ready=2), ("True", "ReplicaSetUpdating")),
    (deployment(replicas=2, updated=2, ready=1, available=1), ("True", "ReplicaSetUpdating")),
    (deployment(replicas=2, ready=2), ("False", "NewReplicaSetAvailable")),
    (deployment(conditions=[{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                             "message": "took too long"}]), ("False", "ProgressDeadlineExceeded")),
])
def test_progressing_follows_the_rollout(dep, expected):
    assert progressing_of(compute(dep=dep)) == expected


def test_old_replicas_pending_termination_keep_the_rollout_going():
    dep = deployment(replicas=1, ready=1)
    dep["status"].update(replicas=2, updatedReplicas=1)
    assert progressing_of(compute(dep=dep)) == ("True", "ReplicaSetUpdating")


# --- events ----------------------------------------------------------------------------------------------------

def conditions_for(ready: str, reason: str, message: str = "m") -> dict:
    return {"conditions": [{"type": "Ready", "status": ready, "reason": reason, "message": message}]}


@pytest.mark.parametrize(("before", "after", "expected"), [
    ({}, conditions_for("False", "Deploying"), None),
    (conditions_for("False", "Deploying"), conditions_for("True", "MinimumReplicasAvailable", "1/1"),
     ("Normal", "Ready", "1/1")),
    (conditions_for("True", "MinimumReplicasAvailable"), conditions_for("True", "MinimumReplicasAvailable"), None),
    (conditions_for("False", "Deploying"), conditions_for("False", "InstallFailed", "pip"),
     ("Warning", "NotReady", "InstallFailed: pip")),
    (conditions_for("False", "InstallFailed"), conditions_for("False", "InstallFailed", "pip again"), None),
    (conditions_for("True", "MinimumReplicasAvailable"), conditions_for("False", "Deploying", "0/1"),
     ("Warning", "NotReady", "Deploying: 0/1")),
    ({}, conditions_for("False", "InvalidSpec", "bad"), ("Warning", "NotReady", "InvalidSpec: bad")),
    ({}, conditions_for("False", "ScaledToZero"), None),
    (conditions_for("False", "Deploying"), conditions_for("False", "ScaledToZero"), None),
    (conditions_for("True", "MinimumReplicasAvailable"), conditions_for("False", "ScaledToZero", "0 replicas"),
     ("Normal", "ScaledToZero", "0 replicas")),
])
def test_ready_events_only_on_flips_and_new_failures(before, after, expected):
    assert status.ready_event(before, after) == expected
