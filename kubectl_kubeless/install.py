"""`kubectl kubeless install` and `kubectl kubeless uninstall`: the server side (CRDs, RBAC, the controller and its
configuration), applied from the same object list as manifests/kubeless.yaml (`manifests.install_objects`), which the
plugin carries with its runtime catalogue, so a plugin installs the server of its own version.

Install is a server-side apply of each object (field manager kubectl-kubeless), in the list's order; it takes over
fields another manager set (as `kubectl apply --server-side --force-conflicts`), since these objects are the
plugin's to manage, and running it again changes nothing. Uninstall deletes in an order that leaves nothing behind:
the controller first (it must not act on what is going away), then the CRDs, whose deletion deletes every Function
and trigger (and, through their owner references, what the controller made for them), then the RBAC, then the
namespace. It says how many Functions that is and asks first.
"""
from __future__ import annotations

import argparse
import time

from kubeless_api import brokers, conditions, config, meta, resources
from kubectl_kubeless import manifests, objects, printers
from kubectl_kubeless.command import Factory, add_command, add_wait_flags, wait_limit
from kubectl_kubeless.errors import UserError
from kubectl_kubeless.kube import ApiError

RBAC = {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}


def server_objects(triggers: tuple[str, ...] = ()) -> list[dict]:
    return manifests.install_objects(meta.project_version(), manifests.load_catalogue(), triggers)


def trigger_brokers(text: str | None) -> tuple[str, ...]:
    """--triggers kafka,nats,kinesis: the brokers whose consumers to install, each checked."""
    brokers = tuple(dict.fromkeys(part.strip() for part in (text or "").split(",") if part.strip()))
    unknown = [broker for broker in brokers if broker not in meta.EVENT_TRIGGERS]
    if unknown:
        raise UserError(f"unknown trigger kind {unknown[0]!r} in --triggers: use a comma-separated list of "
                        f"{', '.join(meta.EVENT_TRIGGERS)}")
    return brokers


def uninstall_order(items: list[dict]) -> list[dict]:
    """The controller and its configuration, then the CRDs, then the RBAC, then the namespace; within each group,
    the reverse of the install order."""
    def group(obj: dict) -> int:
        if obj["kind"] == "Namespace":
            return 3
        if obj["kind"] in RBAC:
            return 2
        return 1 if obj["kind"] == "CustomResourceDefinition" else 0
    return sorted(reversed(items), key=group)


# --- install ---------------------------------------------------------------------------------------------------

def install(args: argparse.Namespace, factory: Factory) -> int:
    limit = wait_limit(args)
    wanted = server_objects(trigger_brokers(args.triggers))
    if args.dry_run:
        factory.write(printers.objects_output(wanted, args.output or "yaml"))
        return 0
    client = factory.client()
    factory.info(f"Installing Kubeless {meta.project_version()} on {client.target.describe()}")
    applied = []
    for obj in wanted:
        if obj["kind"] == "ConfigMap" and obj["metadata"]["name"] == meta.CONFIG_MAP:
            obj = upgraded_config(factory, obj)
        try:
            applied.append(client.call("PATCH", resources.object_path(obj), query={
                "fieldManager": meta.CLIENT_FIELD_MANAGER, "force": "true"}, body=obj,
                content_type="application/apply-patch+yaml"))
        except ApiError as error:
            raise UserError(f"cannot apply {resources.display_name(obj)}: {error}") from None
        if not args.output:
            factory.write(f"{resources.display_name(obj)} serverside-applied\n")
    if args.output:
        factory.write(printers.objects_output(applied, args.output))
    if args.wait:
        deadline = time.monotonic() + limit
        for deployment in (o for o in wanted if o["kind"] == "Deployment"):
            wait_rollout(factory, deployment, deadline)
    else:
        factory.info(f"The controller is starting in namespace {meta.SYSTEM_NAMESPACE} "
                     "(`kubectl kubeless install --wait` waits for it)")
    return 0


def upgraded_config(factory: Factory, fresh: dict) -> dict:
    """kubeless-config as this version writes it, with the admin's settings kept from the one already there."""
    existing = objects.get_or_none(factory, resources.object_path(fresh))
    return {**fresh, "data": config.upgraded(meta.dig(existing, "data"), fresh["data"])}


