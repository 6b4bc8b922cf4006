"""Group, version, kinds, labels, names and defaults of the Kubeless API.

Labels and names are Kubeless's own: manifests and tools written for Kubeless select by them.
"""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

GROUP = "kubeless.io"
VERSION = "v1beta1"
API_VERSION = f"{GROUP}/{VERSION}"

# kind -> plural; every kind is namespaced, as in Kubeless
KINDS = {
    "Function": "functions",
    "HTTPTrigger": "httptriggers",
    "CronJobTrigger": "cronjobtriggers",
    "KafkaTrigger": "kafkatriggers",
    "NATSTrigger": "natstriggers",
    "KinesisTrigger": "kinesistriggers",
}
FUNCTIONS = KINDS["Function"]
# Broker -> the trigger kind whose consumers `python3 -m kubeless_consumers <broker>` runs, in the Deployment
# <broker>-trigger-controller that `kubectl kubeless install --triggers <broker>,...` adds.
EVENT_TRIGGERS = {"kafka": "KafkaTrigger", "nats": "NATSTrigger", "kinesis": "KinesisTrigger"}

LABEL_CREATED_BY = "created-by"
LABEL_FUNCTION = "function"
CREATED_BY = "kubeless"
CREATED_BY_SELECTOR = f"{LABEL_CREATED_BY}={CREATED_BY}"

SYSTEM_NAMESPACE = "kubeless"
CONFIG_MAP = "kubeless-config"
CONTROLLER_NAME = "kubeless-controller-manager"
CONTROLLER_SERVICE_ACCOUNT = "controller-acct"
CONSUMERS_IMAGE = "consumers"
DEPS_CACHE_NAME = "kubeless-deps-cache"  # its Deployment, Service, ServiceAccount and ClusterRole
FIELD_MANAGER = "kubeless-controller"
CLIENT_FIELD_MANAGER = "kubectl-kubeless"
# The CRD annotations that tell the plugin where an install in another namespace keeps its kubeless-config.
ANNOTATION_NAMESPACE = f"{GROUP}/namespace"
ANNOTATION_CONFIG = f"{GROUP}/config"

FUNCTION_PORT = 8080
FUNCTION_PORT_NAME = "http-function-port"
DEFAULT_TIMEOUT = "180"
INSTALL_VOLUME = "/kubeless"
SOURCE_VOLUME = "/src"

# The API server stores objects in etcd, whose request limit (1.5 MiB) bounds a Function; a ConfigMap holds 1 MiB.
CONFIGMAP_LIMIT = 1024 * 1024

# The pod template's hash of the code: a change rolls the pods even without a checksum (Kubeless #952), and status
# reads failures only from pods of the current code.
CONTENT_HASH_ANNOTATION = f"{GROUP}/content-hash"

# Every image the project builds is named so; the tag is the project version.
IMAGE_REPOSITORY = "localhost/kubeless"

PACKAGE_DIR = Path(__file__).resolve().parent
REPO = PACKAGE_DIR.parent


def project_version() -> str:
    """The release version; also the tag of every image the project builds. The repository's VERSION file, else the
    copy a build puts next to this package (the zipapp, the controller image), else the installed metadata.

    The one read of a file in this package: the version must be the repository's, whichever copy runs."""
    for path in (REPO / "VERSION", PACKAGE_DIR / "VERSION"):
        try:
            return path.read_text().strip()
        except OSError:
            pass
    from importlib.metadata import version  # noqa: PLC0415 - only in an installed copy

    return version("kubectl-kubeless")


def trigger_controller_name(broker: str) -> str:
    """The Deployment, ServiceAccount and ClusterRole of one broker's consumers (Kubeless's Deployment names)."""
    return f"{broker}-trigger-controller"


def image(name: str, version: str) -> str:
    return f"{IMAGE_REPOSITORY}/{name}:{version}"


def function_labels(name: str) -> dict[str, str]:
    return {LABEL_CREATED_BY: CREATED_BY, LABEL_FUNCTION: name}


def timeout_seconds(function: dict) -> int:
    """The seconds a call of the function may take, which its runtime enforces: its spec's whole number, else the
    default."""
    value = str(dig(function, "spec", "timeout") or DEFAULT_TIMEOUT)
    return int(value) if value.isdigit() and int(value) > 0 else int(DEFAULT_TIMEOUT)


def dig(obj: dict | None, *keys: str, default=None):
    """obj[k1][k2]... where a missing key, a None or a non-mapping on the way gives `default`."""
    for key in keys:
        if not isinstance(obj, dict):
            return default
        obj = obj.get(key)
        if obj is None:
            return default
    return obj


def rfc3339(moment: datetime) -> str:
    """A datetime as the API writes times (seconds, UTC, `Z`)."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
