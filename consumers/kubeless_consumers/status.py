"""An event trigger's status from its consumers' Stats: pure, so the rules are tested without a broker.

The counts are those of the status when this process first saw the trigger plus what its consumers counted since:
a restarted consumer process goes on counting instead of starting over from zero.
"""
from __future__ import annotations

from datetime import datetime

from kubeless_api import conditions, meta
from kubeless_consumers.delivery import Stats
from kubeless_controller.runner import Problem
from kubeless_controller.triggers.base import trigger_status

COUNTS = ("delivered", "retried", "deadLettered")
STATS_FIELDS = {"delivered": "delivered", "retried": "retried", "deadLettered": "dead_lettered"}


def baseline(trigger: dict) -> dict[str, int]:
    status = trigger.get("status") or {}
    return {name: int(status.get(name) or 0) for name in COUNTS}


def readiness(topic: str, functions: list[str], stats: dict[str, Stats], running: set[str],
              problem: Problem | None) -> tuple[bool, str, str]:
    if problem is not None:
        return False, problem.reason, problem.message
    if not functions:
        return (False, conditions.REASON_NO_FUNCTION_MATCHES,
                "no function in the trigger's namespace matches its selector")
    broken = sorted((name, stats[name].broker_error) for name in functions if name in stats and
                    stats[name].broker_error)
    if broken:
        return False, conditions.REASON_BROKER_UNREACHABLE, f"{broken[0][1]} (function {broken[0][0]})"
    waiting = [name for name in functions if name not in running]
    if waiting:
        return False, conditions.REASON_CONSUMER_STARTING, f"connecting the consumer of {', '.join(waiting)}"
    count = len(functions)
    return True, conditions.REASON_CONSUMING, f"{count} consumer{'s' if count != 1 else ''} reading {topic}"


def event_status(trigger: dict, topic: str, functions: list[str], stats: dict[str, Stats], running: set[str],
                 start: dict[str, int], now: datetime, problem: Problem | None = None) -> dict:
    ready, reason, message = readiness(topic, functions, stats, running, problem)
    counts = dict(start)
    lags, last_error, last_time, checkpoint = [], "", None, ""
    for name, item in sorted(stats.items()):
        with item.lock:
            for field, attribute in STATS_FIELDS.items():
                counts[field] += getattr(item, attribute)
            if name in functions and item.lag is not None:
                lags.append(item.lag)
            if item.last_error_time is not None and (last_time is None or item.last_error_time > last_time):
                last_error, last_time = item.last_error, item.last_error_time
            checkpoint = item.checkpoint or checkpoint
    previous = trigger.get("status") or {}
    return trigger_status(
        trigger, ready, reason, message, now, functions=functions, **counts,
        lag=sum(lags) if lags else None,
        lastError=last_error or previous.get("lastError"),
        lastErrorTime=meta.rfc3339(last_time) if last_time else previous.get("lastErrorTime"),
        checkpoint=checkpoint or previous.get("checkpoint"))


def only_counts_differ(before: dict, after: dict) -> bool:
    """The same Ready condition and functions: a change a periodic write can carry later."""
    def shape(status: dict) -> tuple:
        return (conditions.get_condition(status, conditions.READY).get("status"),
                conditions.get_condition(status, conditions.READY).get("reason"),
                tuple(status.get("functions") or ()), status.get("observedGeneration"))
    return shape(before) == shape(after)
