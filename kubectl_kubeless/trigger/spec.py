"""The trigger objects `create` writes and the merge patch `update` sends: pure functions of the flags, which unit
tests read without a cluster.

A kind of trigger (http.py, cronjob.py) declares one SpecFlag per flag, each setting one spec field, and the rules
its spec obeys (`TriggerKind.rules`). The rest is the same for every kind:
- parse: each flag given becomes its field, its value checked (`given_fields`); an empty value (`--hostname ''`,
  `--no-cors-enable`) removes the field, which only `update` has a use for;
- create: the kind's defaults, then the given fields, settled: checked as a whole and completed, since a rule may
  join two flags (TLS-acme and a TLS secret) or a flag and the gateway, and a default may follow from another field
  (nginx's host from the function's name);
- update: the given fields in place of the stored ones, settled the same way; the patch is the difference, so it
  changes only what the flags give and what follows from them (Kubeless's update reset the TLS flag, and the
  schedule and function of a cronjob trigger, unless they were given again).
"""
from __future__ import annotations

import argparse
import copy
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Callable

from kubeless_api import meta, schema
from kubectl_kubeless import flags, objects, readiness
from kubectl_kubeless.errors import UserError

NAME_MAX = 253  # an object's name: a DNS-1123 subdomain
NONE = "<none>"  # kubectl's word for a column without a value
CREATED_BY = {meta.LABEL_CREATED_BY: meta.CREATED_BY}  # the labels Kubeless's trigger commands gave


def subdomain(value: str, what: str, limit: int = NAME_MAX, why: str = "") -> str:
    """The name of an object (a trigger, a Secret, a Gateway): a DNS-1123 subdomain, as the API server checks it."""
    if len(value) > limit or not flags.DNS1123_SUBDOMAIN.fullmatch(value):
        raise UserError(f"invalid {what} {value!r}: must be a DNS-1123 subdomain (at most {limit} lowercase letters, "
                        "digits, '-' and '.', starting and ending with a letter or digit)"
                        + (f"; {why}" if why else ""))
    return value


def with_fields(spec: dict, given: dict) -> dict:
    """A copy of the spec with the given fields in place of its own (each whole: a new payload replaces the old one,
    it is not merged into it), and without those given as None."""
    result = copy.deepcopy(spec)
    for field, value in given.items():
        if value is None:
            result.pop(field, None)
        else:
            result[field] = copy.deepcopy(value)
    return result


def empty(value) -> bool:
    """A flag value that removes its field: '' (`--hostname ''`, `--path /`) or False (`--no-cors-enable`)."""
    return value == "" or value is False


@dataclass(frozen=True)
class SpecFlag:
    """A flag that sets one spec field: its option strings, the field, what it means, and `check`, which turns a
    given value into the stored one or raises UserError."""
    options: tuple[str, ...]
    field: str
    help: str
    check: Callable[[str], object] = str
    metavar: str | None = None
    boolean: bool = False  # --flag and --no-flag
    required: bool = False  # every trigger of the kind has the field, so create needs the flag
    default: object = None  # the field's value on create when the flag is not given

    @property
    def option(self) -> str:
        """The long option, which names the flag in messages and gives its dest."""
        return next(option for option in self.options if option.startswith("--"))

    @property
    def dest(self) -> str:
        """argparse's own name for the flag's value; two flags of one field (--payload, --payload-from-file) keep
        theirs apart."""
        return self.option.lstrip("-").replace("-", "_")


def function_flag(option: str, help_text: str) -> SpecFlag:
    """The flag naming the function a trigger calls, which every kind has (Kubeless named it --function-name for
    HTTP triggers and --function for cronjob triggers)."""
    return SpecFlag((option,), schema.FUNCTION_NAME, help_text, partial(flags.dns_label, what=option),
                    metavar="FUNCTION", required=True)


