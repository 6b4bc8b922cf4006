"""The Function object `deploy` creates and the merge patch `update` sends: pure functions of the options, which unit
tests read without a cluster.

The options are parsed and checked from the flags (`parse_options`) and completed from the files they name
(`complete_sources`) before any request, so bad input creates nothing. Differences from Kubeless, on purpose:
- `--image-pull-policy` defaults to IfNotPresent (Kubeless: Always); the project's images are local, never pulled.
- `update` changes only what its flags give (Kubeless reset --timeout, --port and the pull policy to defaults).
- `--memory`/`--cpu` set only the quantities given, as both requests and limits (Kubeless wrote a zero for the
  other one).
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
from dataclasses import dataclass, field

from kubeless_api import meta
from kubectl_kubeless import flags, source
from kubectl_kubeless.errors import UserError
from kubectl_kubeless.source import Code
from kubectl_kubeless.trigger import cronjob

KIND = "Function"
DEPLOY_DEFAULTS = {"image_pull_policy": "IfNotPresent", "timeout": meta.DEFAULT_TIMEOUT, "port": meta.FUNCTION_PORT,
                   "service_port": 0}


def not_a_flag(**kwargs):
    """A field of FunctionOptions that no flag sets: the name and namespace, and what the files give."""
    return field(metadata={"flag": False}, **kwargs)


@dataclass
class FunctionOptions:
    """What deploy and update are asked to do. For update, a flag field at its default means "not given: leave it
    as it is"."""
    name: str = not_a_flag()
    namespace: str = not_a_flag(default="default")
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
    code: Code | None = not_a_flag(default=None)
    deps: str | None = not_a_flag(default=None)


def parse_options(args: argparse.Namespace, *, deploy: bool) -> FunctionOptions:
    """Flags to options, each value checked; raises UserError before anything is read or sent."""
    values = {key: getattr(args, key, None) for key in DEPLOY_DEFAULTS}
    if deploy:
        values = {key: DEPLOY_DEFAULTS[key] if value is None else value for key, value in values.items()}
    # a new function's name must suit its children; update and the other verbs take any existing one
    name = flags.function_name(args.name) if deploy else flags.dns_label(args.name, "function name")
    options = FunctionOptions(
        name=name,
        runtime=args.runtime or None,
        handler=flags.handler(args.handler) if args.handler else None,
        from_file=source.location(args.from_file, "--from-file") if args.from_file else None,
        dependencies=source.location(args.dependencies, "--dependencies") if args.dependencies else None,
        labels=flags.own_labels(flags.label_map(args.label), name),
        secrets=flags.secrets(args.secrets, name),
        env=flags.env_list(args.env) if args.env else None,
        node_selectors=flags.label_map(args.node_selectors, "--node-selectors") if args.node_selectors else None,
        service_account=flags.service_account(args.service_account) if args.service_account else None,
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
    flags.go_handler(options.handler, options.runtime)
    if options.schedule:
        cronjob.CRON_JOB.new_name(name, "function name with --schedule")  # the name of its CronJobTrigger too
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


def given_for_update(options: FunctionOptions) -> bool:
    """Whether any flag was given: a flag field away from its default."""
    for item in dataclasses.fields(options):
        default = item.default_factory() if item.default_factory is not dataclasses.MISSING else item.default
        if item.metadata.get("flag", True) and getattr(options, item.name) != default:
            return True
    return False


# --- the Function object ---------------------------------------------------------------------------------------

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
    """The CronJobTrigger `deploy --schedule` creates next to the function, named after it and labelled as its own
    (`function delete` knows it by that)."""
    return cronjob.cron_trigger(options.name, options.namespace, function=options.name, schedule=options.schedule,
                                labels=meta.function_labels(options.name))


# --- the update patch ------------------------------------------------------------------------------------------

def update_patch(current: dict, options: FunctionOptions) -> dict:
    """A JSON merge patch changing only what the options give. Lists (containers, volumes, ports) are replaced
    whole by a merge patch, so they are rebuilt from the current object with only the asked change."""
    spec = code_spec(options)
    if options.timeout:
        spec["timeout"] = options.timeout

    pod = meta.dig(current, "spec", "deployment", "spec", "template", "spec", default={})
    containers = copy.deepcopy(pod.get("containers") or [{}])
    main = containers[0]
    pod_patch: dict = {}
    if options.env is not None:
        main["env"] = copy.deepcopy(options.env)
    quantities = resource_quantities(options)
    if quantities:
        resources = main.setdefault("resources", {})
        for bound in ("requests", "limits"):
            resources[bound] = {**(resources.get(bound) or {}), **quantities}
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

    service = meta.dig(current, "spec", "service", default={})
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
