"""`kubectl kubeless trigger nats ...`: NATSTriggers, the messages of a NATS subject delivered to functions, and
`publish`, which sends one from this machine straight to a NATS server (as Kubeless's did; the wire is
kubectl_kubeless/wire/nats.py).

The NATS consumer (installed with `kubectl kubeless install --triggers`) subscribes in one queue group per (trigger,
function). Core NATS delivers at most once, as Kubeless did; with `--stream` the consumer reads a JetStream stream
that holds the subject instead, acknowledging a message once a function answered it (at least once), with retries
and a dead-letter subject.
"""
from __future__ import annotations

import argparse
import re

from kubectl_kubeless.command import Factory, add_command
from kubectl_kubeless.errors import UserError
from kubectl_kubeless.kube import parse_request_timeout
from kubectl_kubeless.trigger.events import SelectorTriggerKind, delivery_flags, selector_flag
from kubectl_kubeless.trigger.spec import SpecFlag
from kubectl_kubeless.wire import nats

PUBLISH_TIMEOUT = 10.0  # seconds for connect, publish and ack, unless --request-timeout says otherwise
DEFAULT_TOPIC = "kubeless"  # Kubeless's default for publish --topic
STREAM_NAME_MAX = 255
# JetStream's rule: a stream name is a file name on the server, without white space, '.', '*', '>' or path separators
STREAM_NAME = re.compile(r"[^\s.*>/\\\x00-\x1f\x7f]+")


def subscription(value: str) -> str:
    """A subject a trigger subscribes to: dot-separated tokens, `*` for one token and `>` for the rest allowed."""
    tokens = value.split(".")
    if not value or any(not token or any(c.isspace() for c in token) or (token != "*" and "*" in token)
                        or (">" in token and (token != ">" or index != len(tokens) - 1))
                        for index, token in enumerate(tokens)):
        raise UserError(f"invalid --trigger-topic {value!r}: a NATS subject is dot-separated words without white "
                        "space, e.g. orders.new; * stands for one word, a last > for the rest (orders.>)")
    return value


def subject(value: str, what: str) -> str:
    try:
        return nats.check_subject(value)
    except ValueError as error:
        raise UserError(f"invalid {what} {value!r}: {error}") from None


def dead_letter_subject(value: str) -> str:
    return subject(value, "--dead-letter-topic")


def stream_name(value: str) -> str:
    if len(value) > STREAM_NAME_MAX or not STREAM_NAME.fullmatch(value):
        raise UserError(f"invalid --stream {value!r}: a JetStream stream name, without white space, '.', '*', '>', "
                        "'/' or '\\'")
    return value


def server_url(value: str) -> nats.Server:
    try:
        return nats.parse_url(value)
    except ValueError as error:
        raise UserError(f"invalid --url {value!r}: {error}; e.g. nats://nats.nats-io:4222") from None


# --- publish ----------------------------------------------------------------------------------------------------

def publish(args: argparse.Namespace, factory: Factory) -> int:
    server = server_url(args.url)
    topic = subject(args.topic, "--topic")
    stream = stream_name(args.stream) if args.stream else None
    limit = parse_request_timeout(factory.options.request_timeout) or PUBLISH_TIMEOUT
    try:
        ack = nats.publish(server, topic, args.message.encode(), timeout=limit, wants_ack=stream is not None)
    except nats.NatsError as error:
        raise UserError(str(error)) from None
    if ack is None:
        factory.info(f"Message published to {topic} on {server.url}")
        return 0
    if ack.stream != stream:
        factory.warn(f"the subject {topic} is held by the stream {ack.stream}, not {stream}")
    factory.info(f"Message published to {topic} on {server.url}: stream {ack.stream}, sequence {ack.seq}")
    return 0


PUBLISH_EXAMPLES = """\
  # from this machine to a NATS server it reaches (a port-forward, say)
  kubectl -n nats-io port-forward svc/nats 4222 &
  kubectl kubeless trigger nats publish --url nats://localhost:4222 --topic orders --message '{"id": 1}'

  # wait until the JetStream stream ORDERS has stored it
  kubectl kubeless trigger nats publish --url nats://localhost:4222 --topic orders --message hi --stream ORDERS
"""


# --- the kind ---------------------------------------------------------------------------------------------------

CREATE_EXAMPLES = """\
  # every message on orders.new, to each function labelled topic=orders
  kubectl kubeless trigger nats create orders --trigger-topic orders.new --function-selector topic=orders

  # from the JetStream stream ORDERS, at least once, failures to orders.failed after 3 calls
  kubectl kubeless trigger nats create orders --trigger-topic 'orders.*' --function-selector topic=orders \\
      --stream ORDERS --max-attempts 3 --dead-letter-topic orders.failed

  # only print the object
  kubectl kubeless trigger nats create orders --trigger-topic orders.new --function-selector topic=orders \\
      --dryrun -o json
"""
UPDATE_EXAMPLES = """\
  # back to core NATS (at most once)
  kubectl kubeless trigger nats update orders --stream ''
  # other functions
  kubectl kubeless trigger nats update orders --function-selector app=shop
"""


class NATSTriggerKind(SelectorTriggerKind):
    kind = "NATSTrigger"
    noun = "nats"
    title = "NATS trigger"
    a_title = "a NATS trigger"
    about = ("Deliver the messages of a NATS subject to functions: the consumer POSTs each message to every function "
             "of the namespace that has the selector's labels.")
    spec_flags = (
        SpecFlag(("--trigger-topic",), "topic", "the NATS subject to subscribe to (* and a last > are wildcards)",
                 subscription, metavar="SUBJECT", required=True),
        selector_flag(),
        SpecFlag(("--stream",), "stream", "a JetStream stream that holds the subject: read from it, at least once, "
                 "acknowledged after the call (default: core NATS, at most once)", stream_name, metavar="STREAM"),
        *delivery_flags(dead_letter_subject, "subject"),
    )
    headers = ("NAME", "NAMESPACE", "TOPIC", "STREAM", "FUNCTION-SELECTOR", "READY", "LAG")
    examples = {"noun": "  kubectl kubeless trigger nats create orders --trigger-topic orders.new "
                        "--function-selector topic=orders\n"
                        "  kubectl kubeless trigger nats publish --url nats://localhost:4222 --topic orders.new "
                        "--message hi\n",
                "create": CREATE_EXAMPLES, "update": UPDATE_EXAMPLES}
    sample_name = "orders"
    extra_verbs = ("publish",)

    def row(self, trigger, now):
        return self.selector_row(trigger, (trigger.get("spec") or {}).get("stream") or "")

    def register_extra(self, verbs: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
        parser = add_command(verbs, "publish", parents=parents, usage="--url URL --message TEXT [flags]",
                             summary="publish a message to a NATS server from this machine",
                             description="Publish one message to a subject, connecting to the NATS server from this "
                                         "machine (as Kubeless did): the URL must be reachable from here.",
                             examples=PUBLISH_EXAMPLES, run=publish)
        parser.add_argument("--message", required=True, help="the message (required)")
        parser.add_argument("--topic", default=DEFAULT_TOPIC, metavar="SUBJECT",
                            help=f"the subject (default {DEFAULT_TOPIC})")
        parser.add_argument("--url", required=True, help="the NATS server, nats://[USER:PASSWORD@]HOST[:PORT] "
                                                         f"(required; default port {nats.DEFAULT_PORT})")
        parser.add_argument("--stream", metavar="STREAM",
                            help="wait for the ack of the JetStream stream that holds the subject")


NATS = NATSTriggerKind()
