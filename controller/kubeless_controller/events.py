"""Events on the objects the controller reconciles: what `kubectl describe` and `kubectl get events` show.

Recording an Event never fails a reconcile: it is a courtesy to the user, and the status already says the same.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime

from kubeless_api import meta
from kubeless_controller.client import ApiError, Client

log = logging.getLogger(__name__)

MESSAGE_LIMIT = 1024


def shortened(message: str) -> str:
    """At most MESSAGE_LIMIT characters, keeping a leading `Reason: ` and the end: the end of a log says what went
    wrong."""
    if len(message) <= MESSAGE_LIMIT:
        return message
    prefix = message.split(": ", 1)[0] + ": …" if ": " in message[:40] else "…"
    return prefix + message[-(MESSAGE_LIMIT - len(prefix)):]


class EventRecorder:
    def __init__(self, client: Client, instance: str, now: Callable[[], datetime]):
        self.client, self.instance, self.now = client, instance, now
        self._last_warning: dict[str, str] = {}  # the last repeated-warning message per object key (no repeats)

    def record(self, obj: dict, event_type: str, reason: str, message: str) -> None:
        """A core/v1 Event on `obj`."""
        obj_meta = obj["metadata"]
        moment = meta.rfc3339(self.now())
        event = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{obj_meta['name']}.{time.time_ns():x}", "namespace": obj_meta["namespace"]},
            "involvedObject": {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": obj_meta["name"],
                               "namespace": obj_meta["namespace"], "uid": obj_meta["uid"],
                               "resourceVersion": obj_meta.get("resourceVersion", "")},
            "type": event_type, "reason": reason, "message": shortened(message),
            "firstTimestamp": moment, "lastTimestamp": moment, "count": 1,
            "source": {"component": meta.FIELD_MANAGER},
            "reportingComponent": meta.FIELD_MANAGER, "reportingInstance": self.instance,
        }
        try:
            self.client.create(event)
        except (ApiError, OSError) as error:
            log.warning("could not record event %s on %s/%s: %s", reason, obj_meta["namespace"], obj_meta["name"],
                        error)

    def warn_once(self, obj: dict, reason: str, message: str) -> None:
        """A Warning, unless the last one for this object said the same: a retried failure is reported once."""
        key = f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"
        if self._last_warning.get(key) == message:
            return
        self._last_warning[key] = message
        self.record(obj, "Warning", reason, message)

    def forget(self, key: str) -> None:
        """The failure is over (or the object is gone): the same warning may be reported again."""
        self._last_warning.pop(key, None)
