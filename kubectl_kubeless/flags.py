"""Parsing and checking flag values, before any request: pure functions that return the value or raise UserError.

Each message names the flag and shows the expected form, so a user fixes the command line without reading docs.
The rules are the API server's own (names, labels, quantities) or the CRD's (handler), so what passes here is not
refused later; list flags split at commas like Kubeless' (pflag's string slices, CSV-quoted when a value has a comma).
"""
from __future__ import annotations

import re

from kubeless_api import meta, schema
from kubectl_kubeless.errors import UserError

DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
LABEL_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
HANDLER = re.compile(schema.FUNCTION_SPEC["properties"]["handler"]["pattern"])  # the CRD's own rule
QUANTITY = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)((Ki|Mi|Gi|Ti|Pi|Ei)|[numkMGTPE]|[eE][+-]?\d+)?")
PULL_POLICIES = ("IfNotPresent", "Always", "Never")
# patterns used by one flag each are compiled on first use (re's cache), not at start-up
DNS1035_LABEL = r"[a-z]([-a-z0-9]*[a-z0-9])?"
ENV_NAME = r"[-._a-zA-Z][-._a-zA-Z0-9]*"  # what the API server accepts for a container's env name
# The controller names the function's children after it: ConfigMap, Service (a DNS-1035 label: no leading digit),
# Deployment and HPA `<name>`, and the pod's volumes `<name>` and `<name>-deps` (DNS-1123 labels, 63 at most). Pods
# are `<name>-<hash>-<hash>`; Kubernetes cuts their host name to 63, which it accepts.
FUNCTION_NAME_MAX = 63 - len("-deps")
SECRET_VOLUME_SUFFIX = "-vol"  # a secret S is the volume S-vol, mounted at /S (Kubeless' rule)
# The root's own folders (the Filesystem Hierarchy Standard's, and the kernel's): a secret mounted over one of them
# hides the interpreter, its libraries or /tmp, and the function cannot start.
SYSTEM_FOLDERS = frozenset({"bin", "boot", "dev", "etc", "home", "lib", "lib32", "lib64", "libx32", "media", "mnt",
                            "opt", "proc", "root", "run", "sbin", "srv", "sys", "tmp", "usr", "var"})


def dns_label(value: str, what: str) -> str:
    if len(value) > 63 or not DNS1123_LABEL.fullmatch(value):
        raise UserError(f"invalid {what} {value!r}: must be a DNS-1123 label (at most 63 lowercase letters, digits "
                        "and '-', starting and ending with a letter or digit)")
    return value


def function_name(value: str) -> str:
    """The name of a new function: one every child the controller names after it can take."""
    if len(value) > FUNCTION_NAME_MAX or not re.fullmatch(DNS1035_LABEL, value):
        raise UserError(f"invalid function name {value!r}: must be a DNS-1035 label of at most {FUNCTION_NAME_MAX} "
                        "lowercase letters, digits and '-', starting with a letter and ending with a letter or digit "
                        "(its Service and volumes are named after it)")
    return value


def namespace(value: str, where: str = "-n/--namespace") -> str:
    if len(value) > 63 or not DNS1123_LABEL.fullmatch(value):
        raise UserError(f"invalid namespace {value!r} ({where}): a namespace is a DNS-1123 label, at most 63 "
                        "lowercase letters, digits and '-', starting and ending with a letter or digit")
    return value


def split_list(values: list[str] | None) -> list[str]:
    """Repeated flags and comma-separated values alike: `-e a=1,b=2 -e c=3` gives three items."""
    import csv  # noqa: PLC0415 - start-up: ~1 ms that `version` and `--help` do not need

    items: list[str] = []
    for value in values or []:
        try:
            items.extend(item for row in csv.reader([value]) for item in row if item != "")
        except csv.Error:  # a line break outside quotes
            raise UserError(f"invalid value {value!r}: it has a line break; give one line") from None
    return items


def key_value(item: str, flag: str, *, bare: bool = False) -> tuple[str, str]:
    """KEY=VALUE or KEY:VALUE, split at the first of either (Kubeless' rule); `bare`: KEY alone means KEY=""."""
    match = re.search(r"[=:]", item)
    if bare and not match:
        return item, ""
    if not match or match.start() == 0:
        raise UserError(f"invalid {flag} {item!r}: expected KEY=VALUE (or KEY:VALUE)")
    return item[:match.start()], item[match.end():]


def key_values(values: list[str] | None, flag: str, *, bare: bool = False) -> dict[str, str]:
    return dict(key_value(item, flag, bare=bare) for item in split_list(values))


def env_list(values: list[str] | None) -> list[dict]:
    """--env, in the order given, as container env entries, with names and values the API server takes."""
    entries = [{"name": k, "value": v} for k, v in (key_value(item, "--env") for item in split_list(values))]
    for entry in entries:
        if not re.fullmatch(ENV_NAME, entry["name"]):
            raise UserError(f"invalid --env name {entry['name']!r}: letters, digits, '-', '_' and '.', not starting "
                            "with a digit")
        if "\n" in entry["value"] or "\r" in entry["value"]:
            raise UserError(f"invalid --env value for {entry['name']!r}: it has a line break; give one line (put "
                            "longer text in a Secret or the code)")
    return entries


def label_map(values: list[str] | None, flag: str = "--label") -> dict[str, str]:
    """--label k=v, k:v, or k alone (the value "", as Kubeless); --node-selectors k=v. Keys and values as the API
    server checks them."""
    labels = key_values(values, flag, bare=flag == "--label")
    for key, value in labels.items():
        label(key, value, flag)
    return labels


