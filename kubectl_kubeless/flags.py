"""Parsing and checking flag values, before any request: pure functions that return the value or raise UserError.

Each message names the flag and shows the expected form, so a user fixes the command line without reading docs.
The rules are the API server's own (names, labels, quantities) or the CRD's (handler), so what passes here is not
refused later; list flags split at commas like Kubeless' (pflag's string slices, CSV-quoted when a value has a comma).
"""
from __future__ import annotations

import re

from kubeless_api import schema
from kubectl_kubeless.errors import UserError

DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
LABEL_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
HANDLER = re.compile(schema.FUNCTION_SPEC["properties"]["handler"]["pattern"])  # the CRD's own rule
QUANTITY = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)((Ki|Mi|Gi|Ti|Pi|Ei)|[numkMGTPE]|[eE][+-]?\d+)?")
PULL_POLICIES = ("IfNotPresent", "Always", "Never")


def dns_label(value: str, what: str) -> str:
    if len(value) > 63 or not DNS1123_LABEL.fullmatch(value):
        raise UserError(f"invalid {what} {value!r}: must be a DNS-1123 label (at most 63 lowercase letters, digits "
                        "and '-', starting and ending with a letter or digit)")
    return value


def split_list(values: list[str] | None) -> list[str]:
    """Repeated flags and comma-separated values alike: `-e a=1,b=2 -e c=3` gives three items."""
    import csv  # noqa: PLC0415 - start-up: ~1 ms that `version` and `--help` do not need

    items: list[str] = []
    for value in values or []:
        items.extend(item for row in csv.reader([value]) for item in row if item != "")
    return items


def key_value(item: str, flag: str) -> tuple[str, str]:
    """KEY=VALUE or KEY:VALUE, split at the first of either (Kubeless' rule)."""
    match = re.search(r"[=:]", item)
    if not match or match.start() == 0:
        raise UserError(f"invalid {flag} {item!r}: expected KEY=VALUE (or KEY:VALUE)")
    return item[:match.start()], item[match.end():]


def key_values(values: list[str] | None, flag: str) -> dict[str, str]:
    return dict(key_value(item, flag) for item in split_list(values))


def env_list(values: list[str] | None) -> list[dict]:
    """--env, in the order given, as container env entries."""
    return [{"name": k, "value": v} for k, v in (key_value(item, "--env") for item in split_list(values))]


def label_map(values: list[str] | None, flag: str = "--label") -> dict[str, str]:
    labels = key_values(values, flag)
    for key, value in labels.items():
        prefix, _, name = key.rpartition("/")
        if (prefix and (len(prefix) > 253 or not DNS1123_SUBDOMAIN.fullmatch(prefix))) or len(name) > 63 \
                or not LABEL_NAME.fullmatch(name):
            raise UserError(f"invalid {flag} key {key!r}: a label key is an optional DNS prefix and '/', then at "
                            "most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit")
        if value and (len(value) > 63 or not LABEL_NAME.fullmatch(value)):
            raise UserError(f"invalid {flag} value {value!r} for {key!r}: at most 63 letters, digits, '-', '_' "
                            "or '.', starting and ending with a letter or digit")
    return labels


def handler(value: str) -> str:
    if not HANDLER.fullmatch(value):
        raise UserError(f"invalid --handler {value!r}: expected <module>.<function>, e.g. hello.handler")
    return value


def quantity(value: str, flag: str) -> str:
    if not QUANTITY.fullmatch(value):
        raise UserError(f"invalid {flag} {value!r}: expected a Kubernetes quantity, e.g. 128Mi, 1Gi, 250m, 0.5")
    return value


def port(value: int, flag: str, minimum: int) -> int:
    if not minimum <= value <= 65535:
        raise UserError(f"invalid {flag} {value}: must be between {minimum} and 65535")
    return value


def timeout(value: str) -> str:
    if not re.fullmatch(r"\d+", value) or int(value) < 1:
        raise UserError(f"invalid --timeout {value!r}: expected a whole number of seconds, at least 1")
    return str(int(value))


def pull_policy(value: str) -> str:
    if value not in PULL_POLICIES:
        raise UserError(f"invalid --image-pull-policy {value!r}: must be one of {', '.join(PULL_POLICIES)}")
    return value


# --- cron schedules (robfig/cron's ParseStandard, which Kubeless used) ---------------------------------------------

CRON_DESCRIPTORS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
CRON_FIELDS = [("minute", 0, 59, {}), ("hour", 0, 23, {}), ("day of month", 1, 31, {}),
               ("month", 1, 12, {m: i + 1 for i, m in enumerate(MONTHS)}),
               ("day of week", 0, 6, {d: i for i, d in enumerate(DAYS)})]
GO_DURATION = re.compile(r"((\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h))+")


def schedule(value: str) -> str:
    """Five fields (minute hour day-of-month month day-of-week), or @hourly/@daily/..., or @every <duration>."""
    text = value.strip()
    if text in CRON_DESCRIPTORS:
        return text
    if text.startswith("@every "):
        if GO_DURATION.fullmatch(text[len("@every "):].strip()):
            return text
        raise UserError(f"invalid --schedule {value!r}: @every takes a duration, e.g. @every 5m")
    fields = text.split()
    if len(fields) != 5:
        raise UserError(f"invalid --schedule {value!r}: expected 5 fields (minute hour day-of-month month "
                        "day-of-week, e.g. '*/5 * * * *') or a descriptor such as @hourly")
    for field, (what, low, high, names) in zip(fields, CRON_FIELDS):
        for part in field.split(","):
            if not cron_part_ok(part.lower(), low, high, names):
                raise UserError(f"invalid --schedule {value!r}: bad {what} field {field!r} "
                                f"(values {low}-{high}, '*', ranges a-b, steps /n, lists a,b)")
    return text


def cron_part_ok(part: str, low: int, high: int, names: dict[str, int]) -> bool:
    base, slash, step = part.partition("/")
    if slash and not (step.isdigit() and int(step) > 0):
        return False
    if base in ("*", "?"):
        return True

    def number(token: str) -> int | None:
        if token.isdigit():
            return int(token)
        return names.get(token)

    start, dash, end = base.partition("-")
    first, last = number(start), number(end) if dash else number(start)
    return first is not None and last is not None and low <= first <= last <= high
