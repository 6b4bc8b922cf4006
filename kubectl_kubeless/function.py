"""`kubectl kubeless function deploy|update|delete|ls|describe|call|logs`: authoring and invoking functions.

Each verb is one function that follows kubectl's steps: parse the flags into options, complete them (namespace,
the code read from disk), validate them (all before any request, so bad input creates nothing), then run against
the API server. The Function object itself is built by pure functions (`build_function`, `update_patch`) that unit
tests read without a cluster.

Differences from Kubeless, on purpose:
- `--image-pull-policy` defaults to IfNotPresent (Kubeless: Always); the project's images are local, never pulled.
- `update` changes only what its flags give (Kubeless reset --timeout, --port and the pull policy to defaults),
  through a JSON merge patch guarded by the resourceVersion it was computed from.
- `--memory`/`--cpu` set only the quantities given, as both requests and limits (Kubeless wrote a zero for the
  other one).
- `ls` reads the Function's status (and shows why it failed), `ls -o wide` columns line up, `describe` shows the
  status conditions, `deploy --wait` waits for Ready, and `logs` follows every pod of the function.
"""
from __future__ import annotations

import argparse
import base64
import copy
import json
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

from kubeless_api import conditions, contract, meta
from kubectl_kubeless import flags, printers, source, status
from kubectl_kubeless.command import Factory
from kubectl_kubeless.errors import UserError
from kubectl_kubeless.kube import ApiError, core_path, custom_path, parse_request_timeout
from kubectl_kubeless.serverconfig import UnknownRuntime, check_runtime
from kubectl_kubeless.source import Code

KIND = "Function"
DEPLOY_DEFAULTS = {"image_pull_policy": "IfNotPresent", "timeout": meta.DEFAULT_TIMEOUT, "port": meta.FUNCTION_PORT,
                   "service_port": 0}
WAIT_TIMEOUT = "120"
POLL_INTERVAL = 1.0


# --- options ---------------------------------------------------------------------------------------------------

@dataclass
class FunctionOptions:
    """What deploy and update are asked to do. For update, None (or empty) means "not given: leave it as it is"."""
    name: str
    namespace: str = "default"
    runtime: str | None = None
    handler: str | None = None
    from_file: str | None = None
    dependencies: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    secrets: list[str] = field(default_factory=list)
    env: list[dict] | None = None
    node_selectors: dict[str, str] | None = None
    service_account: str | None = None
    memory: str | None = None
    cpu: str | None = None
    runtime_image: str | None = None
    image_pull_policy: str | None = None
    timeout: str | None = None
    port: int | None = None
    service_port: int | None = None
    headless: bool = False
    schedule: str | None = None
    # completed from the files named above
    code: Code | None = None
    deps: str | None = None


def parse_options(args: argparse.Namespace, *, deploy: bool) -> FunctionOptions:
    """Flags to options, each value checked; raises UserError before anything is read or sent."""
    values = {key: getattr(args, key, None) for key in DEPLOY_DEFAULTS}
    if deploy:
        values = {key: DEPLOY_DEFAULTS[key] if value is None else value for key, value in values.items()}
    options = FunctionOptions(
        name=flags.dns_label(args.name, "function name"),
        runtime=args.runtime or None,
        handler=flags.handler(args.handler) if args.handler else None,
        from_file=args.from_file or None,
        dependencies=args.dependencies or None,
        labels=flags.label_map(args.label),
        secrets=[flags.dns_label(s, "--secrets name") for s in flags.split_list(args.secrets)],
        env=flags.env_list(args.env) if args.env else None,
        node_selectors=flags.key_values(args.node_selectors, "--node-selectors") if args.node_selectors else None,
        service_account=args.service_account or None,
        memory=flags.quantity(args.memory, "--memory") if args.memory else None,
        cpu=flags.quantity(args.cpu, "--cpu") if args.cpu else None,
        runtime_image=args.runtime_image or None,
        image_pull_policy=flags.pull_policy(values["image_pull_policy"]) if values["image_pull_policy"] else None,
        timeout=flags.timeout(values["timeout"]) if values["timeout"] is not None else None,
        port=flags.port(values["port"], "--port", 1) if values["port"] is not None else None,
        service_port=flags.port(values["service_port"], "--servicePort", 0)
        if values["service_port"] is not None else None,
        headless=bool(args.headless),
        schedule=flags.schedule(args.schedule) if getattr(args, "schedule", None) else None,
    )
    if deploy:
        if not options.runtime and not options.runtime_image:
            raise UserError("either --runtime or --runtime-image must be given")
        if options.runtime and not options.handler:
            raise UserError("--handler is required with --runtime (<module>.<function>, e.g. hello.handler)")
        if options.runtime and not options.from_file:
            raise UserError("--from-file is required with --runtime: the function's code (a file or an http(s) URL)")
    return options


