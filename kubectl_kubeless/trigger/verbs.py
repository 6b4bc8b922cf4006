"""`kubectl kubeless trigger KIND create|update|delete|list`: the verbs, the same for every kind of trigger.

Each verb follows kubectl's steps: the flags become spec fields, checked (spec.py), and the whole spec is checked
and completed before any write; what the trigger names must exist (its function, a function its selector matches,
its AWS secret). Then one request. The messages are Kubeless's (`HTTP trigger hello created in namespace default
successfully!`), on stderr as Kubeless logged them; `--dryrun` prints the object instead of sending it, as YAML or JSON (indent 4), and so does `-o` after a write.
"""
from __future__ import annotations

import argparse
from datetime import datetime, timezone
from typing import Callable

from kubeless_api import schema
from kubectl_kubeless import objects, printers
from kubectl_kubeless.command import Factory, add_command, add_noun
from kubectl_kubeless.errors import UserError
from kubectl_kubeless.kube import ApiError
from kubectl_kubeless.trigger.kinesis import aws_keys, secret_missing, secret_path
from kubectl_kubeless.trigger.spec import CREATED_BY, TriggerKind, label_query, subdomain

FUNCTION = "Function"
OUTPUTS = ("json", "yaml")


# --- what the verbs share ---------------------------------------------------------------------------------------

def output_format(args: argparse.Namespace) -> str | None:
    if args.output is not None and args.output not in OUTPUTS:
        raise UserError("Output format needs to be yaml or json")  # Kubeless's words
    return args.output


SKIPPED = object()  # what a dry run's check could not ask the cluster


def look_up(factory: Factory, what: str, read: Callable[[], object], *, dry_run: bool, api_kind: str | None = None):
    """What `read` finds on the cluster for the check that `what`; a dry run goes on without a cluster (or without
    the API of `api_kind`), with a warning, and gets SKIPPED."""
    try:
        return read()
    except UserError as error:  # an ApiError, or no cluster at all
        problem = objects.crd_missing(error, api_kind) if api_kind and isinstance(error, ApiError) else error
        if not dry_run:
            raise problem from None
        factory.warn(f"the check that {what} is disabled: {problem}")
        return SKIPPED


def check_function(factory: Factory, kind: TriggerKind, namespace: str, function: str, *, dry_run: bool) -> None:
    """The function the trigger names exists (Kubeless checked too)."""
    found = look_up(factory, f"function {function} exists",
                    lambda: objects.get_or_none(factory, objects.kubeless_path(FUNCTION, namespace, function)),
                    dry_run=dry_run, api_kind=FUNCTION)
    if found is None:
        raise UserError(f"function \"{function}\" not found in namespace \"{namespace}\": deploy it first (kubectl "
                        f"kubeless function deploy {function} -n {namespace} ...), or give an existing one with "
                        f"{kind.flag(schema.FUNCTION_NAME)} (kubectl kubeless function ls -n {namespace})")


def check_selector(factory: Factory, kind: TriggerKind, namespace: str, selector: dict, *, dry_run: bool) -> None:
    """Some function has the labels the trigger selects by. Kubeless did not check: a typo in the selector made a
    trigger that delivered to nobody, silently."""
    query = label_query(selector)
    found = look_up(factory, f"a function matches {kind.flag(schema.FUNCTION_SELECTOR)} {query}",
                    lambda: factory.client().get(objects.kubeless_path(FUNCTION, namespace), labelSelector=query,
                                                 limit="1").get("items"), dry_run=dry_run, api_kind=FUNCTION)
    if found == []:
        raise UserError(f"no function in namespace {namespace} matches {kind.flag(schema.FUNCTION_SELECTOR)} "
                        f"{query}; label one with `kubectl label functions.kubeless.io NAME "
                        f"{query.replace(',', ' ')} -n {namespace}`, or deploy one with --label {query}")


def check_secret(factory: Factory, kind: TriggerKind, namespace: str, name: str, *, dry_run: bool) -> None:
    """The Secret with the AWS keys exists and holds them (the consumer could not read the stream otherwise)."""
    found = look_up(factory, f"secret {name} holds the AWS keys",
                    lambda: objects.get_or_none(factory, secret_path(namespace, name)), dry_run=dry_run)
    if found is None:
        raise secret_missing(name, namespace)
    if found is not SKIPPED:
        aws_keys(found, namespace)


