"""Printers every command shares: aligned tables, label/value blocks, and `-o json|yaml|name`.

Tables follow kubectl's look (upper-case headers, columns three spaces apart, no borders). A cell may hold several
lines (a function's dependencies or env): the row then takes as many lines, each column staying aligned, which is how
Kubeless showed them. JSON is indented by 4, as kubectl prints it; `-o name` is kubectl's `kind.group/name`.
"""
from __future__ import annotations

import json

from kubeless_api import resources


GAP = "   "


def table(headers: list[str], rows: list[list[str]]) -> str:
    grid = [[str(cell).splitlines() or [""] for cell in row] for row in [headers, *rows]]
    widths = [max(len(line) for row in grid for line in row[column]) for column in range(len(headers))]
    lines = []
    for row in grid:
        for index in range(max(len(cell) for cell in row)):
            parts = [(cell[index] if index < len(cell) else "").ljust(width) for cell, width in zip(row, widths)]
            lines.append(GAP.join(parts).rstrip())
    return "\n".join(lines) + "\n"


def fields(rows: list[tuple[str, str]]) -> str:
    """`Label:   value` blocks (describe); a value of several lines continues under its first line."""
    width = max(len(label) for label, _ in rows) + 1
    lines = []
    for label, value in rows:
        value_lines = str(value).splitlines() or [""]
        lines.append(f"{label + ':':<{width}}  {value_lines[0]}".rstrip())
        lines.extend(f"{'':<{width}}  {line}".rstrip() for line in value_lines[1:])
    return "\n".join(lines) + "\n"


def without_managed_fields(obj):
    """What kubectl shows by default: objects without metadata.managedFields (server-side apply bookkeeping)."""
    if isinstance(obj, list):
        return [without_managed_fields(item) for item in obj]
    if isinstance(obj, dict) and isinstance(obj.get("metadata"), dict) and "managedFields" in obj["metadata"]:
        return {**obj, "metadata": {k: v for k, v in obj["metadata"].items() if k != "managedFields"}}
    return obj


def dump(obj, output: str) -> str:
    """`-o json` or `-o yaml` of an object or a list of them."""
    obj = without_managed_fields(obj)
    if output == "json":
        return json.dumps(obj, indent=4) + "\n"
    return yaml_dump(obj)


def yaml_dump(obj) -> str:
    """Block style, and code (multi-line strings) as `|` literals that read like the file they came from."""
    import yaml  # noqa: PLC0415 - start-up: `version` and `--help` do not load PyYAML (bench/plugin_startup.py)

    class Dumper(yaml.SafeDumper):
        pass

    def text(dumper, data: str):
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|" if "\n" in data else None)

    Dumper.add_representer(str, text)
    return yaml.dump(obj, Dumper=Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True,
                     width=1 << 16)


def dump_all(objects: list[dict], output: str) -> str:
    """Several objects: a kubectl List in JSON, YAML documents separated by `---`."""
    if len(objects) == 1:
        return dump(objects[0], output)
    if output == "json":
        return dump({"apiVersion": "v1", "kind": "List", "items": objects}, "json")
    return "".join("---\n" + dump(obj, "yaml") for obj in objects)


def names(objects: list[dict]) -> str:
    """`-o name`: one `function.kubeless.io/hello`, `namespace/kubeless`, ... a line, as kubectl prints them."""
    return "".join(resources.display_name(obj) + "\n" for obj in objects)


def objects_output(objects: list[dict], output: str) -> str:
    """What a command made (or, in a dry run, would make) as `-o name`, `json` or `yaml`."""
    return names(objects) if output == "name" else dump_all(objects, output)


def compact_json(value) -> str:
    """One-line JSON with sorted keys, as Kubeless printed labels and env in describe."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
