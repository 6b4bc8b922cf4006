"""`kubectl kubeless function delete`: delete a Function; the controller's owner references take what it made.

Nothing is asked, as in Kubeless. The triggers that name the function go with it: the controller makes the function
their owner, so the garbage collector deletes them. The CronJobTrigger `deploy --schedule` made is also deleted here,
which is harmless when the collector has been first and covers a trigger the controller never got to own (it was
not running). Only that one: the same name, the labels deploy gave it, and still calling this function.
"""
from __future__ import annotations

import argparse

from kubeless_api import meta, schema
from kubectl_kubeless import completion, flags, objects
from kubectl_kubeless.command import Factory, add_command
from kubectl_kubeless.function.spec import KIND
from kubectl_kubeless.kube import ApiError
from kubectl_kubeless.trigger.cronjob import CRON_JOB


def delete(args: argparse.Namespace, factory: Factory) -> int:
    name = flags.dns_label(args.name, "function name")
    namespace = factory.namespace()
    client = factory.client()
    try:
        client.delete(objects.kubeless_path(KIND, namespace, name))
    except ApiError as error:
        raise objects.not_found(error, KIND, name, namespace) from None
    trigger_path = objects.kubeless_path(CRON_JOB.kind, namespace, name)
    try:
        trigger = objects.get_or_none(factory, trigger_path)
        labels = meta.dig(trigger, "metadata", "labels", default={})
        if labels.items() >= meta.function_labels(name).items() and \
                meta.dig(trigger, "spec", schema.FUNCTION_NAME) == name:
            client.delete(trigger_path)
    except ApiError:
        pass  # no trigger API, or not allowed to touch it: the function is gone all the same
    factory.write(f'{KIND.lower()}.{meta.GROUP} "{name}" deleted\n')  # kubectl's words
    return 0


def register(verbs: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    parser = add_command(verbs, "delete", parents=parents, usage="NAME [flags]", summary="delete a function",
                         description="Delete a Function; the controller removes what it made for it.",
                         examples="  kubectl kubeless function delete hello\n"
                                  "  kubectl kubeless function delete hello -n team\n",
                         run=delete, complete=completion.FUNCTIONS)
    parser.add_argument("name", metavar="NAME")