def complete_sources(options: FunctionOptions, fetch=source.download) -> None:
    """Read --from-file and --dependencies, and refuse what a ConfigMap could not hold."""
    if options.from_file:
        options.code = source.read_code(options.from_file, fetch)
    if options.dependencies:
        options.deps = source.read_deps(options.dependencies, fetch)
    source.check_size(options.from_file or "", options.code, options.deps)


# --- the Function object (pure) -------------------------------------------------------------------------------

def secret_volume(secret: str) -> dict:
    return {"name": f"{secret}-vol", "secret": {"secretName": secret}}


def secret_mount(secret: str) -> dict:
    return {"name": f"{secret}-vol", "mountPath": f"/{secret}"}


def resource_quantities(options: FunctionOptions) -> dict[str, str]:
    return {key: value for key, value in (("memory", options.memory), ("cpu", options.cpu)) if value}


def build_function(options: FunctionOptions) -> dict:
    """The Function `deploy` creates, shaped as Kubeless' CLI made it."""
    labels = {**meta.function_labels(options.name), **options.labels}
    container: dict = {}
    if options.runtime_image:
        container["image"] = options.runtime_image
    container["imagePullPolicy"] = options.image_pull_policy or DEPLOY_DEFAULTS["image_pull_policy"]
    if options.env:
        container["env"] = copy.deepcopy(options.env)
    quantities = resource_quantities(options)
    if quantities:
        container["resources"] = {"requests": dict(quantities), "limits": dict(quantities)}
    if options.secrets:
        container["volumeMounts"] = [secret_mount(s) for s in options.secrets]
    pod: dict = {"containers": [container]}
    if options.secrets:
        pod["volumes"] = [secret_volume(s) for s in options.secrets]
    if options.node_selectors:
        pod["nodeSelector"] = dict(options.node_selectors)
    if options.service_account:
        pod["serviceAccountName"] = options.service_account

    port = options.port or meta.FUNCTION_PORT
    service = {"ports": [{"name": meta.FUNCTION_PORT_NAME, "port": options.service_port or port, "targetPort": port,
                          "protocol": "TCP"}],
               "selector": dict(labels), "type": "ClusterIP"}
    if options.headless:
        service["clusterIP"] = "None"

    spec = {**code_spec(options), "timeout": options.timeout or meta.DEFAULT_TIMEOUT}
    spec["deployment"] = {"spec": {"template": {"spec": pod}}}
    spec["service"] = service
    return {"apiVersion": meta.API_VERSION, "kind": KIND,
            "metadata": {"name": options.name, "namespace": options.namespace, "labels": labels},
            "spec": spec}


def code_spec(options: FunctionOptions) -> dict:
    """The spec fields about the code (handler, source, runtime, dependencies) that the options give."""
    spec: dict = {}
    if options.handler:
        spec["handler"] = options.handler
    if options.code:
        spec.update(options.code.spec())
    if options.runtime:
        spec["runtime"] = options.runtime
    if options.deps is not None:
        spec["deps"] = options.deps
    return spec


def cron_trigger(options: FunctionOptions) -> dict:
    """The CronJobTrigger `deploy --schedule` creates next to the function, named after it."""
    return {"apiVersion": meta.API_VERSION, "kind": "CronJobTrigger",
            "metadata": {"name": options.name, "namespace": options.namespace,
                         "labels": meta.function_labels(options.name)},
            "spec": {"schedule": options.schedule, "function-name": options.name}}


def dig(obj: dict | None, *keys: str) -> dict:
    for key in keys:
        obj = (obj or {}).get(key)
    return obj or {}


def given_for_update(options: FunctionOptions) -> bool:
    return any([options.runtime, options.handler, options.from_file, options.dependencies, options.labels,
                options.secrets, options.env is not None, options.node_selectors is not None,
                options.service_account, options.memory, options.cpu, options.runtime_image,
                options.image_pull_policy, options.timeout, options.port is not None,
                options.service_port is not None, options.headless])


