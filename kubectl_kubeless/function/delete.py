"""`kubectl kubeless function delete`: delete a Function; the controller's owner references take what it made.

Nothing is asked, as in Kubeless. The CronJobTrigger `deploy --schedule` made goes with its function (only that one:
the same name, and the labels deploy gave it).
"""
from __future__ import annotations

import argparse

from kubeless_api import meta
from kubectl_kubeless import completion, flags, objects
from kubectl_kubeless.command import Factory, add_command
from kubectl_kubeless.function.spec import KIND
from kubectl_kubeless.kube import ApiError


def delete(args: argparse.Namespace, factory: Factory) -> int:
    name = flags.dns_label(args.name, "function name")
    namespace = factory.namespace()
    client = factory.client()
    try:
        client.delete(objects.kubeless_path(KIND, namespace, name))
    except ApiError as error:
        raise objects.not_found(error, KIND, name, namespace) from None
    trigger_path = objects.kubeless_path("CronJobTrigger", namespace, name)
    try:
        labels = meta.dig(objects.get_or_none(factory, trigger_path), "metadata", "labels", default={})
        if labels.items() >= meta.function_labels(name).items():
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
