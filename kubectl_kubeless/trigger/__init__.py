"""`kubectl kubeless trigger KIND VERB`: what calls a function, one module a kind, as Kubeless's trigger commands.

    http      create, update, delete, list (ls)   HTTPTriggers: routes from outside the cluster
    cronjob   create, update, delete, list (ls)   CronJobTriggers: calls on a cron schedule
    kafka     create, update, delete, list (ls)   KafkaTriggers: a topic's messages, to the functions a selector matches
    nats      ... and publish                     NATSTriggers: a subject's messages (core NATS or JetStream)
    kinesis   ... and publish, create-stream      KinesisTriggers: the records of a stream's shard, to a function

    spec      what a kind declares (its flags, one a spec field, and its rules); the objects and patches, pure
    events    what the event kinds share: the selector, the delivery flags, the status columns
    verbs     the four verbs, the same for every kind

The controller reconciles each HTTP and cron trigger, and the consumers (`install --triggers`) each event trigger;
they report on it in status (the READY column of `ls`). The controller deletes the triggers of a function deleted,
since it makes the function their owner.
"""
from __future__ import annotations

import argparse

from kubectl_kubeless.command import add_command
from kubectl_kubeless.trigger import verbs
from kubectl_kubeless.trigger.cronjob import CRON_JOB
from kubectl_kubeless.trigger.http import HTTP
from kubectl_kubeless.trigger.kafka import KAFKA
from kubectl_kubeless.trigger.kinesis import KINESIS
from kubectl_kubeless.trigger.nats import NATS

# in the order the help lists them
KINDS = [HTTP, CRON_JOB, KAFKA, NATS, KINESIS]

EXAMPLES = """\
  kubectl kubeless trigger http create hello --function-name hello
  kubectl kubeless trigger cronjob create tick --function hello --schedule '*/5 * * * *'
  kubectl kubeless trigger kafka create orders --trigger-topic orders --function-selector topic=orders
  kubectl kubeless trigger http ls

Run `kubectl kubeless trigger KIND VERB --help` for the flags and examples of a verb.
"""


def register(commands: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    parser = add_command(commands, "trigger", parents=parents, usage="KIND VERB [flags]",
                         summary="trigger specific operations",
                         description="Call functions from outside: HTTP routes, cron schedules, and the messages of "
                                     "Kafka topics, NATS subjects and Kinesis streams.", examples=EXAMPLES)
    kinds = parser.add_subparsers(dest="trigger_kind", metavar="KIND", required=True, prog=parser.prog)
    for kind in KINDS:
        verbs.register(kind, kinds, parents)