def update_patch(current: dict, options: FunctionOptions) -> dict:
    """A JSON merge patch changing only what the options give. Lists (containers, volumes, ports) are replaced
    whole by a merge patch, so they are rebuilt from the current object with only the asked change."""
    spec = code_spec(options)
    if options.timeout:
        spec["timeout"] = options.timeout

    pod = dig(current, "spec", "deployment", "spec", "template", "spec")
    containers = copy.deepcopy(pod.get("containers") or [{}])
    main = containers[0]
    pod_patch: dict = {}
    if options.env is not None:
        main["env"] = copy.deepcopy(options.env)
    quantities = resource_quantities(options)
    if quantities:
        resources = main.setdefault("resources", {})
        for kind in ("requests", "limits"):
            resources[kind] = {**(resources.get(kind) or {}), **quantities}
    if options.runtime_image:
        main["image"] = options.runtime_image
    if options.image_pull_policy:
        main["imagePullPolicy"] = options.image_pull_policy
    if options.secrets:
        mounts = main.setdefault("volumeMounts", [])
        volumes = copy.deepcopy(pod.get("volumes") or [])
        for secret in options.secrets:
            if not any(m.get("name") == f"{secret}-vol" for m in mounts):
                mounts.append(secret_mount(secret))
            if not any(v.get("name") == f"{secret}-vol" for v in volumes):
                volumes.append(secret_volume(secret))
        pod_patch["volumes"] = volumes
    if containers != (pod.get("containers") or [{}]):
        pod_patch["containers"] = containers
    if options.node_selectors is not None:
        old = pod.get("nodeSelector") or {}
        pod_patch["nodeSelector"] = {**{key: None for key in old if key not in options.node_selectors},
                                     **options.node_selectors}
    if options.service_account:
        pod_patch["serviceAccountName"] = options.service_account
    if pod_patch:
        spec["deployment"] = {"spec": {"template": {"spec": pod_patch}}}

    service = dig(current, "spec", "service")
    service_patch: dict = {}
    if options.port is not None or options.service_port is not None:
        ports = copy.deepcopy(service.get("ports") or [{"name": meta.FUNCTION_PORT_NAME, "port": meta.FUNCTION_PORT,
                                                        "targetPort": meta.FUNCTION_PORT, "protocol": "TCP"}])
        first = ports[0]
        if options.port is not None:
            if first.get("port") == first.get("targetPort", first.get("port")):
                first["port"] = options.port  # no separate service port: both follow the container's
            first["targetPort"] = options.port
        if options.service_port is not None:
            first["port"] = options.service_port or first.get("targetPort") or meta.FUNCTION_PORT
        service_patch["ports"] = ports
    if options.headless:
        service_patch["clusterIP"] = "None"
    selector = service.get("selector") or {}
    moved = {key: value for key, value in options.labels.items() if key in selector and selector[key] != value}
    if moved:
        service_patch["selector"] = moved  # keep the service selecting the pods, whose labels follow the function's
    if service_patch:
        spec["service"] = service_patch

    patch: dict = {}
    if options.labels:
        patch["metadata"] = {"labels": dict(options.labels)}
    if spec:
        patch["spec"] = spec
    return patch


def apply_merge_patch(target, patch):
    """RFC 7386, to show what an update would store (update --dryrun)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result


# --- reading functions: ls and describe (pure) -----------------------------------------------------------------

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
    containers = dig(function, "spec", "deployment", "spec", "template", "spec").get("containers") or [{}]
    return containers[0] or {}


def ls_headers(wide: bool) -> list[str]:
    headers = ["NAME", "NAMESPACE", "HANDLER", "RUNTIME", "DEPENDENCIES", "STATUS"]
    return headers + ["MEMORY", "ENV", "LABEL"] if wide else headers


def ls_row(function: dict, deployment: dict | None = None, *, wide: bool = False) -> list[str]:
    metadata, spec = function.get("metadata") or {}, function.get("spec") or {}
    row = [metadata.get("name", ""), metadata.get("namespace", ""), spec.get("handler", ""), spec.get("runtime", ""),
           dependencies_text(function), status.summary(function, deployment)]
    if wide:
        container = main_container(function)
        row += [dig(container, "resources", "requests").get("memory", ""),
                "\n".join(f"{e.get('name')} = {e.get('value', '')}" for e in container.get("env") or []),
                "\n".join(f"{k} : {v}" for k, v in (metadata.get("labels") or {}).items())]
    return row


def describe_text(function: dict, deployment: dict | None = None) -> str:
    metadata, spec = function.get("metadata") or {}, function.get("spec") or {}
    container = main_container(function)
    rows = [("Name", metadata.get("name", "")), ("Namespace", metadata.get("namespace", "")),
            ("Handler", spec.get("handler", "")), ("Runtime", spec.get("runtime", "")),
            ("Label", printers.compact_json(metadata.get("labels") or {})),
            ("Envvar", printers.compact_json(container.get("env") or [])),
            ("Memory", dig(container, "resources", "requests").get("memory", "")),
            ("Dependencies", spec.get("deps", "").strip()),
            ("Status", status.summary(function, deployment))]
    conditions = (function.get("status") or {}).get("conditions") or []
    rows.append(("Conditions", "\n".join(status.condition_line(c) for c in conditions) or "<none>"))
    return printers.fields(rows)


# --- calling (pure parts) --------------------------------------------------------------------------------------

def call_content_type(data: str) -> str:
    """Kubeless' rule: a JSON object is sent as application/json, anything else as a form."""
    try:
        return "application/json" if isinstance(json.loads(data), dict) else "application/x-www-form-urlencoded"
    except ValueError:
        return "application/x-www-form-urlencoded"


