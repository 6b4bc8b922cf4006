"""`kubectl kubeless trigger cronjob ...`: CronJobTriggers, calls of a function on a cron schedule.

The controller makes a CronJob named after the trigger; on each schedule its Job calls the function, a POST with
the payload as JSON (a GET without one), and fails unless the function answers 2xx. `function deploy --schedule`
makes one too, named after its function, with the same builder (`cron_trigger`).

Unlike Kubeless: `--payload-from-file` reads YAML as well as JSON (Kubeless refused .yaml: "we can't parse .yaml
files yet"), and `--payload` takes YAML text too.
"""
from __future__ import annotations

import json
import os
from datetime import datetime

from kubeless_api import meta, schema
from kubectl_kubeless import flags, readiness, source
from kubectl_kubeless.errors import UserError
from kubectl_kubeless.trigger.spec import (NONE, SpecFlag, TriggerKind, function_column, function_flag, identity,
                                           ready_column)

PAYLOAD_FILE_TYPES = {".json": "JSON", ".yaml": "YAML", ".yml": "YAML"}
JSON_TYPES = {str: "a string", int: "a number", float: "a number", bool: "a boolean", list: "a list",
              type(None): "null (nothing)"}


# --- the payload ------------------------------------------------------------------------------------------------

def syntax_error(error: Exception) -> str:
    """Where JSON or YAML text went wrong: `Expecting ',' delimiter at line 1, column 9`."""
    if isinstance(error, json.JSONDecodeError):
        return f"{error.msg} at line {error.lineno}, column {error.colno}"
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark else problem


def parse_payload(text: str, formats: tuple[str, ...], where: str) -> dict:
    """A payload as the trigger stores it: a JSON object (Kubeless sent objects only), read from JSON or YAML text,
    tried in `formats`' order. A YAML value that JSON cannot carry (a date, binary, NaN) is refused: the trigger
    travels as JSON."""
    import yaml  # noqa: PLC0415 - start-up: `version` and `--help` do not load PyYAML (bench/plugin_startup.py)

    errors = []
    for form in formats:
        try:
            value = json.loads(text) if form == "JSON" else yaml.safe_load(text)
            break
        except (ValueError, yaml.YAMLError) as error:
            errors.append(f"{form}: {syntax_error(error)}")
    else:
        raise UserError(f"invalid {where}: not {' or '.join(formats)} ({'; '.join(errors)})")
    if not isinstance(value, dict):
        raise UserError(f"invalid {where}: a payload is an object, e.g. '{{\"name\": \"world\"}}' or 'name: world', "
                        f"not {JSON_TYPES.get(type(value), 'a ' + type(value).__name__)}")
    try:
        encoded = json.dumps(value, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError):
        raise UserError(f"invalid {where}: it holds a value JSON cannot carry (a YAML date or binary, NaN); quote "
                        "it") from None
    if len(encoded.encode()) > schema.CRON_PAYLOAD_MAX_BYTES:
        raise UserError(f"invalid {where}: {len(encoded.encode())} bytes as JSON, over the "
                        f"{schema.CRON_PAYLOAD_MAX_BYTES} a scheduled call carries; have the function fetch the "
                        "data instead")
    return value


# YAML, indented and commented, may take a few times the JSON it stands for
PAYLOAD_FILE_MAX_BYTES = 4 * schema.CRON_PAYLOAD_MAX_BYTES


def payload_too_big(flag: str, location: str, size: int) -> UserError:
    return UserError(f"invalid {flag} {location}: {size} bytes, over the {PAYLOAD_FILE_MAX_BYTES} read for a "
                     f"payload (a scheduled call carries {schema.CRON_PAYLOAD_MAX_BYTES} bytes of JSON); have the "
                     "function fetch the data instead")


def payload_text(text: str) -> dict:
    return parse_payload(text, ("JSON", "YAML"), "--payload")


