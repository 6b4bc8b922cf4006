"""`kubectl kubeless function ls|describe`: the functions of a namespace as a table, or one function in full.

Unlike Kubeless, the STATUS column reads the Function's status (and shows why it failed, readiness.py), `ls -o
wide` columns line up, and `describe` shows the status conditions. A Function without a status falls back on its
Deployment, as Kubeless read it. The restarts of the function's containers (the controller counts them in
status.restarts) show as a last `-o wide` column, RESTARTS `3 (OOMKilled 2m ago)`, after Kubeless' own columns, and as
describe's `Restarts:` row: no request more than before.
"""
from __future__ import annotations

import argparse
import json
from datetime import datetime, timezone

from kubeless_api import meta, resources
from kubectl_kubeless import completion, flags, objects, printers, readiness
from kubectl_kubeless.command import Factory, add_command
from kubectl_kubeless.function.spec import KIND
from kubectl_kubeless.kube import ApiError


# --- what ls and describe show (pure) -------------------------------------------------------------------------

def dependencies_text(function: dict) -> str:
    """Node's package.json shows as `name: version` lines, as Kubeless did; other deps as they are."""
    spec = function.get("spec") or {}
    deps = spec.get("deps") or ""
    if "nodejs" in (spec.get("runtime") or "") and deps:
        try:
            return "\n".join(f"{k}: {v}" for k, v in (json.loads(deps).get("dependencies") or {}).items())
        except (ValueError, AttributeError):
            pass
    return deps.strip()


def main_container(function: dict) -> dict:
    containers = meta.dig(function, "spec", "deployment", "spec", "template", "spec", "containers") or [{}]
    return containers[0] or {}


def memory(container: dict) -> str:
    return meta.dig(container, "resources", "requests", "memory", default="")


def ls_headers(wide: bool) -> list[str]:
    headers = ["NAME", "NAMESPACE", "HANDLER", "RUNTIME", "DEPENDENCIES", "STATUS"]
    return headers + ["MEMORY", "ENV", "LABEL", "RESTARTS"] if wide else headers


def ls_row(function: dict, deployment: dict | None = None, *, wide: bool = False,
           now: datetime | None = None) -> list[str]:
    metadata, spec = function.get("metadata") or {}, function.get("spec") or {}
    row = [metadata.get("name", ""), metadata.get("namespace", ""), spec.get("handler", ""), spec.get("runtime", ""),
           dependencies_text(function), readiness.summary(function, deployment)]
    if wide:
        container = main_container(function)
        row += [memory(container),
                "\n".join(f"{e.get('name')} = {e.get('value', '')}" for e in container.get("env") or []),
                "\n".join(f"{k} : {v}" for k, v in (metadata.get("labels") or {}).items()),
                readiness.restarts_column(function, now or datetime.now(timezone.utc))]
    return row


def describe_text(function: dict, deployment: dict | None = None, now: datetime | None = None) -> str:
    metadata, spec = function.get("metadata") or {}, function.get("spec") or {}
    container = main_container(function)
    rows = [("Name", metadata.get("name", "")), ("Namespace", metadata.get("namespace", "")),
            ("Handler", spec.get("handler", "")), ("Runtime", spec.get("runtime", "")),
            ("Label", printers.compact_json(metadata.get("labels") or {})),
            ("Envvar", printers.compact_json(container.get("env") or [])),
            ("Memory", memory(container)),
            ("Dependencies", spec.get("deps", "").strip()),
            ("Status", readiness.summary(function, deployment)),
            ("Restarts", readiness.restarts_detail(function, now or datetime.now(timezone.utc)))]
    found = meta.dig(function, "status", "conditions", default=[])
    rows.append(("Conditions", "\n".join(readiness.condition_line(c) for c in found) or "<none>"))
    return printers.fields(rows)


# --- the Deployments, for functions without a status -----------------------------------------------------------

def get_deployment(factory: Factory, function: dict) -> dict | None:
    """Kubeless' status source, read only for a Function the controller has not written a status on."""
    if readiness.has_status(function):
        return None
    metadata = function["metadata"]
    return objects.get_or_none(factory, resources.path("apps/v1", "Deployment", metadata["namespace"],
                                                       metadata["name"]))


def namespace_deployments(factory: Factory, namespace: str, functions: list[dict]) -> dict | None:
    """For `ls` of many functions without a status: the namespace's Deployments in one request rather than one
    request each (a hundred round trips add up). None when fewer than two functions need it, or when listing is not
    allowed (then each is read on its own, as before)."""
    if sum(not readiness.has_status(f) for f in functions) < 2:
        return None
    try:
        items = factory.client().get(resources.path("apps/v1", "Deployment", namespace)).get("items") or []
    except ApiError:
        return None
    found = {item["metadata"]["name"]: item for item in items}
    return {f["metadata"]["name"]: None if readiness.has_status(f) else found.get(f["metadata"]["name"])
            for f in functions}


# --- the verbs -------------------------------------------------------------------------------------------------

def ls(args: argparse.Namespace, factory: Factory) -> int:
    names = [flags.dns_label(n, "function name") for n in args.names]
    namespace = factory.namespace()
    functions, missing = objects.named_or_all(factory, KIND, namespace, names)
    if args.output in ("json", "yaml"):
        factory.write(printers.dump(functions, args.output))
    elif args.output == "name":
        factory.write(printers.names(functions))
    elif functions or not names:
        wide = args.output == "wide"
        deployments = namespace_deployments(factory, namespace, functions)
        rows = [ls_row(f, deployments[f["metadata"]["name"]] if deployments is not None else
                       get_deployment(factory, f), wide=wide) for f in functions]
        factory.write(printers.table(ls_headers(wide), rows))
    if missing:
        raise objects.missing_error(KIND, missing, namespace)
    return 0


def describe(args: argparse.Namespace, factory: Factory) -> int:
    name = flags.dns_label(args.name, "function name")
    function = objects.get(factory, KIND, factory.namespace(), name)
    if args.output:
        factory.write(printers.dump(function, args.output))
    else:
        factory.write(describe_text(function, get_deployment(factory, function)))
    return 0


def register(verbs: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    parser = add_command(verbs, "list", parents=parents, usage="[NAME...] [flags]", summary="list functions",
                         description="List the functions of a namespace, or the named ones.",
                         examples="  kubectl kubeless function ls\n  kubectl kubeless function ls hello -o wide\n",
                         run=ls, aliases=("ls",), complete=completion.FUNCTIONS)
    parser.add_argument("names", nargs="*", metavar="NAME")
    parser.add_argument("-o", "--output", "--out", dest="output", choices=("wide", "json", "yaml", "name"))

    parser = add_command(verbs, "describe", parents=parents, usage="NAME [flags]",
                         summary="show a function and its status",
                         description="Show a function: its settings and the controller's status conditions.",
                         examples="  kubectl kubeless function describe hello\n"
                                  "  kubectl kubeless function describe hello -o yaml\n",
                         run=describe, complete=completion.FUNCTIONS)
    parser.add_argument("name", metavar="NAME")
    parser.add_argument("-o", "--output", "--out", dest="output", choices=("json", "yaml"))