def event_headers(data: str | None, *, now: datetime | None = None, event_id: str | None = None) -> dict[str, str]:
    now = now or datetime.now(timezone.utc)
    headers = {"event-id": event_id or base64.urlsafe_b64encode(os.urandom(11)).decode().rstrip("="),
               "event-time": now.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
               "event-namespace": contract.EVENT_NAMESPACE_CLI}
    if data:
        headers["Content-Type"] = headers["event-type"] = call_content_type(data)
    return headers


def proxy_path(namespace: str, name: str, service: dict) -> str:
    """The API server's service proxy for the function's first port: by name (http-function-port), else number.
    The trailing slash matters: without it the API server redirects, and a redirected POST loses its body."""
    ports = dig(service, "spec").get("ports") or [{}]
    port = ports[0].get("name") or str(ports[0].get("port", meta.FUNCTION_PORT))
    return core_path(namespace, "services") + f"/{name}:{port}/proxy/"


def is_api_status(body: bytes) -> dict | None:
    """The API server's own refusal (no endpoints, no service) rather than the function's answer."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) and parsed.get("kind") == "Status" and "apiVersion" in parsed else None


# --- the verbs -------------------------------------------------------------------------------------------------

def function_path(namespace: str, name: str | None = None) -> str:
    return custom_path(namespace, meta.FUNCTIONS, name)


def not_found(error: ApiError, name: str, namespace: str) -> UserError:
    if error.status == 404 and not error.resource_missing:
        return UserError(f"function \"{name}\" not found in namespace \"{namespace}\"")
    return crd_missing(error)


def crd_missing(error: ApiError) -> UserError:
    if error.resource_missing:
        return UserError(f"the Function API ({meta.FUNCTIONS}.{meta.GROUP}/{meta.VERSION}) is not installed on this "
                         "cluster; install Kubeless first (kubectl apply -f manifests/kubeless.yaml)")
    return error


def get_function(factory: Factory, namespace: str, name: str) -> dict:
    try:
        return factory.client().get(function_path(namespace, name))
    except ApiError as error:
        raise not_found(error, name, namespace) from None


def get_deployment(factory: Factory, function: dict) -> dict | None:
    """Kubeless' status source, read only for a Function the controller has not written a status on."""
    if status.has_status(function):
        return None
    metadata = function["metadata"]
    try:
        return factory.client().get(f"/apis/apps/v1/namespaces/{metadata['namespace']}/deployments/{metadata['name']}")
    except ApiError as error:
        if error.status == 404:
            return None
        raise


def namespace_deployments(factory: Factory, namespace: str, functions: list[dict]) -> dict | None:
    """For `ls` of many functions without a status: the namespace's Deployments in one request rather than one
    request each (a hundred round trips add up). None when fewer than two functions need it, or when listing is not
    allowed (then each is read on its own, as before)."""
    if sum(not status.has_status(f) for f in functions) < 2:
        return None
    try:
        items = factory.client().get(f"/apis/apps/v1/namespaces/{namespace}/deployments").get("items") or []
    except ApiError:
        return None
    found = {item["metadata"]["name"]: item for item in items}
    return {f["metadata"]["name"]: None if status.has_status(f) else found.get(f["metadata"]["name"])
            for f in functions}


def print_object(factory: Factory, obj: dict, output: str) -> None:
    if output == "name":
        factory.write(printers.resource_name(obj["kind"], obj["metadata"]["name"]) + "\n")
    else:
        factory.write(printers.dump(obj, output, indent=4))


def submitted(factory: Factory, options: FunctionOptions) -> None:
    factory.info(f"Function {options.name} submitted for deployment")
    factory.info(f"Check the deployment status executing 'kubectl kubeless function ls {options.name} "
                 f"-n {options.namespace}'")