def rollout_state(deployment: dict) -> tuple[bool, str]:
    """Where a Deployment's rollout stands (conditions.rollout), in `kubectl rollout status`' words: (done, what it
    is waiting for)."""
    rollout, name = conditions.rollout(deployment), deployment["metadata"]["name"]
    words = {"observed": f"waiting for deployment \"{name}\" spec update to be observed",
             "updated": f"{rollout.updated} of {rollout.wanted} updated replicas are available",
             "terminated": f"{rollout.replicas - rollout.updated} old replicas are pending termination",
             "available": f"{rollout.available} of {rollout.updated} updated replicas are available",
             "done": f"deployment \"{name}\" successfully rolled out"}
    return rollout.done, words[rollout.stage]


def wait_rollout(factory: Factory, deployment: dict, deadline: float) -> None:
    """Poll one Deployment until its rollout is complete; at the deadline, fail with what its pods are doing."""
    client = factory.client()
    name, namespace = deployment["metadata"]["name"], deployment["metadata"]["namespace"]
    path, shown = resources.object_path(deployment), ""
    while True:
        done, message = rollout_state(client.get(path))
        if done:
            factory.info(message)
            return
        if message != shown:
            factory.info(f"Waiting for deployment \"{name}\": {message}")
            shown = message
        if time.monotonic() >= deadline:
            selector = ",".join(f"{k}={v}" for k, v in deployment["spec"]["selector"]["matchLabels"].items())
            pods = client.get(resources.path("v1", "Pod", namespace), labelSelector=selector).get("items") or []
            raise UserError(f"deployment \"{name}\" is not ready in time: {message} "
                            f"({objects.pod_states(pods) or 'no pod yet'}; kubectl -n {namespace} describe "
                            f"deployment {name})")
        time.sleep(objects.POLL_INTERVAL)


# --- uninstall -------------------------------------------------------------------------------------------------

def count_items(factory: Factory, path: str) -> tuple[int, int]:
    """(items, namespaces) of a cluster-wide list, metadata only; (0, 0) when the API is not there."""
    try:
        items = objects.list_metadata(factory.client(), path)
    except ApiError as error:
        raise UserError(f"cannot list {path}: {error}") from None
    return len(items), len({i["metadata"].get("namespace") for i in items})


def what_goes(factory: Factory) -> tuple[str, int]:
    """What uninstall deletes, in a sentence, and the number of Functions among it."""
    functions, namespaces = count_items(factory, resources.path(meta.API_VERSION, "Function"))
    triggers = sum(count_items(factory, resources.path(meta.API_VERSION, kind))[0]
                   for kind in meta.KINDS if kind != "Function")
    lines = [f"{functions} Function{'s' if functions != 1 else ''}"
             + (f" in {namespaces} namespace{'s' if namespaces != 1 else ''}" if functions else "")
             + " (with their Deployments, Services and ConfigMaps)"
             + (f" and {triggers} trigger{'s' if triggers != 1 else ''}" if triggers else ""),
             f"the CRDs ({', '.join(f'{p}.{meta.GROUP}' for p in meta.KINDS.values())}), the controller, its RBAC "
             f"and the namespace {meta.SYSTEM_NAMESPACE}"]
    return "\n".join(f"  - {line}" for line in lines), functions


def delete_object(factory: Factory, obj: dict, dry_run: bool) -> bool:
    """True when it was there. Background propagation: the garbage collector removes what the object owns."""
    query = {"propagationPolicy": "Background", "dryRun": "All" if dry_run else None}
    try:
        factory.client().call("DELETE", resources.object_path(obj), query=query)
        return True
    except ApiError as error:
        if error.status == 404:
            return False
        raise UserError(f"cannot delete {resources.display_name(obj)}: {error}") from None