# The spec fields that name something on the cluster, and the check that it is there: a field the flags give is
# checked before any write.
REFERENCES = {schema.FUNCTION_NAME: check_function, schema.FUNCTION_SELECTOR: check_selector,
              schema.AWS_SECRET: check_secret}


def check_references(factory: Factory, kind: TriggerKind, namespace: str, fields: dict, *, dry_run: bool) -> None:
    for field, check in REFERENCES.items():
        if fields.get(field):
            check(factory, kind, namespace, fields[field], dry_run=dry_run)


def api_server(factory: Factory) -> Callable[[], str]:
    """The API server's URL from the kubeconfig, read only if a default needs it (nginx's host)."""
    return lambda: factory.target().server


def existing_name(kind: TriggerKind, value: str) -> str:
    """The name of a trigger that may exist: any the API server takes (a new one may have to be shorter)."""
    return subdomain(value, f"{kind.title.lower()} name")


def show(factory: Factory, trigger: dict, output: str | None) -> None:
    if output:
        factory.write(printers.dump(trigger, output))


# --- the verbs --------------------------------------------------------------------------------------------------

def create(kind: TriggerKind, args: argparse.Namespace, factory: Factory) -> int:
    name = kind.new_name(args.name)
    given = kind.given_fields(args)
    output = output_format(args)
    namespace = factory.namespace(offline=args.dryrun)
    spec = kind.new_spec(given, api_server(factory))
    check_references(factory, kind, namespace, spec, dry_run=args.dryrun)
    trigger = kind.build(name, namespace, spec, CREATED_BY)
    if args.dryrun:
        show(factory, trigger, output or "yaml")
        return 0
    try:
        created = factory.client().create(objects.kubeless_path(kind.kind, namespace), trigger)
    except ApiError as error:
        if error.status == 409:
            raise UserError(f"{kind.kind.lower()} \"{name}\" already exists in namespace \"{namespace}\"; change it "
                            f"with `kubectl kubeless trigger {kind.noun} update {name} -n {namespace}`") from None
        raise objects.crd_missing(error, kind.kind) from None
    factory.info(f"{kind.title} {name} created in namespace {namespace} successfully!")
    show(factory, created, output)
    return 0


def update(kind: TriggerKind, args: argparse.Namespace, factory: Factory) -> int:
    name = existing_name(kind, args.name)
    given = kind.given_fields(args)
    if not given:
        raise UserError(f"nothing to update: give at least one flag (see `kubectl kubeless trigger {kind.noun} "
                        "update --help`)")
    output = output_format(args)
    namespace = factory.namespace()
    current = objects.get(factory, kind.kind, namespace, name)
    check_references(factory, kind, namespace, given, dry_run=False)
    server = api_server(factory)
    patch = kind.update_patch(current, given, server)
    if args.dryrun:
        show(factory, objects.apply_merge_patch(current, patch), output or "yaml")
        return 0
    if not patch:
        raise UserError(f"nothing to update: {kind.title} {name} already has what the flags give")
    updated = objects.merge_patch(factory, current, patch, lambda found: kind.update_patch(found, given, server))
    factory.info(f"{kind.title} {name} updated in namespace {namespace} successfully!")
    show(factory, updated, output)
    return 0


def delete(kind: TriggerKind, args: argparse.Namespace, factory: Factory) -> int:
    name = existing_name(kind, args.name)
    namespace = factory.namespace()
    try:
        factory.client().delete(objects.kubeless_path(kind.kind, namespace, name))
    except ApiError as error:
        raise objects.not_found(error, kind.kind, name, namespace) from None
    factory.info(f"{kind.title} {name} deleted from namespace {namespace} successfully!")
    return 0