def deploy(args: argparse.Namespace, factory: Factory) -> int:
    options = parse_options(args, deploy=True)
    wait_limit = parse_request_timeout(args.wait_timeout) if args.wait else None
    options.namespace = factory.namespace(offline=args.dryrun)
    complete_sources(options)
    function = build_function(options)
    objects = [function] + ([cron_trigger(options)] if options.schedule else [])
    if args.dryrun:
        if options.runtime:
            try:
                check_runtime(factory, options.runtime)
            except UnknownRuntime:
                raise
            except UserError as error:  # no cluster: a dry run goes on without it
                factory.warn(f"the runtime check is disabled: {error}")
        factory.write(printers.dump_all(objects, args.output or "yaml") if args.output != "name" else
                      "".join(printers.resource_name(o["kind"], o["metadata"]["name"]) + "\n" for o in objects))
        return 0
    client = factory.client()
    if options.runtime:
        check_runtime(factory, options.runtime)
    factory.info("Deploying function...")
    try:
        created = client.create(function_path(options.namespace), function)
    except ApiError as error:
        if error.status == 409:
            raise UserError(f"function \"{options.name}\" already exists in namespace \"{options.namespace}\"; change "
                            f"it with `kubectl kubeless function update {options.name} -n {options.namespace}`"
                            ) from None
        raise crd_missing(error) from None
    submitted(factory, options)
    if options.schedule:
        try:
            client.create(custom_path(options.namespace, meta.KINDS["CronJobTrigger"]), objects[1])
        except ApiError as error:
            raise UserError(f"function {options.name} was created, but not its CronJobTrigger: {error}") from None
        factory.info(f"CronJobTrigger {options.name} created: schedule {options.schedule}")
    if args.output:
        print_object(factory, created, args.output)
    if args.wait:
        return wait_ready(factory, created, wait_limit)
    return 0


def update(args: argparse.Namespace, factory: Factory) -> int:
    options = parse_options(args, deploy=False)
    if not given_for_update(options):
        raise UserError("nothing to update: give at least one flag (see `kubectl kubeless function update --help`)")
    wait_limit = parse_request_timeout(args.wait_timeout) if args.wait else None
    options.namespace = factory.namespace()
    complete_sources(options)
    client = factory.client()
    if options.runtime:
        check_runtime(factory, options.runtime)
    for attempt in range(5):
        current = get_function(factory, options.namespace, options.name)
        patch = update_patch(current, options)
        if args.dryrun:
            factory.write(printers.dump(apply_merge_patch(current, patch), args.output or "yaml", indent=4))
            return 0
        if not patch:
            raise UserError("nothing to update")
        patch.setdefault("metadata", {})["resourceVersion"] = current["metadata"]["resourceVersion"]
        if attempt == 0:
            factory.info("Redeploying function...")
        try:
            updated = client.merge_patch(function_path(options.namespace, options.name), patch)
            break
        except ApiError as error:
            if error.status == 409 and attempt < 4:
                continue  # changed since we read it: recompute the patch from the new version
            raise not_found(error, options.name, options.namespace) from None
    submitted(factory, options)
    if args.output:
        print_object(factory, updated, args.output)
    if args.wait:
        return wait_ready(factory, updated, wait_limit)
    return 0


def wait_ready(factory: Factory, function: dict, limit: float | None) -> int:
    """Poll the Function until Ready=True for its current generation; fail fast on a failure reason. Each new
    condition is shown once on stderr, in full; the final error line keeps the message's last line."""
    metadata = function["metadata"]
    name, namespace = metadata["name"], metadata["namespace"]
    limit = limit or float(WAIT_TIMEOUT)
    deadline = time.monotonic() + limit
    shown: set[str] = set()
    while True:
        if status.current(function):
            for item in (function.get("status") or {}).get("conditions") or []:
                line = status.condition_line(item)
                if line not in shown:
                    shown.add(line)
                    factory.info(f"function {name}: " + line.replace("\n", "\n    "))
        state = status.wait_state(function)
        if state == "ready":
            factory.info(f"function {name} is ready ({status.summary(function)})")
            return 0
        ready = status.condition(function, conditions.READY) or {}
        if state == "failed":
            raise UserError(f"function {name} failed: {status.short_reason(ready)} (kubectl kubeless function "
                            f"describe {name} -n {namespace})")
        if time.monotonic() >= deadline:
            why = (status.short_reason(ready) if ready and status.current(function) else
                   "the controller has not reported on it (is it running? kubectl -n kubeless get pods)")
            raise UserError(f"function {name} is not ready after {limit:g} s: {why}")
        time.sleep(POLL_INTERVAL)
        function = get_function(factory, namespace, name)


def delete(args: argparse.Namespace, factory: Factory) -> int:
    name = flags.dns_label(args.name, "function name")
    namespace = factory.namespace()
    client = factory.client()
    try:
        client.delete(function_path(namespace, name))
    except ApiError as error:
        raise not_found(error, name, namespace) from None
    # The CronJobTrigger `deploy --schedule` made goes with its function (only that one: same name, our labels).
    trigger_path = custom_path(namespace, meta.KINDS["CronJobTrigger"], name)
    try:
        trigger = client.get(trigger_path)
        if (trigger.get("metadata", {}).get("labels") or {}).items() >= meta.function_labels(name).items():
            client.delete(trigger_path)
    except ApiError:
        pass
    factory.write(f'{printers.resource_name(KIND, name).split("/")[0]} "{name}" deleted\n')
    return 0