def label(key: str, value: str, flag: str) -> None:
    """A label key and value as the API server checks them."""
    prefix, _, name = key.rpartition("/")
    if (prefix and (len(prefix) > 253 or not DNS1123_SUBDOMAIN.fullmatch(prefix))) or len(name) > 63 \
            or not LABEL_NAME.fullmatch(name):
        raise UserError(f"invalid {flag} key {key!r}: a label key is an optional DNS prefix and '/', then at "
                        "most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit")
    if value and (len(value) > 63 or not LABEL_NAME.fullmatch(value)):
        raise UserError(f"invalid {flag} value {value!r} for {key!r}: at most 63 letters, digits, '-', '_' "
                        "or '.', starting and ending with a letter or digit")


def label_selector(value: str, flag: str) -> dict[str, str]:
    """A label query of equalities, `k1=v1,k2=v2` (`==` too), as the labels it matches. Kubeless parsed it with
    metav1.ParseToLabelSelector but stored only matchLabels, so a set-based term (`k in (a,b)`, `!k`, `k!=v`) was
    silently dropped; it is refused here instead."""
    labels: dict[str, str] = {}
    for term in value.split(","):
        key, equals, wanted = term.strip().partition("=")
        wanted = wanted[1:] if wanted.startswith("=") else wanted
        if not equals or not key or key.endswith("!") or re.search(r"[\s()!=]", key + wanted):
            raise UserError(f"invalid {flag} {value!r}: give labels a function must have, KEY=VALUE separated by "
                            f"commas (e.g. topic=orders,team=web); {term.strip()!r} is not one")
        label(key, wanted, flag)
        if labels.get(key, wanted) != wanted:
            raise UserError(f"invalid {flag} {value!r}: {key} is given two values; no function can have both")
        labels[key] = wanted
    return labels


def whole_number(value: str, flag: str, minimum: int) -> int:
    if not re.fullmatch(r"\d+", value.strip()) or int(value) < minimum:
        raise UserError(f"invalid {flag} {value!r}: expected a whole number, at least {minimum}")
    return int(value)


def own_labels(labels: dict[str, str], name: str) -> dict[str, str]:
    """Refuse a --label that would move the function's own labels, which its Service and Deployment select."""
    for key, value in meta.function_labels(name).items():
        if key in labels and labels[key] != value:
            raise UserError(f"invalid --label {key}={labels[key]}: {key}={value} is the label the function's "
                            f"Service and Deployment select its pods by; choose another key")
    return labels


def secrets(values: list[str] | None, function: str) -> list[str]:
    """--secrets: each secret S is the pod volume S-vol, mounted at /S; refuse what is not a volume name or would
    collide with the function's own volumes (`<name>`, `<name>-deps`) and mounts (/kubeless, /src)."""
    names = split_list(values)
    reserved = {meta.INSTALL_VOLUME.strip("/"), meta.SOURCE_VOLUME.strip("/")}
    longest = 63 - len(SECRET_VOLUME_SUFFIX)
    for index, secret in enumerate(names):
        if len(secret) > longest or not DNS1123_LABEL.fullmatch(secret):
            raise UserError(f"invalid --secrets name {secret!r}: at most {longest} lowercase letters, digits and '-', "
                            "starting and ending with a letter or digit (it names the volume "
                            f"{secret}{SECRET_VOLUME_SUFFIX})")
        if secret in reserved or secret in SYSTEM_FOLDERS:
            where = "the function's code is" if secret in reserved else "the system's own files are"
            raise UserError(f"invalid --secrets name {secret!r}: it would be mounted at /{secret}, where {where}; "
                            "copy the secret under another name")
        if f"{secret}{SECRET_VOLUME_SUFFIX}" in (function, f"{function}-deps"):
            raise UserError(f"invalid --secrets name {secret!r}: its volume {secret}{SECRET_VOLUME_SUFFIX} has the "
                            "name of the function's own volume; copy the secret under another name")
        if secret in names[:index]:
            raise UserError(f"--secrets {secret} is given twice; give each secret once")
    return names


def service_account(value: str) -> str:
    if len(value) > 253 or not DNS1123_SUBDOMAIN.fullmatch(value):
        raise UserError(f"invalid --service-account {value!r}: a DNS-1123 subdomain (lowercase letters, digits, '-' "
                        "and '.', at most 253)")
    return value


def handler(value: str) -> str:
    if not HANDLER.fullmatch(value):
        raise UserError(f"invalid --handler {value!r}: expected <module>.<function>, e.g. hello.handler")
    return value


def go_handler(value: str | None, runtime: str | None) -> None:
    """A Go function must be exported: the Go runtime cannot call `hello.handler`, only `hello.Handler`."""
    if value and runtime and runtime.startswith("go"):
        function = value.rpartition(".")[2]
        if not function[:1].isupper():
            raise UserError(f"invalid --handler {value!r} for runtime {runtime}: a Go function must be exported, "
                            f"starting with an upper-case letter, e.g. {value.rpartition('.')[0]}."
                            f"{function[:1].upper()}{function[1:]}")


def quantity(value: str, flag: str) -> str:
    if not QUANTITY.fullmatch(value):
        raise UserError(f"invalid {flag} {value!r}: expected a Kubernetes quantity, e.g. 128Mi, 1Gi, 250m, 0.5")
    if value.startswith("-"):
        raise UserError(f"invalid {flag} {value!r}: must not be negative")
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
