"""CronJobTrigger → a batch/v1 CronJob whose Job calls the function, and a status that shows how the calls end.

As Kubeless's cronjob-trigger, with its defects fixed: the call fails when the function answers anything but 2xx
(Kubeless's curl had no --fail, so a function answering 500 looked called successfully), the CronJob is named
after the trigger (Kubeless named it after the function but deleted it by the trigger's name), and the call's pod
passes Pod Security "restricted" like the function's own.

Ready
  True   Scheduled          the CronJob exists; the last call (if any) succeeded
  False  LastCallFailed     the last finished call failed; status.lastMessage says how (the function's answer)
  False  FunctionNotFound, ServiceNotFound, InvalidSpec, ResourceExists   as for every trigger
"""
from __future__ import annotations

import json

from kubeless_api import conditions, contract, meta, resources, schema
from kubeless_controller.functions.render import hardened, pod_security
from kubeless_controller.runner import Runner, Unready, Watch
from kubeless_controller.triggers.base import (TriggerReconciler, child_metadata, function_watches,
                                               named_function_key, service_port, trigger_status)

CRON_JOB = ("batch/v1", "CronJob")
# On the Jobs and pods of a trigger's CronJob: which trigger they call for. Never the function's own labels, which
# its Service and its status select pods by.
LABEL_TRIGGER = f"{meta.GROUP}/cronjobtrigger"
# Kubeless's history and resources for the call's pod
SUCCESSFUL_JOBS_HISTORY = 3
FAILED_JOBS_HISTORY = 1
CALL_RESOURCES = {"limits": {"memory": "64Mi", "cpu": "100m"}, "requests": {"memory": "16Mi", "cpu": "10m"}}
# Time the call's pod needs beside the call itself: pulling nothing, starting a shell and curl
START_MARGIN_SECONDS = 30

# The call, in the provision image's shell. The answer's status decides the Job's fate: 2xx succeeds, anything
# else fails with the answer as the pod's termination message (the status shows it).
CALL_SCRIPT = r"""set -u
set -- --silent --show-error --max-time "$TIMEOUT" -w '\n%{http_code}' \
  -H "event-id: $POD_UID" -H "event-time: $(date -u +%Y-%m-%dT%H:%M:%SZ)" \
  -H "event-type: application/json" -H "event-namespace: $EVENT_NAMESPACE"
if [ -n "${PAYLOAD+set}" ]; then set -- "$@" -H "Content-Type: application/json" --data-binary "$PAYLOAD"; fi
answer=$(curl "$@" "$URL") || exit $?
code=${answer##*
}
body=${answer%"
$code"}
case "$code" in
  2??) printf '%s' "$body"; exit 0 ;;
  *) printf 'the function answered %s: %s\n' "$code" "$(printf '%s' "$body" | head -c 2000)" >&2; exit 1 ;;
esac
"""