def ls(args: argparse.Namespace, factory: Factory) -> int:
    names = [flags.dns_label(n, "function name") for n in args.names]
    namespace = factory.namespace()
    functions, missing = [], []
    if names:
        for name in names:
            try:
                functions.append(factory.client().get(function_path(namespace, name)))
            except ApiError as error:
                if error.status == 404 and not error.resource_missing:
                    missing.append(name)
                else:
                    raise crd_missing(error) from None
    else:
        try:
            functions = factory.client().get(function_path(namespace)).get("items") or []
        except ApiError as error:
            raise crd_missing(error) from None
        functions.sort(key=lambda f: f["metadata"]["name"])
    for item in functions:
        item.setdefault("apiVersion", meta.API_VERSION)
        item.setdefault("kind", KIND)
    if args.output in ("json", "yaml"):
        factory.write(printers.dump(functions, args.output))
    elif args.output == "name":
        factory.write("".join(printers.resource_name(KIND, f["metadata"]["name"]) + "\n" for f in functions))
    elif functions or not names:
        wide = args.output == "wide"
        deployments = namespace_deployments(factory, namespace, functions)
        rows = [ls_row(f, deployments[f["metadata"]["name"]] if deployments is not None else
                       get_deployment(factory, f), wide=wide) for f in functions]
        factory.write(printers.table(ls_headers(wide), rows))
    if missing:
        raise UserError("; ".join(f"function \"{n}\" not found in namespace \"{namespace}\"" for n in missing))
    return 0


def describe(args: argparse.Namespace, factory: Factory) -> int:
    name = flags.dns_label(args.name, "function name")
    namespace = factory.namespace()
    function = get_function(factory, namespace, name)
    if args.output:
        factory.write(printers.dump(function, args.output))
    else:
        factory.write(describe_text(function, get_deployment(factory, function)))
    return 0


def call(args: argparse.Namespace, factory: Factory) -> int:
    name = flags.dns_label(args.name, "function name")
    namespace = factory.namespace()
    client = factory.client()
    try:
        service = client.get(core_path(namespace, "services", name))
    except ApiError as error:
        if error.status == 404:
            raise UserError(f"function \"{name}\" has no service in namespace \"{namespace}\": is it deployed? "
                            f"(kubectl kubeless function ls {name} -n {namespace})") from None
        raise
    data = args.data or None
    response = client.request("POST" if data else "GET", proxy_path(namespace, name, service),
                              body=data.encode() if data else None, headers=event_headers(data))
    body = response.read()
    if 200 <= response.status < 300:
        factory.write_bytes(body + b"\n")
        return 0
    refusal = is_api_status(body)
    if refusal:
        raise UserError(f"{refusal.get('message') or response.reason} (is function {name} ready? "
                        f"kubectl kubeless function ls {name} -n {namespace})")
    if body:
        factory.err.write(body.decode("utf-8", errors="replace").rstrip("\n") + "\n")
    if response.status == 408:
        raise UserError(f"function {name} timed out (HTTP 408): it ran longer than its timeout; give it more with "
                        f"`kubectl kubeless function update {name} -n {namespace} --timeout SECONDS`")
    raise UserError(f"function {name} answered {response.status} {response.reason}")


def container_started(pod: dict, container: str) -> bool:
    for item in (pod.get("status") or {}).get("containerStatuses") or []:
        if item.get("name") == container:
            state, last = item.get("state") or {}, item.get("lastState") or {}
            return "running" in state or "terminated" in state or "terminated" in last
    return False


def pod_state(pod: dict) -> str:
    """Why a pod has no logs yet, in kubectl's words (Init:1/2, PodInitializing, ImagePullBackOff, ...)."""
    pod_status = pod.get("status") or {}
    inits = pod_status.get("initContainerStatuses") or []
    for index, item in enumerate(inits):
        waiting = (item.get("state") or {}).get("waiting") or {}
        terminated = (item.get("state") or {}).get("terminated") or {}
        if terminated.get("exitCode"):
            return f"Init:{terminated.get('reason') or 'Error'} in {item.get('name')}"
        if waiting or "running" in (item.get("state") or {}):
            return f"Init:{waiting.get('reason') or f'{index}/{len(inits)}'} ({item.get('name')})"
    for item in pod_status.get("containerStatuses") or []:
        waiting = (item.get("state") or {}).get("waiting") or {}
        if waiting.get("reason"):
            return waiting["reason"]
    return pod_status.get("phase") or "Pending"


