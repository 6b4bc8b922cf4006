"""What the informers keep of each object, and how a rendered child is compared with that copy.

The copies are what a controller costs in memory, so each informer keeps only what its readers need (a transform,
applied to every object as it arrives): never managedFields nor kubectl's last-applied annotation, no code for a
Function (the reconciler reads it with a GET), a digest of each value for a ConfigMap.

A child is applied only when the copy shows it would change something, because a server-side apply of an unchanged
object is still a write request the API server pays for (admission, a read of etcd, a diff of managedFields):
- the copy must have every field the render sets, with the same value ("desired is a subset of live"): the API
  server adds defaults the render never sets (a container's terminationMessagePath, a Service's clusterIP) and
  omits empty values (an env var's "" value);
- the copy's render-hash annotation must be the hash of this render: a field the render stopped setting is still in
  the copy, so the subset test passes, and only an apply removes it;
- both sides are compared as the informer keeps them: the desired ConfigMap is digested as its copy is.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from fractions import Fraction

Transform = Callable[[dict], dict]

# The hash of the child as last rendered, on every child the runner applies: how a compare notices a removed field.
RENDER_HASH_ANNOTATION = "kubeless.io/render-hash"
LAST_APPLIED_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration"  # kubectl apply's copy of the object


# --- what the informers keep ------------------------------------------------------------------------------------

def slim(obj: dict) -> dict:
    """The object without what no reader needs: managedFields (often half an object) and kubectl apply's copy of
    the whole object in an annotation (a Function's code, again)."""
    metadata = obj.get("metadata") or {}
    if "managedFields" not in metadata and LAST_APPLIED_ANNOTATION not in (metadata.get("annotations") or {}):
        return obj
    metadata = {key: value for key, value in metadata.items() if key != "managedFields"}
    annotations = metadata.get("annotations")
    if annotations and LAST_APPLIED_ANNOTATION in annotations:
        metadata["annotations"] = {k: v for k, v in annotations.items() if k != LAST_APPLIED_ANNOTATION}
    return {**obj, "metadata": metadata}


def metadata_only(obj: dict) -> dict:
    """For the kind a reconciler reads with a GET anyway: its keys, labels, generation and deletion are what a change
    is; its spec (a Function's code) and status (which the reconciler writes itself) stay out of memory."""
    return {key: value for key, value in slim(obj).items() if key in ("apiVersion", "kind", "metadata")}


def identity(obj: dict) -> dict:
    """For the names taken in a kind (a metadata-only watch of every object, ours or not): what the ownership check
    reads, nothing more."""
    metadata = obj.get("metadata") or {}
    return {"metadata": {key: metadata[key] for key in ("name", "namespace", "uid", "resourceVersion",
                                                       "ownerReferences", "deletionTimestamp") if key in metadata}}


def without_status(obj: dict) -> dict:
    """For a child whose status nobody reads (a Service, an autoscaler): its status updates requeue nothing."""
    return {key: value for key, value in slim(obj).items() if key != "status"}


def data_digests(obj: dict) -> dict:
    """For a ConfigMap: a sha256 of each value instead of the value (the code), enough to compare it."""
    obj = slim(obj)
    digested = {field: {key: _digest(value) for key, value in obj[field].items()}
                for field in ("data", "binaryData") if isinstance(obj.get(field), dict)}
    return {**obj, **digested}


def _digest(value) -> str:
    return hashlib.sha256(str(value).encode()).hexdigest()


# --- the compare ------------------------------------------------------------------------------------------------

def render_hash(child: dict) -> str:
    return _digest(json.dumps(child, sort_keys=True, separators=(",", ":")))


def with_render_hash(child: dict) -> dict:
    metadata = child["metadata"]
    annotations = {**(metadata.get("annotations") or {}), RENDER_HASH_ANNOTATION: render_hash(child)}
    return {**child, "metadata": {**metadata, "annotations": annotations}}


def _empty(value) -> bool:
    return value is None or value == "" or value == 0 or value is False or value == [] or value == {}


def contains(live, desired, key: str = "") -> bool:
    """Whether `live` has every field of `desired` with the same value: mappings may have more keys (the API
    server's defaults); lists must have as many items, each containing the desired one; a desired empty value
    ("", 0, false, [], {}, null) matches a missing key, as the API server omits those. Quantities under `limits`
    and `requests` compare by value ("0.5" is "500m")."""
    if isinstance(desired, dict):
        if not isinstance(live, dict):
            return False
        for name, value in desired.items():
            if name not in live:
                if not _empty(value):
                    return False
            elif not contains(live[name], value, name if key not in ("limits", "requests") else key):
                return False
        return True
    if isinstance(desired, list):
        return isinstance(live, list) and len(live) == len(desired) and all(
            contains(item, wanted) for item, wanted in zip(live, desired))
    if desired is None:
        return live is None
    if live == desired and type(live) is type(desired):
        return True
    if key in ("limits", "requests") and isinstance(live, (str, int, float)) and isinstance(desired, (str, int, float)):
        return _quantity(live) is not None and _quantity(live) == _quantity(desired)
    return False


_SUFFIXES = {"Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30, "Ti": 2 ** 40, "Pi": 2 ** 50, "Ei": 2 ** 60,
             "n": Fraction(1, 10 ** 9), "u": Fraction(1, 10 ** 6), "m": Fraction(1, 1000), "": 1,
             "k": 10 ** 3, "M": 10 ** 6, "G": 10 ** 9, "T": 10 ** 12, "P": 10 ** 15, "E": 10 ** 18}


def _quantity(value) -> Fraction | None:
    """A Kubernetes resource quantity as an exact number, or None when it is not one."""
    text = str(value).strip()
    number = text.rstrip("KMGTPEikmnu")
    try:
        return Fraction(number) * _SUFFIXES[text[len(number):]]
    except (ValueError, KeyError, ZeroDivisionError):
        return None


def unchanged(desired: dict, live: dict, transform: Transform) -> bool:
    """Whether applying `desired` (with its render hash) would change nothing of the informer's copy `live`."""
    wanted = desired["metadata"]["annotations"][RENDER_HASH_ANNOTATION]
    if ((live.get("metadata") or {}).get("annotations") or {}).get(RENDER_HASH_ANNOTATION) != wanted:
        return False
    body = {key: value for key, value in transform(desired).items() if key not in ("apiVersion", "kind")}
    return contains(live, body)  # apiVersion and kind: list items carry neither
