"""The consumers' own Prometheus metrics, per trigger and function, after the controller's (kubeless_controller
.metrics renders the process, reconcile and API request ones)."""
from __future__ import annotations

from kubeless_consumers.fleet import Fleet
from kubeless_controller.metrics import _labels

COUNTERS = (("delivered", "delivered", "Messages a function answered with 2xx."),
            ("failed", "failed", "Calls answered with non-2xx, timed out or cut off."),
            ("retried", "retried", "Calls made again after a failed or unreachable one."),
            ("dead_lettered", "dead_lettered", "Messages sent to the dead-letter topic."))


def render(broker: str, fleet: Fleet) -> str:
    with fleet.lock:
        items = sorted(fleet.stats.items())
    rows = []
    for (trigger_key, function), stats in items:
        namespace, trigger = trigger_key.split("/", 1)
        with stats.lock:
            rows.append(({"broker": broker, "namespace": namespace, "trigger": trigger, "function": function},
                         {"delivered": stats.delivered, "failed": stats.failed, "retried": stats.retried,
                          "dead_lettered": stats.dead_lettered, "lag": stats.lag, "running": int(stats.running)}))
    lines = []
    for name, field, help_text in COUNTERS:
        lines += [f"# HELP kubeless_trigger_{name}_total {help_text}", f"# TYPE kubeless_trigger_{name}_total counter",
                  *(f"kubeless_trigger_{name}_total{_labels(labels)} {values[field]}" for labels, values in rows)]
    lines += ["# HELP kubeless_trigger_lag Messages published and not yet delivered (Kafka).",
              "# TYPE kubeless_trigger_lag gauge",
              *(f"kubeless_trigger_lag{_labels(labels)} {values['lag']}" for labels, values in rows
                if values["lag"] is not None),
              "# HELP kubeless_trigger_consumer_running 1 while the consumer is connected and reading.",
              "# TYPE kubeless_trigger_consumer_running gauge",
              *(f"kubeless_trigger_consumer_running{_labels(labels)} {values['running']}" for labels, values in rows)]
    return "\n".join(lines) + "\n"
