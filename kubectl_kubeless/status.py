"""Reading a Function's status: the controller's verdict, in the words `ls`, `describe` and `deploy --wait` show.

Kubeless had no status (users saw `0/1 NOT READY` and had to read the controller's logs, kubeless #482). Here the
controller writes `status.replicas`, `status.readyReplicas`, `status.observedGeneration` and conditions (`Ready`,
`Progressing`) whose reason names what failed. Functions written before that, or by a controller that is not
running, have no status: `ls` then falls back to the Deployment, as Kubeless did.
"""
from __future__ import annotations
from kubeless_api import conditions


# Other Ready=False reasons than conditions.FAILURE_REASONS (Deploying, Unschedulable, a missing Secret, ...) may still
# resolve on their own, so `deploy --wait` waits on them.
FAILURE_REASONS = conditions.FAILURE_REASONS
STILL_DEPLOYING = conditions.REASON_DEPLOYING
MISSING = "MISSING: Check controller logs"


def condition(function: dict, kind: str) -> dict | None:
    for item in (function.get("status") or {}).get("conditions") or []:
        if item.get("type") == kind:
            return item
    return None


def has_status(function: dict) -> bool:
    status = function.get("status") or {}
    return bool(status.get("conditions")) or "replicas" in status


def replicas_text(ready: int, replicas: int, is_ready: bool) -> str:
    return f"{ready}/{replicas} {'READY' if is_ready else 'NOT READY'}"


def failure(function: dict) -> dict | None:
    """The Ready condition when it says the function failed for the current generation, else None."""
    ready = condition(function, conditions.READY)
    if ready and ready.get("status") == "False" and ready.get("reason") in FAILURE_REASONS and current(function):
        return ready
    return None


def current(function: dict) -> bool:
    """The status describes the spec as it is now (the controller has seen the last change)."""
    generation = (function.get("metadata") or {}).get("generation")
    status = function.get("status") or {}
    ready = condition(function, conditions.READY) or {}
    observed = ready.get("observedGeneration", status.get("observedGeneration"))
    return generation is None or observed == generation


def summary(function: dict, deployment: dict | None = None) -> str:
    """The STATUS column: `1/1 READY`, `0/1 NOT READY (InstallFailed)` (any reason but plain Deploying is shown), or
    the Deployment's count without a status, or MISSING when there is neither."""
    if has_status(function):
        status = function["status"]
        ready_count, replicas = status.get("readyReplicas") or 0, status.get("replicas") or 0
        ready = condition(function, conditions.READY)
        is_ready = ready.get("status") == "True" if ready else ready_count > 0
        text = replicas_text(ready_count, replicas, is_ready)
        reason = (ready or {}).get("reason") or STILL_DEPLOYING
        shown = ready and ready.get("status") == "False" and reason != STILL_DEPLOYING and current(function)
        return f"{text} ({reason})" if shown else text
    if deployment is None:
        return MISSING
    status = deployment.get("status") or {}
    ready_count = status.get("readyReplicas") or 0
    return replicas_text(ready_count, status.get("replicas") or 0, ready_count > 0)


def wait_state(function: dict) -> str:
    """`ready`, `failed` or `waiting`, for `deploy --wait`: ready is Ready=True for the current generation."""
    ready = condition(function, conditions.READY)
    if ready is None or not current(function):
        return "waiting"
    if ready.get("status") == "True":
        return "ready"
    return "failed" if failure(function) else "waiting"


def condition_line(item: dict) -> str:
    """`Ready=False InstallFailed: pip could not find ...` (a progress line, and a row of describe)."""
    text = f"{item.get('type')}={item.get('status')}"
    if item.get("reason"):
        text += f" {item['reason']}"
    if item.get("message"):
        text += f": {item['message']}"
    return text


def short_reason(item: dict) -> str:
    """`InstallFailed: <the message's last line>`: a log tail ends with what went wrong."""
    lines = [line.strip() for line in (item.get("message") or "").splitlines() if line.strip()]
    return f"{item.get('reason') or 'Unknown'}: {lines[-1]}" if lines else item.get("reason") or "Unknown"
