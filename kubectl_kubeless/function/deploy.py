"""`kubectl kubeless function deploy|update`: create a Function (and its CronJobTrigger), or change one.

Each verb follows kubectl's steps: the flags become options, checked and completed (namespace, the code read from
disk) before any request (spec.py), then one request. `update` sends a JSON merge patch of only what its flags
give, guarded by the resourceVersion it was computed from; `--wait` waits until the controller reports the function
Ready, or why it failed.
"""
from __future__ import annotations

import argparse

from kubeless_api import meta
from kubectl_kubeless import completion, flags, objects, printers, readiness
from kubectl_kubeless.command import Factory, add_command, add_wait_flags, wait_limit
from kubectl_kubeless.errors import UserError
from kubectl_kubeless.function.spec import (KIND, FunctionOptions, build_function, complete_sources, cron_trigger,
                                            given_for_update, parse_options, update_patch)
from kubectl_kubeless.kube import ApiError
from kubectl_kubeless.serverconfig import UnknownRuntime, check_runtime
from kubectl_kubeless.trigger.cronjob import CRON_JOB


def submitted(factory: Factory, options: FunctionOptions) -> None:
    factory.info(f"Function {options.name} submitted for deployment")
    factory.info(f"Check the deployment status executing 'kubectl kubeless function ls {options.name} "
                 f"-n {options.namespace}'")


def deploy(args: argparse.Namespace, factory: Factory) -> int:
    options = parse_options(args, deploy=True)
    limit = wait_limit(args)
    options.namespace = factory.namespace(offline=args.dryrun)
    complete_sources(options)
    function = build_function(options)
    created_objects = [function] + ([cron_trigger(options)] if options.schedule else [])
    if args.dryrun:
        if options.runtime:
            try:
                check_runtime(factory, options.runtime)
            except UnknownRuntime:
                raise
            except UserError as error:  # no cluster: a dry run goes on without it
                factory.warn(f"the runtime check is disabled: {error}")
        factory.write(printers.objects_output(created_objects, args.output or "yaml"))
        return 0
    client = factory.client()
    if options.runtime:
        check_runtime(factory, options.runtime)
    factory.info("Deploying function...")
    try:
        created = client.create(objects.kubeless_path(KIND, options.namespace), function)
    except ApiError as error:
        if error.status == 409:
            raise UserError(f"function \"{options.name}\" already exists in namespace \"{options.namespace}\"; change "
                            f"it with `kubectl kubeless function update {options.name} -n {options.namespace}`"
                            ) from None
        raise objects.crd_missing(error, KIND) from None
    submitted(factory, options)
    if options.schedule:
        try:
            client.create(objects.kubeless_path(CRON_JOB.kind, options.namespace), created_objects[1])
        except ApiError as error:
            raise UserError(f"function {options.name} was created, but not its CronJobTrigger: {error}") from None
        factory.info(f"CronJobTrigger {options.name} created: schedule {options.schedule}")
    if args.output:
        factory.write(printers.objects_output([created], args.output))
    if args.wait:
        return objects.wait_ready(factory, created, limit, readiness.summary)
    return 0


def update(args: argparse.Namespace, factory: Factory) -> int:
    options = parse_options(args, deploy=False)
    if not given_for_update(options):
        raise UserError("nothing to update: give at least one flag (see `kubectl kubeless function update --help`)")
    limit = wait_limit(args)
    options.namespace = factory.namespace()
    complete_sources(options)
    if options.runtime:
        check_runtime(factory, options.runtime)
    current = objects.get(factory, KIND, options.namespace, options.name)
    if options.handler or options.runtime:
        flags.go_handler(options.handler or meta.dig(current, "spec", "handler"),
                         options.runtime or meta.dig(current, "spec", "runtime"))
    patch = update_patch(current, options)
    if args.dryrun:
        factory.write(printers.objects_output([objects.apply_merge_patch(current, patch)], args.output or "yaml"))
        return 0
    if not patch:
        raise UserError("nothing to update")
    factory.info("Redeploying function...")
    updated = objects.merge_patch(factory, current, patch, lambda obj: update_patch(obj, options))
    submitted(factory, options)
    if args.output:
        factory.write(printers.objects_output([updated], args.output))
    if args.wait:
        return objects.wait_ready(factory, updated, limit, readiness.summary)
    return 0


# --- the command line ------------------------------------------------------------------------------------------

DEPLOY_EXAMPLES = """\
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
UPDATE_EXAMPLES = """\
  # new code; nothing else changes
  kubectl kubeless function update hello -f hello.py
  # more time and memory
  kubectl kubeless function update hello --timeout 300 --memory 256Mi --wait
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
                            help="also call it on this cron schedule, e.g. '*/5 * * * *' (a CronJobTrigger named "
                                 "after it; see `kubectl kubeless trigger cronjob create --help`)")
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
    add_wait_flags(parser, "the function is ready (exit 1 with the reason if it fails)")


def register(verbs: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    add_function_flags(add_command(verbs, "deploy", parents=parents, usage="NAME [flags]", summary="deploy a function",
                                   description="Create a Function (and, with --schedule, its CronJobTrigger).",
                                   examples=DEPLOY_EXAMPLES, run=deploy), deploy_verb=True)
    add_function_flags(add_command(verbs, "update", parents=parents, usage="NAME [flags]", summary="change a function",
                                   description="Change only what the flags give; everything else stays as it is.",
                                   examples=UPDATE_EXAMPLES, run=update, complete=completion.FUNCTIONS),
                       deploy_verb=False)