def payload_file(path: str) -> dict:
    extension = os.path.splitext(path)[1].lower()
    if extension not in PAYLOAD_FILE_TYPES:
        raise UserError(f"invalid --payload-from-file {path}: give a .json, .yaml or .yml file")
    data = source.read_file(path, "--payload-from-file", PAYLOAD_FILE_MAX_BYTES, payload_too_big)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UserError(f"invalid --payload-from-file {path}: not UTF-8 text") from None
    return parse_payload(text, (PAYLOAD_FILE_TYPES[extension],), f"--payload-from-file {path}")


# --- the kind ---------------------------------------------------------------------------------------------------

CREATE_EXAMPLES = """\
  # call hello every five minutes (a GET)
  kubectl kubeless trigger cronjob create tick --function hello --schedule '*/5 * * * *'

  # every hour, POSTing a payload (JSON or YAML, inline or from a .json/.yaml file)
  kubectl kubeless trigger cronjob create hourly --function hello --schedule @hourly -p '{"name": "world"}'
  kubectl kubeless trigger cronjob create nightly --function report --schedule '0 2 * * *' -f payload.yaml

  # only print the object
  kubectl kubeless trigger cronjob create tick --function hello --schedule @daily --dryrun -o yaml
"""
UPDATE_EXAMPLES = """\
  # another schedule; the function and the payload stay
  kubectl kubeless trigger cronjob update tick --schedule '*/10 * * * *'
  # no payload any more: the calls become GETs
  kubectl kubeless trigger cronjob update tick --payload ''
"""


class CronJobTriggerKind(TriggerKind):
    kind = "CronJobTrigger"
    noun = "cronjob"
    title = "Cronjob trigger"
    a_title = "a cronjob trigger"
    about = ("Call a function on a cron schedule: the controller makes a CronJob whose Job calls it (a POST of the "
             "payload as JSON, else a GET) and fails unless the function answers 2xx.")
    spec_flags = (
        function_flag("--function", "the function to call, in the same namespace"),
        SpecFlag(("--schedule",), "schedule", "when to call it: 5 cron fields (minute hour day-of-month month "
                 "day-of-week, e.g. '*/5 * * * *'), @hourly, @daily, ..., or @every 90s", flags.schedule,
                 metavar="CRON", required=True),
        SpecFlag(("-p", "--payload"), "payload", "the body of each call: a JSON or YAML object", payload_text,
                 metavar="JSON|YAML"),
        SpecFlag(("-f", "--payload-from-file"), "payload", "the body of each call from a .json, .yaml or .yml file",
                 payload_file, metavar="FILE"),
    )
    headers = ("NAME", "NAMESPACE", "SCHEDULE", "FUNCTION", "LAST-SCHEDULE", "LAST-RESULT", "READY")
    examples = {"noun": "  kubectl kubeless trigger cronjob create tick --function hello --schedule @hourly\n",
                "create": CREATE_EXAMPLES, "update": UPDATE_EXAMPLES}
    sample_name = "tick"
    name_limit = schema.CRON_JOB_TRIGGER_NAME_MAX
    name_why = (f"the CronJob that calls the function is named after it, and takes at most "
                f"{schema.CRON_JOB_TRIGGER_NAME_MAX} characters")

    def row(self, trigger: dict, now: datetime) -> list[str]:
        status = trigger.get("status") or {}
        scheduled = readiness.parse_time(status.get("lastScheduleTime"))
        return [*identity(trigger), meta.dig(trigger, "spec", "schedule", default=""), function_column(trigger),
                readiness.age(scheduled, now) if scheduled else NONE, status.get("lastResult") or NONE,
                ready_column(trigger)]


CRON_JOB = CronJobTriggerKind()


def cron_trigger(name: str, namespace: str, *, function: str, schedule: str, labels: dict[str, str]) -> dict:
    """A CronJobTrigger calling `function` on `schedule` (checked already): what `function deploy --schedule` makes,
    built as `trigger cronjob create` builds it."""
    spec = CRON_JOB.new_spec({schema.FUNCTION_NAME: function, "schedule": schedule})
    return CRON_JOB.build(name, namespace, spec, labels)
