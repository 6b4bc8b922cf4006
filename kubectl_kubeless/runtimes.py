"""The runtime catalogue as data: which runtime ids (`python3.11`, ...) a catalogue offers.

The catalogue is the `runtime-images` key of the kubeless-config ConfigMap (catalogue.json in the repository);
an id is an entry's ID followed by one of its versions, as in Kubeless. Stdlib only: the controller may import it.
"""
from __future__ import annotations

import json


def runtime_ids(catalogue: list[dict]) -> list[str]:
    return [entry["ID"] + version["version"] for entry in catalogue for version in entry.get("versions") or []]


def parse_catalogue(text: str) -> list[dict]:
    """The `runtime-images` value: JSON here; Kubeless installs also wrote it as YAML, which PyYAML reads."""
    try:
        catalogue = json.loads(text)
    except ValueError:
        import yaml  # noqa: PLC0415 - the JSON form needs no third-party parser

        catalogue = yaml.safe_load(text)
    if not isinstance(catalogue, list) or not all(isinstance(e, dict) and "ID" in e for e in catalogue):
        raise ValueError("runtime-images is not a list of runtimes with an ID")
    return catalogue