def uninstall(args: argparse.Namespace, factory: Factory) -> int:
    limit = wait_limit(args)
    where = factory.client().target.describe()
    summary, functions = what_goes(factory)
    if not args.yes and not args.dry_run:
        answer = factory.ask(f"This deletes Kubeless from {where}:\n{summary}\nDelete them? [y/N]")
        if answer is None:
            raise UserError(f"uninstall deletes {functions} Function{'s' if functions != 1 else ''} and the "
                            "Kubeless server side, and stdin is not a terminal to confirm it: pass --yes "
                            "(or see what it would delete with --dry-run)")
        if not answer:
            factory.info("Nothing deleted.")
            return 1
    suffix = " (server dry run)" if args.dry_run else ""
    if args.dry_run:
        factory.info(f"Would delete from {where}:\n{summary}")
    gone = []
    for obj in uninstall_order(server_objects(tuple(meta.EVENT_TRIGGERS))):  # whichever an install added
        if delete_object(factory, obj, args.dry_run):
            factory.write(f"{resources.display_name(obj)} deleted{suffix}\n")
            gone.append(obj)
        else:
            factory.write(f"{resources.display_name(obj)} not found{suffix}\n")
    if args.wait and not args.dry_run:
        objects.wait_gone(factory, [o for o in gone if o["kind"] in ("CustomResourceDefinition", "Namespace")], limit)
    elif not args.dry_run:
        factory.info("The API server finishes deleting the functions and the namespace in the background "
                     "(`kubectl kubeless uninstall --wait` waits for it)")
    return 0


# --- the command line ------------------------------------------------------------------------------------------

INSTALL_EXAMPLES = """\
  # install the server side of this plugin's version, and wait until the controller runs
  kubectl kubeless install --wait

  # with the consumers of Kafka and NATS triggers (Deployments kafka-trigger-controller, nats-trigger-controller)
  kubectl kubeless install --triggers kafka,nats --wait

  # only print it (to review it, or to apply it with other tools)
  kubectl kubeless install --dry-run -o yaml > kubeless.yaml
  kubectl kubeless install --dry-run -o name
"""
UNINSTALL_EXAMPLES = """\
  # see what would be deleted: the server checks each deletion, nothing is deleted
  kubectl kubeless uninstall --dry-run

  # delete it, with every function, after a question
  kubectl kubeless uninstall
  # in a script, without a question; wait until everything is gone
  kubectl kubeless uninstall --yes --wait
"""


def register(commands: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    parser = add_command(
        commands, "install", parents=parents, usage="[--wait] [--dry-run [-o yaml|json|name]] [flags]",
        summary="install the server side: CRDs, RBAC, the controller and its configuration",
        description=f"Apply the Kubeless server side (namespace {meta.SYSTEM_NAMESPACE}) with server-side apply, as "
                    f"field manager {meta.CLIENT_FIELD_MANAGER}. Running it again updates it to this plugin's version.",
        examples=INSTALL_EXAMPLES, run=install)
    parser.add_argument("--dry-run", "--dryrun", dest="dry_run", action="store_true",
                        help="print the objects instead of applying them")
    parser.add_argument("-o", "--output", choices=("yaml", "json", "name"),
                        help="the objects' format (with --dry-run: default yaml)")
    parser.add_argument("--triggers", metavar="KIND[,KIND...]",
                        help=f"also install the consumers of these event triggers: {', '.join(meta.EVENT_TRIGGERS)} "
                             f"(brokers at {brokers.KAFKA_BROKERS}, {brokers.NATS_URL})")
    add_wait_flags(parser, "the controller's rollout is complete")

    parser = add_command(
        commands, "uninstall", parents=parents, usage="[--yes] [--dry-run] [--wait] [flags]",
        summary="delete the server side, and with it every function",
        description="Delete the Kubeless server side: the controller, the CRDs (and so every Function and trigger, "
                    "in every namespace), the RBAC and the namespace. Asks first, unless --yes.",
        examples=UNINSTALL_EXAMPLES, run=uninstall)
    parser.add_argument("-y", "--yes", action="store_true", help="do not ask (needed when stdin is not a terminal)")
    parser.add_argument("--dry-run", "--dryrun", dest="dry_run", action="store_true",
                        help="send each deletion as a server dry run: checked by the API server, nothing deleted")
    add_wait_flags(parser, "the CRDs and the namespace are gone")
