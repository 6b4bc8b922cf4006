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

from kubeless_api import meta
from kubectl_kubeless import manifests, printers
from kubectl_kubeless.command import Factory
from kubectl_kubeless.errors import UserError
from kubectl_kubeless.kube import ApiError, parse_request_timeout

# kind -> resource (plural); the group and version come from each object's apiVersion. A unit test checks that
# every kind of manifests.install_objects is here.
RESOURCES = {
    "Namespace": "namespaces", "CustomResourceDefinition": "customresourcedefinitions",
    "ServiceAccount": "serviceaccounts", "ClusterRole": "clusterroles", "ClusterRoleBinding": "clusterrolebindings",
    "Role": "roles", "RoleBinding": "rolebindings", "ConfigMap": "configmaps", "Service": "services",
    "Deployment": "deployments",
}
RBAC = {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}
WAIT_TIMEOUT = "120"
POLL_INTERVAL = 1.0
METADATA_ONLY = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"


def server_objects() -> list[dict]:
    return manifests.install_objects(meta.project_version(), manifests.load_catalogue())


def object_path(obj: dict) -> str:
    """The object's URL path, from its apiVersion, kind, namespace and name."""
    version = obj["apiVersion"]
    prefix = "/api/v1" if version == "v1" else f"/apis/{version}"
    namespace = obj["metadata"].get("namespace")
    scope = f"/namespaces/{namespace}" if namespace else ""
    return f"{prefix}{scope}/{RESOURCES[obj['kind']]}/{obj['metadata']['name']}"


def display_name(obj: dict) -> str:
    """kubectl's way: `deployment.apps/kubeless-controller-manager`, `namespace/kubeless`."""
    group = obj["apiVersion"].rpartition("/")[0]
    return f"{obj['kind'].lower()}{'.' + group if group else ''}/{obj['metadata']['name']}"


def uninstall_order(objects: list[dict]) -> list[dict]:
    """The controller and its configuration, then the CRDs, then the RBAC, then the namespace; within each group,
    the reverse of the install order."""
    def group(obj: dict) -> int:
        if obj["kind"] == "Namespace":
            return 3
        if obj["kind"] in RBAC:
            return 2
        return 1 if obj["kind"] == "CustomResourceDefinition" else 0
    return sorted(reversed(objects), key=group)


# --- install ---------------------------------------------------------------------------------------------------

def install(args: argparse.Namespace, factory: Factory) -> int:
    wait_limit = parse_request_timeout(args.wait_timeout) if args.wait else None
    objects = server_objects()
    if args.dry_run:
        if args.output == "name":
            factory.write("".join(display_name(o) + "\n" for o in objects))
        else:
            factory.write(printers.dump_all(objects, args.output or "yaml"))
        return 0
    client = factory.client()
    factory.info(f"Installing Kubeless {meta.project_version()} on {client.target.describe()}"
                 if hasattr(client, "target") else f"Installing Kubeless {meta.project_version()}")
    applied = []
    for obj in objects:
        try:
            applied.append(client.call("PATCH", object_path(obj), query={
                "fieldManager": meta.CLIENT_FIELD_MANAGER, "force": "true"}, body=obj,
                content_type="application/apply-patch+yaml"))
        except ApiError as error:
            raise UserError(f"cannot apply {display_name(obj)}: {error}") from None
        if not args.output:
            factory.write(f"{display_name(obj)} serverside-applied\n")
    if args.output:
        factory.write(printers.dump_all(applied, args.output) if args.output != "name" else
                      "".join(display_name(o) + "\n" for o in objects))
    if args.wait:
        deadline = time.monotonic() + (wait_limit or float(WAIT_TIMEOUT))
        for deployment in (o for o in objects if o["kind"] == "Deployment"):
            wait_rollout(factory, deployment, deadline)
    else:
        factory.info(f"The controller is starting in namespace {meta.SYSTEM_NAMESPACE} "
                     "(`kubectl kubeless install --wait` waits for it)")
    return 0


