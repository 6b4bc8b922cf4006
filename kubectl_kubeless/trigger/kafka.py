"""`kubectl kubeless trigger kafka ...`: KafkaTriggers, the messages of a Kafka topic delivered to functions.

The Kafka consumer (installed with `kubectl kubeless install --triggers`) reads the topic in one consumer group per
(trigger, function) and POSTs each message to every function of the namespace that the selector matches, with
Kubeless's event headers. `kubectl kubeless topic ...` creates, lists and publishes to topics on the broker.

Unlike Kubeless: `create` refuses a selector that matches no function (Kubeless made a trigger that delivered to
nobody), and a failed call is retried, then dead-lettered, instead of dropped.
"""
from __future__ import annotations

import re

from kubectl_kubeless.errors import UserError
from kubectl_kubeless.trigger.events import SelectorTriggerKind, delivery_flags, selector_flag
from kubectl_kubeless.trigger.spec import SpecFlag

TOPIC_MAX = 249  # Kafka's own limit on a topic's name


def topic(value: str, what: str = "--trigger-topic") -> str:
    """A Kafka topic name, as the broker checks it."""
    if len(value) > TOPIC_MAX or not re.fullmatch(r"[A-Za-z0-9._-]+", value) or value in (".", ".."):
        raise UserError(f"invalid {what} {value!r}: a Kafka topic is at most {TOPIC_MAX} letters, digits, '.', '_' "
                        "and '-' (not '.' or '..')")
    return value


def dead_letter_topic(value: str) -> str:
    return topic(value, "--dead-letter-topic")


CREATE_EXAMPLES = """\
  # every message of the topic orders, to each function labelled topic=orders
  kubectl kubeless trigger kafka create orders --trigger-topic orders --function-selector topic=orders

  # three calls at most, then the message goes to orders-failed
  kubectl kubeless trigger kafka create orders --trigger-topic orders --function-selector app=shop,tier=api \\
      --max-attempts 3 --dead-letter-topic orders-failed

  # only print the object
  kubectl kubeless trigger kafka create orders --trigger-topic orders --function-selector topic=orders --dryrun
"""
UPDATE_EXAMPLES = """\
  # another topic; the selector stays
  kubectl kubeless trigger kafka update orders --trigger-topic orders-v2
  # back to the default number of attempts
  kubectl kubeless trigger kafka update orders --max-attempts ''
"""


class KafkaTriggerKind(SelectorTriggerKind):
    kind = "KafkaTrigger"
    noun = "kafka"
    title = "Kafka trigger"
    a_title = "a Kafka trigger"
    about = ("Deliver the messages of a Kafka topic to functions: the consumer POSTs each message to every function "
             "of the namespace that has the selector's labels.")
    spec_flags = (
        SpecFlag(("--trigger-topic",), "topic", "the Kafka topic to read", topic, metavar="TOPIC", required=True),
        selector_flag(),
        *delivery_flags(dead_letter_topic, "topic"),
    )
    headers = ("NAME", "NAMESPACE", "TOPIC", "FUNCTION-SELECTOR", "READY", "LAG")
    examples = {"noun": "  kubectl kubeless trigger kafka create orders --trigger-topic orders "
                        "--function-selector topic=orders\n",
                "create": CREATE_EXAMPLES, "update": UPDATE_EXAMPLES}
    sample_name = "orders"


KAFKA = KafkaTriggerKind()
