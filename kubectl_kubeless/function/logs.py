"""`kubectl kubeless function logs [-f]`: the logs of every pod of a function (Kubeless showed one pod's).

With several pods each line is prefixed by its pod, and `-f` follows them all at once, one thread a pod, whole lines
only so that two pods never mix within a line. Before any pod has started it says what each is doing instead.
"""
from __future__ import annotations

import argparse
import threading

from kubeless_api import meta, resources
from kubectl_kubeless import completion, flags, objects
from kubectl_kubeless.command import Factory, add_command
from kubectl_kubeless.errors import UserError


def container_started(pod: dict, container: str) -> bool:
    for item in meta.dig(pod, "status", "containerStatuses", default=[]):
        if item.get("name") == container:
            state, last = item.get("state") or {}, item.get("lastState") or {}
            return "running" in state or "terminated" in state or "terminated" in last
    return False


def logs(args: argparse.Namespace, factory: Factory) -> int:
    name = flags.dns_label(args.name, "function name")
    namespace = factory.namespace()
    client = factory.client()
    pods = client.get(resources.path("v1", "Pod", namespace),
                      labelSelector=f"{meta.LABEL_FUNCTION}={name}").get("items") or []
    pods.sort(key=lambda p: p["metadata"]["name"])
    started = [p for p in pods if container_started(p, name)]
    if not started:
        if not pods:
            raise UserError(f"function \"{name}\" has no pod in namespace \"{namespace}\" (kubectl kubeless function "
                            f"describe {name} -n {namespace})")
        raise UserError(f"no pod of function {name} has started yet ({objects.pod_states(pods)})")
    lock = threading.Lock()
    prefix = len(started) > 1
    failures: list[str] = []

    def stream(pod: dict) -> None:
        pod_name = pod["metadata"]["name"]
        label = f"[pod/{pod_name}] " if prefix else ""
        try:
            response = client.request("GET", resources.path("v1", "Pod", namespace, pod_name, "log"),
                                      query={"container": name, "follow": "true" if args.follow else None},
                                      timeout=0 if args.follow else None)
            if response.status != 200:
                body = response.read()
                refusal = objects.api_status(body) or {}
                raise UserError(f"logs of pod {pod_name}: {refusal.get('message') or body.decode(errors='replace')}")
            pending = b""
            for chunk in response.chunks():
                pending += chunk
                *complete, pending = pending.split(b"\n")
                if complete:
                    text = "".join(f"{label}{line.decode('utf-8', errors='replace')}\n" for line in complete)
                    with lock:
                        factory.write(text)
            if pending:
                with lock:
                    factory.write(f"{label}{pending.decode('utf-8', errors='replace')}\n")
        except UserError as error:
            failures.append(str(error))

    if not args.follow or len(started) == 1:
        for pod in started:
            stream(pod)
    else:
        threads = [threading.Thread(target=stream, args=(pod,), daemon=True) for pod in started]
        for thread in threads:
            thread.start()
        while any(thread.is_alive() for thread in threads):
            for thread in threads:
                thread.join(0.2)
    if failures:
        if len(failures) == len(started):
            raise UserError("; ".join(failures))
        for failure_text in failures:
            factory.warn(failure_text)
    return 0


def register(verbs: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    parser = add_command(verbs, "logs", parents=parents, usage="NAME [-f] [flags]", summary="print a function's logs",
                         description="Print the logs of the function's pods (each line prefixed by its pod when "
                                     "there are several).",
                         examples="  kubectl kubeless function logs hello\n"
                                  "  # keep streaming, from every pod of the function\n"
                                  "  kubectl kubeless function logs hello -f\n",
                         run=logs, complete=completion.FUNCTIONS)
    parser.add_argument("name", metavar="NAME")
    parser.add_argument("-f", "--follow", action="store_true", help="keep streaming new lines")