def rollout_state(deployment: dict) -> tuple[bool, str]:
    """kubectl rollout status' rule: (done, what it is waiting for)."""
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    name = deployment["metadata"]["name"]
    wanted = spec.get("replicas", 1)
    if (status.get("observedGeneration") or 0) < deployment["metadata"].get("generation", 0):
        return False, f"waiting for deployment \"{name}\" spec update to be observed"
    updated, available = status.get("updatedReplicas") or 0, status.get("availableReplicas") or 0
    if updated < wanted:
        return False, f"{updated} of {wanted} updated replicas are available"
    if (status.get("replicas") or 0) > updated:
        return False, f"{status['replicas'] - updated} old replicas are pending termination"
    if available < updated:
        return False, f"{available} of {updated} updated replicas are available"
    return True, f"deployment \"{name}\" successfully rolled out"


def wait_rollout(factory: Factory, deployment: dict, deadline: float) -> None:
    """Poll one Deployment until its rollout is complete; at the deadline, fail with what its pods are doing."""
    from kubectl_kubeless.function import pod_state  # noqa: PLC0415 - kubectl's words for a pod that is not up

    client = factory.client()
    path, shown = object_path(deployment), ""
    while True:
        done, message = rollout_state(client.get(path))
        if done:
            factory.info(message)
            return
        if message != shown:
            factory.info(f"Waiting for deployment \"{deployment['metadata']['name']}\": {message}")
            shown = message
        if time.monotonic() >= deadline:
            namespace = deployment["metadata"]["namespace"]
            selector = ",".join(f"{k}={v}" for k, v in deployment["spec"]["selector"]["matchLabels"].items())
            pods = client.get(f"/api/v1/namespaces/{namespace}/pods", labelSelector=selector).get("items") or []
            states = ", ".join(f"{p['metadata']['name']}: {pod_state(p)}" for p in pods) or "no pod yet"
            raise UserError(f"deployment \"{deployment['metadata']['name']}\" is not ready in time: {message} "
                            f"({states}; kubectl -n {namespace} describe deployment "
                            f"{deployment['metadata']['name']})")
        time.sleep(POLL_INTERVAL)


# --- uninstall -------------------------------------------------------------------------------------------------

def count_items(factory: Factory, path: str) -> tuple[int, int]:
    """(items, namespaces) of a cluster-wide list, metadata only; (0, 0) when the API is not there."""
    import json  # noqa: PLC0415

    response = factory.client().request("GET", path, headers={"Accept": METADATA_ONLY})
    body = response.read()
    if response.status == 404:
        return 0, 0
    if response.status != 200:
        from kubectl_kubeless.kube import api_error  # noqa: PLC0415

        raise UserError(f"cannot list {path}: {api_error(response.status, body, response.reason)}")
    items = json.loads(body).get("items") or []
    return len(items), len({i["metadata"].get("namespace") for i in items})


def what_goes(factory: Factory) -> tuple[str, int]:
    """What uninstall deletes, in a sentence, and the number of Functions among it."""
    functions, namespaces = count_items(factory, f"/apis/{meta.API_VERSION}/{meta.FUNCTIONS}")
    triggers = sum(count_items(factory, f"/apis/{meta.API_VERSION}/{plural}")[0]
                   for kind, plural in meta.KINDS.items() if kind != "Function")
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
        factory.client().call("DELETE", object_path(obj), query=query)
        return True
    except ApiError as error:
        if error.status == 404:
            return False
        raise UserError(f"cannot delete {display_name(obj)}: {error}") from None