def logs(args: argparse.Namespace, factory: Factory) -> int:
    name = flags.dns_label(args.name, "function name")
    namespace = factory.namespace()
    client = factory.client()
    pods = client.get(core_path(namespace, "pods"), labelSelector=f"{meta.LABEL_FUNCTION}={name}").get("items") or []
    pods.sort(key=lambda p: p["metadata"]["name"])
    started = [p for p in pods if container_started(p, name)]
    if not started:
        if not pods:
            raise UserError(f"function \"{name}\" has no pod in namespace \"{namespace}\" (kubectl kubeless function "
                            f"describe {name} -n {namespace})")
        states = ", ".join(f"{p['metadata']['name']}: {pod_state(p)}" for p in pods)
        raise UserError(f"no pod of function {name} has started yet ({states})")
    lock = threading.Lock()
    prefix = len(started) > 1
    failures: list[str] = []

    def stream(pod: dict) -> None:
        pod_name = pod["metadata"]["name"]
        label = f"[pod/{pod_name}] " if prefix else ""
        try:
            response = client.request("GET", core_path(namespace, "pods", pod_name, "log"),
                                      query={"container": name, "follow": "true" if args.follow else None},
                                      timeout=0 if args.follow else None)
            if response.status != 200:
                body = response.read()
                refusal = is_api_status(body) or {}
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


# --- the command line ------------------------------------------------------------------------------------------

DEPLOY_EXAMPLES = """examples:
  # a Python function from a file
  kubectl kubeless function deploy hello --runtime python3.11 --handler hello.handler --from-file hello.py

  # with dependencies, environment, a label and limits; wait until it answers
  kubectl kubeless function deploy hello -r python3.11 --handler hello.handler -f hello.py \\
      -d requirements.txt -e GREETING=hi -l team=web --memory 128Mi --cpu 100m --wait

  # code too big for a ConfigMap (1 MiB): serve it from a URL
  kubectl kubeless function deploy big -r python3.11 --handler app.main -f https://example.com/app.zip

  # called every five minutes; or only print the objects
  kubectl kubeless function deploy tick -r python3.11 --handler tick.run -f tick.py --schedule '*/5 * * * *'
  kubectl kubeless function deploy hello -r python3.11 --handler hello.handler -f hello.py --dryrun -o json
"""
UPDATE_EXAMPLES = """examples:
  # new code; nothing else changes
  kubectl kubeless function update hello -f hello.py
  # more time and memory
  kubectl kubeless function update hello --timeout 300 --memory 256Mi --wait
"""


FUNCTION_EXAMPLES = """examples:
  kubectl kubeless function deploy hello --runtime python3.11 --handler hello.handler --from-file hello.py --wait
  kubectl kubeless function ls
  kubectl kubeless function call hello --data 'world'
  kubectl kubeless function logs hello
  kubectl kubeless function delete hello

Run `kubectl kubeless function VERB --help` for the flags and examples of a verb.
"""


def add_function_flags(parser: argparse.ArgumentParser, *, deploy_verb: bool) -> None:
    parser.add_argument("name", metavar="NAME", help="the function's name (a DNS-1123 label)")
    parser.add_argument("-r", "--runtime", help="runtime id, e.g. python3.11 (see get-server-config)")
    parser.add_argument("--handler", help="<module>.<function>, e.g. hello.handler")
    parser.add_argument("-f", "--from-file", metavar="FILE|URL",
                        help="the code: a file (text, binary, .zip or .tar.gz) or an http(s) URL")
    parser.add_argument("-l", "--label", action="append", metavar="K=V",
                        help="labels of the function, k=v or k:v, repeated or comma-separated")
    parser.add_argument("--secrets", action="append", metavar="SECRET",
                        help="secrets mounted at /<secret> in the function's container")
    parser.add_argument("-e", "--env", action="append", metavar="K=V",
                        help="environment of the function, k=v or k:v" + (
                            "" if deploy_verb else "; replaces the whole environment"))
    parser.add_argument("--node-selectors", action="append", metavar="K=V", help="the pods' node selector, k=v")
    parser.add_argument("--service-account", help="the pods' service account")
    parser.add_argument("-d", "--dependencies", metavar="FILE|URL",
                        help="the dependency file (requirements.txt, package.json, ...)")
    if deploy_verb:
        parser.add_argument("--schedule", metavar="CRON",
                            help="also call it on this cron schedule (creates a CronJobTrigger named after it)")
    parser.add_argument("--memory", metavar="QUANTITY", help="memory request and limit, e.g. 128Mi")
    parser.add_argument("--cpu", metavar="QUANTITY", help="cpu request and limit, e.g. 100m")
    parser.add_argument("--runtime-image", metavar="IMAGE", help="a custom image serving the function")
    parser.add_argument("--image-pull-policy", choices=flags.PULL_POLICIES,
                        help="pull policy of the function's image" + (" (default IfNotPresent)" if deploy_verb else ""))
    parser.add_argument("--timeout", help="seconds a call may take" + (" (default 180)" if deploy_verb else ""))
    parser.add_argument("-o", "--output", choices=("json", "yaml", "name"),
                        help="print the object (with --dryrun: instead of sending it; default yaml)")
    parser.add_argument("--headless", action="store_true", help="a headless service (clusterIP: None)")
    parser.add_argument("--dryrun", "--dry-run", dest="dryrun", action="store_true",
                        help="print the object, send nothing")
    parser.add_argument("--port", type=int, help="the container's port" + (" (default 8080)" if deploy_verb else ""))
    parser.add_argument("--servicePort", "--service-port", dest="service_port", type=int,
                        help="the service's port, when not the container's")
    parser.add_argument("--wait", action="store_true",
                        help="wait until the function is ready (exit 1 with the reason if it fails)")
    parser.add_argument("--wait-timeout", default=WAIT_TIMEOUT, metavar="DURATION",
                        help="give up waiting after this long (default 120 s)")