def ls(kind: TriggerKind, args: argparse.Namespace, factory: Factory) -> int:
    names = [existing_name(kind, name) for name in args.names]
    namespace = factory.namespace()
    found, missing = objects.named_or_all(factory, kind.kind, namespace, names)
    if args.output in OUTPUTS:
        factory.write(printers.dump(found, args.output))
    elif args.output == "name":
        factory.write(printers.names(found))
    elif found or not names:
        now = datetime.now(timezone.utc)
        factory.write(printers.table(list(kind.headers), [kind.row(trigger, now) for trigger in found]))
    if missing:
        raise objects.missing_error(kind.kind, missing, namespace)
    return 0


# --- the command line -------------------------------------------------------------------------------------------

def add_spec_flags(kind: TriggerKind, parser: argparse.ArgumentParser, *, create_verb: bool) -> None:
    parser.add_argument("name", metavar="NAME")
    for flag in kind.spec_flags:
        notes = []
        if create_verb and flag.required:
            notes.append("required")
        if create_verb and flag.default is not None:
            notes.append(f"default {flag.default}")
        text = flag.help + (f" ({', '.join(notes)})" if notes else "")
        if flag.boolean:
            parser.add_argument(*flag.options, dest=flag.dest, action=argparse.BooleanOptionalAction, default=None,
                                help=text)
        else:
            parser.add_argument(*flag.options, dest=flag.dest, metavar=flag.metavar or flag.dest.upper(), help=text)
    parser.add_argument("--dryrun", "--dry-run", dest="dryrun", action="store_true",
                        help="print the object, send nothing")
    parser.add_argument("-o", "--output", metavar="|".join(OUTPUTS),
                        help="print the object (with --dryrun: instead of sending it; default yaml)")


def update_description(kind: TriggerKind) -> str:
    switches = any(flag.boolean for flag in kind.spec_flags)
    return ("Change only what the flags give; everything else stays as it is. A flag given an empty value ('') "
            "removes what it sets" + ("; --no-FLAG turns a switch off." if switches else "."))


def register(kind: TriggerKind, kinds: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    """`trigger <noun>` and its four verbs, run with the kind."""
    def run(verb):
        return lambda args, factory: verb(kind, args, factory)

    prefix, sample = f"kubectl kubeless trigger {kind.noun}", kind.sample_name
    overview = (f"{kind.examples['noun']}  {prefix} ls\n  {prefix} delete {sample}\n\n"
                f"Run `{prefix} VERB --help` for the flags and examples of a verb.\n")
    every = ", ".join(("create", "update", "delete", "list", *kind.extra_verbs))
    verbs = add_noun(kinds, kind.noun, parents=parents, summary=f"{kind.kind}s: {every}",
                     description=kind.about, examples=overview)
    parser = add_command(verbs, "create", parents=parents, usage="NAME [flags]", summary=f"create {kind.a_title}",
                         description=f"{kind.about}\n{kind.create_note}", examples=kind.examples["create"],
                         run=run(create))
    add_spec_flags(kind, parser, create_verb=True)
    parser = add_command(verbs, "update", parents=parents, usage="NAME [flags]", summary=f"change {kind.a_title}",
                         description=update_description(kind), examples=kind.examples["update"], run=run(update),
                         complete=kind.kind)
    add_spec_flags(kind, parser, create_verb=False)
    parser = add_command(verbs, "delete", parents=parents, usage="NAME [flags]", summary=f"delete {kind.a_title}",
                         description=f"Delete {kind.a_title}; the controller removes what it made for it.",
                         examples=f"  {prefix} delete {sample}\n  {prefix} delete {sample} -n team\n",
                         run=run(delete), complete=kind.kind)
    parser.add_argument("name", metavar="NAME")
    parser = add_command(verbs, "list", parents=parents, usage="[NAME...] [flags]", summary=f"list {kind.kind}s",
                         description=f"List the {kind.kind}s of a namespace, or the named ones, with what the "
                                     "controller reports on them.",
                         examples=f"  {prefix} ls\n  {prefix} ls -n team -o yaml\n", run=run(ls), aliases=("ls",),
                         complete=kind.kind)
    parser.add_argument("names", nargs="*", metavar="NAME")
    parser.add_argument("-o", "--output", "--out", dest="output", choices=("json", "yaml", "name"))
    kind.register_extra(verbs, parents)
