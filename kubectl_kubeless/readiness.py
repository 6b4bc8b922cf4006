"""Reading a Function's status: the controller's verdict, in the words `ls`, `describe` and `deploy --wait` show.

Kubeless had no status (users saw `0/1 NOT READY` and had to read the controller's logs, kubeless #482). Here the
controller writes `status.replicas`, `status.readyReplicas`, `status.observedGeneration` and conditions (`Ready`,
`Progressing`) whose reason names what failed (kubeless_api.conditions). Functions written before that, or by a
controller that is not running, have no status: `ls` then falls back to the Deployment, as Kubeless did.

`status.restarts` (the restarts of the function's containers and the last stop, OOMKilled among them) shows in
`ls -o wide` and `describe`: a function can be Ready and still be killed by its memory limit on every large call.

Everything here but `summary` and the restarts reads only the Ready condition and the generations, which every Kubeless kind with a
status has.
"""
from __future__ import annotations

from datetime import datetime, timezone

from kubeless_api import conditions, meta

MISSING = "MISSING: Check controller logs"


def ready_condition(obj: dict) -> dict:
    return conditions.get_condition(obj.get("status"), conditions.READY)


def has_status(function: dict) -> bool:
    status = function.get("status") or {}
    return bool(status.get("conditions")) or "replicas" in status


def replicas_text(ready: int, replicas: int, is_ready: bool) -> str:
    return f"{ready}/{replicas} {'READY' if is_ready else 'NOT READY'}"


def current(obj: dict) -> bool:
    """The status describes the spec as it is now (the controller has seen the last change)."""
    generation = meta.dig(obj, "metadata", "generation")
    observed = ready_condition(obj).get("observedGeneration", meta.dig(obj, "status", "observedGeneration"))
    return generation is None or observed == generation


def failed(obj: dict) -> bool:
    """Ready=False for the current generation, with a reason no waiting will fix (conditions.FAILURE_REASONS)."""
    ready = ready_condition(obj)
    return ready.get("status") == "False" and ready.get("reason") in conditions.FAILURE_REASONS and current(obj)


def summary(function: dict, deployment: dict | None = None) -> str:
    """The STATUS column: `1/1 READY`, `0/1 NOT READY (InstallFailed)` (any reason but plain Deploying is shown), or
    the Deployment's count without a status, or MISSING when there is neither."""
    if has_status(function):
        status = function["status"]
        ready_count, replicas = status.get("readyReplicas") or 0, status.get("replicas") or 0
        ready = ready_condition(function)
        is_ready = ready.get("status") == "True" if ready else ready_count > 0
        text = replicas_text(ready_count, replicas, is_ready)
        reason = ready.get("reason") or conditions.REASON_DEPLOYING
        shown = ready.get("status") == "False" and reason != conditions.REASON_DEPLOYING and current(function)
        return f"{text} ({reason})" if shown else text
    if deployment is None:
        return MISSING
    ready_count = meta.dig(deployment, "status", "readyReplicas", default=0)
    return replicas_text(ready_count, meta.dig(deployment, "status", "replicas", default=0), ready_count > 0)


def wait_state(obj: dict) -> str:
    """`ready`, `failed` or `waiting`, for `--wait`: ready is Ready=True for the current generation."""
    ready = ready_condition(obj)
    if not ready or not current(obj):
        return "waiting"
    if ready.get("status") == "True":
        return "ready"
    return "failed" if failed(obj) else "waiting"


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



# --- restarts --------------------------------------------------------------------------------------------------

def restarts_column(function: dict, now: datetime) -> str:
    """`ls -o wide`'s RESTARTS, as kubectl's: `3 (OOMKilled 2m ago)`, `0`; empty without a status (nobody counted)."""
    if not has_status(function):
        return ""
    restarts = function["status"].get("restarts") or {}
    count, when = restarts.get("count") or 0, parse_time(restarts.get("lastTime"))
    return f"{count} ({restarts.get('lastReason') or 'Error'} {age(when, now)} ago)" if when else str(count)


def restarts_detail(function: dict, now: datetime) -> str:
    """describe's `Restarts:` row: `3, last OOMKilled (exit code 137) 2m ago at 2026-01-02T03:04:05Z in pod
    hello-6f9c-x2x7q`."""
    if not has_status(function):
        return "<unknown>"
    restarts = function["status"].get("restarts") or {}
    count, when = restarts.get("count") or 0, parse_time(restarts.get("lastTime"))
    if when is None:
        return str(count)
    text = (f"{count}, last {restarts.get('lastReason') or 'Error'} (exit code {restarts.get('lastExitCode', '?')}) "
            f"{age(when, now)} ago at {restarts['lastTime']}")
    return text + (f" in pod {restarts['lastPod']}" if restarts.get("lastPod") else "")


def parse_time(text: str | None) -> datetime | None:
    """An API time (RFC 3339, `Z`), None when absent or unreadable (Python 3.10 does not read the `Z`)."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def age(moment: datetime, now: datetime) -> str:
    """kubectl's short duration (`45s`, `2m30s`, `2m`, `5h`, `3d`) from `moment` to `now`; `0s` for a moment in the
    future (clock skew)."""
    seconds = max(0, int((now - moment).total_seconds()))
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if seconds < 120:
        return f"{seconds}s"
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 192:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    return f"{days}d" if days < 730 else f"{days // 365}y"