def register(commands, parents: list[argparse.ArgumentParser]) -> None:
    noun = commands.add_parser("function", parents=parents, help="function specific operations",
                               usage="%(prog)s VERB [flags]",
                               description="Deploy, update, list, describe, call and delete functions.",
                               epilog=FUNCTION_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = noun.add_subparsers(dest="verb", metavar="VERB", required=True, prog=noun.prog)

    def verb(name: str, run, usage: str, summary: str, description: str, epilog: str,
             aliases: tuple[str, ...] = ()) -> argparse.ArgumentParser:
        parser = verbs.add_parser(name, aliases=list(aliases), parents=parents, usage=f"%(prog)s {usage}",
                                  help=summary, description=description, epilog=epilog,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
        # `complete`: what shell completion offers for NAME (completion.py); every verb but deploy takes an
        # existing function.
        parser.set_defaults(run=run, complete=None if name == "deploy" else "functions")
        return parser

    add_function_flags(verb("deploy", deploy, "NAME [flags]", "deploy a function",
                            "Create a Function (and, with --schedule, its CronJobTrigger).", DEPLOY_EXAMPLES),
                       deploy_verb=True)
    add_function_flags(verb("update", update, "NAME [flags]", "change a function",
                            "Change only what the flags give; everything else stays as it is.", UPDATE_EXAMPLES),
                       deploy_verb=False)

    parser = verb("delete", delete, "NAME [flags]", "delete a function",
                  "Delete a Function; the controller removes what it made for it.",
                  "examples:\n  kubectl kubeless function delete hello\n"
                  "  kubectl kubeless function delete hello -n team\n")
    parser.add_argument("name", metavar="NAME")

    parser = verb("list", ls, "[NAME...] [flags]", "list functions",
                  "List the functions of a namespace, or the named ones.",
                  "examples:\n  kubectl kubeless function ls\n  kubectl kubeless function ls hello -o wide\n",
                  aliases=("ls",))
    parser.add_argument("names", nargs="*", metavar="NAME")
    parser.add_argument("-o", "--output", "--out", dest="output", choices=("wide", "json", "yaml", "name"))

    parser = verb("describe", describe, "NAME [flags]", "show a function and its status",
                  "Show a function: its settings and the controller's status conditions.",
                  "examples:\n  kubectl kubeless function describe hello\n"
                  "  kubectl kubeless function describe hello -o yaml\n")
    parser.add_argument("name", metavar="NAME")
    parser.add_argument("-o", "--output", "--out", dest="output", choices=("json", "yaml"))

    parser = verb("call", call, "NAME [--data DATA] [flags]", "call a function through the API server",
                  "Call a function through the API server's service proxy: GET without --data, POST with it.",
                  "examples:\n  kubectl kubeless function call hello\n"
                  "  kubectl kubeless function call hello --data '{\"name\": \"world\"}'\n")
    parser.add_argument("name", metavar="NAME")
    parser.add_argument("-d", "--data", help="the request body (a JSON object is sent as application/json)")

    parser = verb("logs", logs, "NAME [-f] [flags]", "print a function's logs",
                  "Print the logs of the function's pods (each line prefixed by its pod when there are several).",
                  "examples:\n  kubectl kubeless function logs hello\n"
                  "  # keep streaming, from every pod of the function\n"
                  "  kubectl kubeless function logs hello -f\n")
    parser.add_argument("name", metavar="NAME")
    parser.add_argument("-f", "--follow", action="store_true", help="keep streaming new lines")