def call_env(trigger: dict, function: dict, port: int) -> list[dict]:
    metadata = function["metadata"]
    env = [{"name": "URL", "value": f"http://{metadata['name']}.{metadata['namespace']}.svc:{port}/"},
           {"name": "TIMEOUT", "value": str(meta.timeout_seconds(function))},
           {"name": "EVENT_NAMESPACE", "value": contract.EVENT_NAMESPACE_CRON},
           {"name": "POD_UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}}]
    payload = trigger["spec"].get("payload")
    if payload is not None:
        encoded = json.dumps(payload, separators=(",", ":"))
        if len(encoded.encode()) > schema.CRON_PAYLOAD_MAX_BYTES:
            raise Unready(conditions.REASON_INVALID_SPEC, f"spec.payload: {len(encoded.encode())} bytes as JSON, over "
                          f"the {schema.CRON_PAYLOAD_MAX_BYTES} a scheduled call carries")
        env.append({"name": "PAYLOAD", "value": encoded})
    return env


def cron_job(trigger: dict, function: dict, port: int, provision_image: str, pull_secret: str = "") -> dict:
    name = trigger["metadata"]["name"]
    if len(name) > schema.CRON_JOB_TRIGGER_NAME_MAX:
        raise Unready(conditions.REASON_INVALID_SPEC, f"metadata.name: {name!r} is longer than "
                      f"{schema.CRON_JOB_TRIGGER_NAME_MAX} characters, the limit of a CronJob's name; use a shorter "
                      "trigger name")
    timeout = meta.timeout_seconds(function)
    call_labels = {LABEL_TRIGGER: name}
    container = hardened({"name": "trigger", "image": provision_image, "command": ["/bin/sh", "-c", CALL_SCRIPT],
                          "env": call_env(trigger, function, port), "resources": CALL_RESOURCES})
    pod = {"restartPolicy": "Never", "automountServiceAccountToken": False, "securityContext": pod_security(None),
           "containers": [container]}
    if pull_secret:
        pod["imagePullSecrets"] = [{"name": pull_secret}]
    return {"apiVersion": CRON_JOB[0], "kind": CRON_JOB[1], "metadata": child_metadata(trigger), "spec": {
        "schedule": trigger["spec"]["schedule"],
        "successfulJobsHistoryLimit": SUCCESSFUL_JOBS_HISTORY, "failedJobsHistoryLimit": FAILED_JOBS_HISTORY,
        "jobTemplate": {"metadata": {"labels": call_labels}, "spec": {
            # one call per schedule: a retried call would call a function that did answer, again
            "backoffLimit": 0, "activeDeadlineSeconds": timeout + START_MARGIN_SECONDS,
            "template": {"metadata": {"labels": call_labels}, "spec": pod}}}}}


def trigger_of(obj: dict) -> str | None:
    name = (obj["metadata"].get("labels") or {}).get(LABEL_TRIGGER)
    return f"{obj['metadata']['namespace']}/{name}" if name else None


def job_outcome(job: dict) -> tuple[str, str] | None:
    """("Succeeded" or "Failed", the Job's own reason) once a Job has finished; None while it runs."""
    for item in meta.dig(job, "status", "conditions", default=[]) or []:
        if item.get("status") == "True" and item.get("type") in ("Complete", "Failed"):
            outcome = "Succeeded" if item["type"] == "Complete" else "Failed"
            return outcome, item.get("message") or item.get("reason") or ""
    return None


def finished_at(job: dict) -> str:
    status = job.get("status") or {}
    return status.get("completionTime") or next(
        (item.get("lastTransitionTime") or "" for item in status.get("conditions") or []
         if item.get("type") == "Failed"), "") or job["metadata"].get("creationTimestamp", "")


def last_finished(jobs: list[dict]) -> dict | None:
    done = [job for job in jobs if job_outcome(job) is not None]
    return max(done, key=finished_at, default=None)


def pod_message(pods: list[dict]) -> str:
    """What the call's pod said when it stopped: the answer it got, or curl's error."""
    for pod in pods:
        for container in meta.dig(pod, "status", "containerStatuses", default=[]) or []:
            terminated = meta.dig(container, "state", "terminated")
            if terminated and terminated.get("message"):
                return terminated["message"].strip()
    return ""


class CronJobTriggerReconciler(TriggerReconciler):
    kind = "CronJobTrigger"
    watches = (
        Watch("cronjobtriggers", meta.API_VERSION, "CronJobTrigger", index=named_function_key),
        *function_watches("cronjobtriggers"),
        Watch("cronjobs", *CRON_JOB, label_selector=meta.CREATED_BY_SELECTOR),
        Watch("jobs", "batch/v1", "Job", key=trigger_of, label_selector=LABEL_TRIGGER, index=trigger_of),
    )

    def __init__(self):
        # per trigger: the uid of its last failed Job and what that Job's pod said (listed once per failed Job)
        self._messages: dict[str, tuple[str, str]] = {}

    def children(self, trigger: dict, function: dict, service: dict | None, runner: Runner) -> list[dict]:
        if service is None:
            raise Unready(conditions.REASON_SERVICE_NOT_FOUND, f"function {function['metadata']['name']} has no "
                          "Service yet")
        settings = runner.settings
        return [cron_job(trigger, function, service_port(service), settings.provision_image,
                         settings.provision_image_secret)]

    def status(self, trigger: dict, applied: list[dict], runner: Runner) -> dict:
        cron = applied[0]
        key = f"{trigger['metadata']['namespace']}/{trigger['metadata']['name']}"
        jobs = runner.cache("jobs").by_index(key)
        last = last_finished(jobs)
        fields = {"lastScheduleTime": meta.dig(cron, "status", "lastScheduleTime")}
        schedule = trigger["spec"]["schedule"]
        function = trigger["spec"][schema.FUNCTION_NAME]
        if last is None:
            return trigger_status(trigger, True, conditions.REASON_SCHEDULED,
                                  f"calls function {function} on schedule {schedule}", runner.now(), **fields)
        outcome, reason = job_outcome(last)
        fields.update(lastJob=last["metadata"]["name"], lastResult=outcome, lastCompletionTime=finished_at(last))
        if outcome == "Succeeded":
            return trigger_status(trigger, True, conditions.REASON_SCHEDULED,
                                  f"calls function {function} on schedule {schedule}; the last call succeeded",
                                  runner.now(), **fields)
        message = self.failure_message(key, last, runner) or reason
        fields["lastMessage"] = message
        return trigger_status(trigger, False, conditions.REASON_LAST_CALL_FAILED,
                              f"the call of Job {last['metadata']['name']} failed: {message}", runner.now(), **fields)

    def failure_message(self, key: str, job: dict, runner: Runner) -> str:
        uid, metadata = job["metadata"]["uid"], job["metadata"]
        known = self._messages.get(key)
        if known is None or known[0] != uid:
            pods, _ = runner.client.list(resources.path("v1", "Pod", metadata["namespace"]),
                                         label_selector=f"job-name={metadata['name']}")
            known = self._messages[key] = (uid, pod_message(pods))
        return known[1]
