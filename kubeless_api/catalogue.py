"""The runtime catalogue: which runtimes a server offers and how to run each.

The catalogue is the `runtime-images` key of kubeless-config (catalogue.json beside this file is the one an install
writes). An entry has an ID, a depName and fileNameSuffix, an optional livenessProbeInfo and versions, each with
images per phase (installation, compilation, runtime); a runtime id is an entry's ID followed by one of its versions
(`python3.11`), as in Kubeless.

One parse rule for every reader: JSON, which is what Kubeless's jsonnet and `kubectl kubeless install` write.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

CATALOGUE_FILE = "catalogue.json"


class CatalogueError(ValueError):
    """The catalogue cannot be read, or does not offer what is asked for; the message says which."""


@dataclass(frozen=True)
class Runtime:
    """One runtime version of the catalogue, e.g. python3.11, with what a function's pods need from its entry."""
    id: str
    dep_name: str
    file_suffix: str
    phases: dict[str, dict] = field(hash=False)  # installation, compilation, runtime -> {image, command, env}
    liveness_probe: dict | None = field(default=None, hash=False)


def parse(text: str) -> list[dict]:
    try:
        catalogue = json.loads(text)
    except ValueError as error:
        raise CatalogueError(f"runtime-images is not JSON: {error}") from None
    if not isinstance(catalogue, list) or not all(isinstance(e, dict) and "ID" in e for e in catalogue):
        raise CatalogueError("runtime-images is not a list of runtimes with an ID")
    return catalogue


def runtime_ids(catalogue: list[dict]) -> list[str]:
    return [entry["ID"] + version["version"] for entry in catalogue for version in entry.get("versions") or []]


def find(catalogue: list[dict], runtime_id: str) -> Runtime:
    for entry in catalogue:
        for version in entry.get("versions") or []:
            if entry["ID"] + version["version"] == runtime_id:
                images = version.get("images") or []
                if not any(image.get("phase") == "runtime" for image in images):
                    raise CatalogueError(f"runtime {runtime_id!r} has no runtime image in the catalogue")
                return Runtime(runtime_id, entry.get("depName", ""), entry.get("fileNameSuffix", ""),
                               {image["phase"]: image for image in images}, entry.get("livenessProbeInfo"))
    raise CatalogueError(f"unknown runtime {runtime_id!r}; supported: {', '.join(runtime_ids(catalogue))}")