def uninstall(args: argparse.Namespace, factory: Factory) -> int:
    wait_limit = parse_request_timeout(args.wait_timeout) if args.wait else None
    client = factory.client()
    where = client.target.describe() if hasattr(client, "target") else "the cluster"
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
    for obj in uninstall_order(server_objects()):
        if delete_object(factory, obj, args.dry_run):
            factory.write(f"{display_name(obj)} deleted{suffix}\n")
            gone.append(obj)
        else:
            factory.write(f"{display_name(obj)} not found{suffix}\n")
    if args.wait and not args.dry_run:
        wait_gone(factory, [o for o in gone if o["kind"] in ("CustomResourceDefinition", "Namespace")], wait_limit)
    elif not args.dry_run:
        factory.info("The API server finishes deleting the functions and the namespace in the background "
                     "(`kubectl kubeless uninstall --wait` waits for it)")
    return 0


def wait_gone(factory: Factory, objects: list[dict], limit: float | None) -> None:
    limit = limit or float(WAIT_TIMEOUT)
    deadline = time.monotonic() + limit
    for obj in objects:
        while True:
            try:
                factory.client().get(object_path(obj))
            except ApiError as error:
                if error.status == 404:
                    factory.info(f"{display_name(obj)} is gone")
                    break
                raise
            if time.monotonic() >= deadline:
                raise UserError(f"{display_name(obj)} is still being deleted after {limit:g} s (kubectl get "
                                f"{display_name(obj)} -o yaml shows what it waits for)")
            time.sleep(POLL_INTERVAL)


# --- the command line ------------------------------------------------------------------------------------------

INSTALL_EXAMPLES = """examples:
  # install the server side of this plugin's version, and wait until the controller runs
  kubectl kubeless install --wait

  # only print it (to review it, or to apply it with other tools)
  kubectl kubeless install --dry-run -o yaml > kubeless.yaml
  kubectl kubeless install --dry-run -o name
"""
UNINSTALL_EXAMPLES = """examples:
  # see what would be deleted: the server checks each deletion, nothing is deleted
  kubectl kubeless uninstall --dry-run

  # delete it, with every function, after a question
  kubectl kubeless uninstall
  # in a script, without a question; wait until everything is gone
  kubectl kubeless uninstall --yes --wait
"""


def register(commands, parents: list[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "install", parents=parents, usage="%(prog)s [--wait] [--dry-run [-o yaml|json|name]] [flags]",
        help="install the server side: CRDs, RBAC, the controller and its configuration",
        description=f"Apply the Kubeless server side (namespace {meta.SYSTEM_NAMESPACE}) with server-side apply, as "
                    f"field manager {meta.CLIENT_FIELD_MANAGER}. Running it again updates it to this plugin's version.",
        epilog=INSTALL_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry-run", "--dryrun", dest="dry_run", action="store_true",
                        help="print the objects instead of applying them")
    parser.add_argument("-o", "--output", choices=("yaml", "json", "name"),
                        help="the objects' format (with --dry-run: default yaml)")
    parser.add_argument("--wait", action="store_true", help="wait until the controller's rollout is complete")
    parser.add_argument("--wait-timeout", default=WAIT_TIMEOUT, metavar="DURATION",
                        help="give up waiting after this long (default 120 s)")
    parser.set_defaults(run=install)

    parser = commands.add_parser(
        "uninstall", parents=parents, usage="%(prog)s [--yes] [--dry-run] [--wait] [flags]",
        help="delete the server side, and with it every function",
        description="Delete the Kubeless server side: the controller, the CRDs (and so every Function and trigger, "
                    "in every namespace), the RBAC and the namespace. Asks first, unless --yes.",
        epilog=UNINSTALL_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-y", "--yes", action="store_true", help="do not ask (needed when stdin is not a terminal)")
    parser.add_argument("--dry-run", "--dryrun", dest="dry_run", action="store_true",
                        help="send each deletion as a server dry run: checked by the API server, nothing deleted")
    parser.add_argument("--wait", action="store_true", help="wait until the CRDs and the namespace are gone")
    parser.add_argument("--wait-timeout", default=WAIT_TIMEOUT, metavar="DURATION",
                        help="give up waiting after this long (default 120 s)")
    parser.set_defaults(run=uninstall)
