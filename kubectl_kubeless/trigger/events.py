"""What the event triggers (Kafka, NATS, Kinesis) share: the delivery flags, the function selector and the columns
of `ls` read from the consumer's status.

Kubeless's consumers delivered at most once and dropped a message whose call failed. Ours retry with backoff; after
--max-attempts calls the message goes to the dead-letter topic (schema.DEFAULT_MAX_ATTEMPTS and
schema.DEAD_LETTER_SUFFIX say the defaults, which the consumer applies, so a trigger without them keeps following
them).
"""
from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Callable

from kubeless_api import meta, schema
from kubectl_kubeless import flags
from kubectl_kubeless.errors import UserError
from kubectl_kubeless.trigger.spec import NONE, SpecFlag, TriggerKind, identity, label_query, ready_column

SELECTOR_OPTION = "--function-selector"


def function_selector(value: str) -> dict:
    return {"matchLabels": flags.label_selector(value, SELECTOR_OPTION)}


def selector_flag() -> SpecFlag:
    """Kubeless's --function-selector: every function of the namespace with these labels gets the events."""
    return SpecFlag((SELECTOR_OPTION,), schema.FUNCTION_SELECTOR,
                    "the labels of the functions to call, KEY=VALUE,...: each function of the namespace that has "
                    "them all gets every message (e.g. topic=orders)", function_selector, metavar="KEY=VALUE,...",
                    required=True)


def delivery_flags(dead_letter: Callable[[str], str], where: str) -> tuple[SpecFlag, SpecFlag]:
    """--max-attempts and --dead-letter-topic; `dead_letter` checks a name of the kind's `where` (topic, subject)."""
    return (SpecFlag(("--max-attempts",), schema.MAX_ATTEMPTS,
                     f"calls of a function per message before it goes to the dead-letter {where}, retried with "
                     f"backoff (default {schema.DEFAULT_MAX_ATTEMPTS})",
                     partial(flags.whole_number, flag="--max-attempts", minimum=1), metavar="N"),
            SpecFlag(("--dead-letter-topic",), schema.DEAD_LETTER_TOPIC,
                     f"where a message goes after --max-attempts failed calls (default: the {where} + "
                     f"{schema.DEAD_LETTER_SUFFIX})", dead_letter, metavar=where.upper()))


def lag_column(trigger: dict) -> str:
    """LAG: messages published and not yet delivered, as the consumer last counted them."""
    lag = meta.dig(trigger, "status", "lag")
    return NONE if lag is None else str(lag)


class EventTriggerKind(TriggerKind):
    """A trigger whose consumer reads messages from `source` (a topic, a subject, a stream) and delivers them."""
    source = "topic"  # the spec field it reads from
    source_flag = "--trigger-topic"

    def rules(self, spec: dict, given: dict, api_server) -> None:
        """A dead-letter topic that is the source itself would feed failures back to the functions that failed."""
        if spec.get(schema.DEAD_LETTER_TOPIC) and spec.get(schema.DEAD_LETTER_TOPIC) == spec.get(self.source):
            raise UserError(f"--dead-letter-topic {spec[self.source]} is the {self.source} the trigger reads "
                            f"({self.source_flag}): failed messages would come back to the functions that failed "
                            "them; give another one")


class SelectorTriggerKind(EventTriggerKind):
    """Kafka and NATS triggers: a topic (subject), the functions a selector matches, and where failures go."""
    create_note = "A function of the namespace must have the selector's labels."

    def selector_row(self, trigger: dict, *middle: str) -> list[str]:
        """NAME NAMESPACE TOPIC [middle] FUNCTION-SELECTOR READY LAG: Kubeless's columns, then the status."""
        spec = trigger.get("spec") or {}
        return [*identity(trigger), spec.get("topic") or "", *middle,
                label_query(spec.get(schema.FUNCTION_SELECTOR) or {}), ready_column(trigger), lag_column(trigger)]

    def row(self, trigger: dict, now: datetime) -> list[str]:
        return self.selector_row(trigger)