class TriggerKind:
    """What tells one kind of trigger from another; the verbs (verbs.py) are the same for every kind."""
    kind: str  # the Kubernetes kind
    noun: str  # its word after `trigger`
    title: str  # how Kubeless's messages name it: "HTTP trigger x created in namespace y successfully!"
    a_title: str  # the same with its article, for the help: "an HTTP trigger"
    about: str  # what the trigger does, atop `create --help`
    spec_flags: tuple[SpecFlag, ...]
    headers: tuple[str, ...]  # the columns of `ls`
    examples: dict[str, str]  # noun, create, update -> real command lines, for their --help
    sample_name: str  # the trigger the other verbs' examples name
    name_limit: int = NAME_MAX  # the longest name of a new trigger: shorter when what the controller names after it is
    name_why: str = ""  # why, when it is
    create_note = "The function must exist."  # what `create` checks on the cluster, for its help
    extra_verbs: tuple[str, ...] = ()  # verbs of this kind alone (nats publish), which `register_extra` adds

    # --- what each kind says ---

    def register_extra(self, verbs: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
        """Add the kind's own verbs (`extra_verbs`) after the four every kind has."""

    def rules(self, spec: dict, given: dict, api_server: Callable[[], str] | None) -> None:
        """Check the settled spec as a whole and complete it in place (raise UserError for what the controller
        would refuse). `given` are the fields of the flags, to word a message; `api_server` returns the API server's
        URL, for a default that needs it."""

    def row(self, trigger: dict, now: datetime) -> list[str]:
        raise NotImplementedError

    # --- the same for every kind ---

    def flag(self, field: str) -> str:
        """The option that sets a field, for a message."""
        return next(flag.option for flag in self.spec_flags if flag.field == field)

    def new_name(self, value: str, what: str | None = None) -> str:
        return subdomain(value, what or f"{self.title.lower()} name", self.name_limit, self.name_why)

    def given_fields(self, args: argparse.Namespace) -> dict:
        """The spec fields the flags on the command line give, checked; None for a field an empty value removes."""
        given: dict = {}
        setters: dict[str, str] = {}
        for flag in self.spec_flags:
            value = getattr(args, flag.dest, None)
            if value is None:
                continue
            if flag.field in setters:
                raise UserError(f"give {setters[flag.field]} or {flag.option}, not both: each sets the {flag.field}")
            setters[flag.field] = flag.option
            stored = None if empty(value) else flag.check(value)
            given[flag.field] = None if empty(stored) else stored
        return given

    def settle(self, spec: dict, given: dict, api_server: Callable[[], str] | None) -> dict:
        """The spec checked and completed: every required field there, then the kind's rules."""
        for flag in self.spec_flags:
            if flag.required and not spec.get(flag.field):
                raise UserError(f"{flag.option} is required: {flag.help}")
        self.rules(spec, given, api_server)
        return spec

    def new_spec(self, given: dict, api_server: Callable[[], str] | None = None) -> dict:
        defaults = {flag.field: flag.default for flag in self.spec_flags if flag.default is not None}
        fields = with_fields(defaults, given)
        in_help_order = {flag.field: fields[flag.field] for flag in self.spec_flags if flag.field in fields}
        return self.settle(in_help_order, given, api_server)

    def build(self, name: str, namespace: str, spec: dict, labels: dict[str, str]) -> dict:
        return {"apiVersion": meta.API_VERSION, "kind": self.kind,
                "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)}, "spec": spec}

    def update_patch(self, current: dict, given: dict, api_server: Callable[[], str] | None = None) -> dict:
        """The merge patch that gives the stored trigger what the flags say, and nothing else; {} when it has it."""
        stored = current.get("spec") or {}
        wanted = self.settle(with_fields(stored, given), given, api_server)
        try:
            spec = objects.merge_patch_from(stored, wanted)
        except ValueError as member:
            raise UserError(f"cannot set {member} to null: an update is a JSON merge patch, where null means "
                            "remove; leave the member out, or delete the trigger and create it again") from None
        return {"spec": spec} if spec else {}


# --- what `ls` shows of every kind ------------------------------------------------------------------------------

def ready_column(trigger: dict) -> str:
    """READY: the Ready condition's status, with its reason unless True (`False (FunctionNotFound)`); <none> while
    no controller has reported on the trigger."""
    ready = readiness.ready_condition(trigger)
    if not ready:
        return NONE
    status = ready.get("status") or "Unknown"
    return f"{status} ({ready['reason']})" if status != "True" and ready.get("reason") else status


def identity(trigger: dict) -> list[str]:
    """NAME and NAMESPACE, the first columns of every `ls`."""
    metadata = trigger.get("metadata") or {}
    return [metadata.get("name", ""), metadata.get("namespace", "")]


def function_column(trigger: dict) -> str:
    return meta.dig(trigger, "spec", schema.FUNCTION_NAME, default="")


def label_query(selector: dict) -> str:
    """A selector's matchLabels as a label query, `k1=v1,k2=v2` (the API's labelSelector and the SELECTOR column)."""
    return ",".join(f"{key}={value}" for key, value in sorted((selector.get("matchLabels") or {}).items()))

