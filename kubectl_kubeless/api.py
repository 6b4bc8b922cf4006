"""The facts the plugin, the controller and the manifests share: API group, kinds, labels, names and defaults.

Stdlib only: the controller image imports this module too. Nothing else re-types these values.
"""
from __future__ import annotations

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
}
FUNCTIONS = KINDS["Function"]

# Labels Kubeless put on everything it made; manifests and tools written for Kubeless select by them.
LABEL_CREATED_BY = "created-by"
LABEL_FUNCTION = "function"
CREATED_BY = "kubeless"

SYSTEM_NAMESPACE = "kubeless"
CONFIG_MAP = "kubeless-config"
CONFIG_RUNTIMES_KEY = "runtime-images"
CONTROLLER_NAME = "kubeless-controller-manager"
CONTROLLER_SERVICE_ACCOUNT = "controller-acct"
FIELD_MANAGER = "kubeless-controller"
CLIENT_FIELD_MANAGER = "kubectl-kubeless"

FUNCTION_PORT = 8080
FUNCTION_PORT_NAME = "http-function-port"
DEFAULT_TIMEOUT = "180"
INSTALL_VOLUME = "/kubeless"
SOURCE_VOLUME = "/src"

# The API server stores objects in etcd, whose request limit (1.5 MiB) bounds a Function; a ConfigMap holds 1 MiB.
CONFIGMAP_LIMIT = 1024 * 1024

CONDITION_READY = "Ready"
CONDITION_PROGRESSING = "Progressing"
# Ready condition reasons: the controller writes them, `ls`, `describe` and `deploy --wait` read them.
REASON_READY = "MinimumReplicasAvailable"
REASON_DEPLOYING = "Deploying"
REASON_INVALID_SPEC = "InvalidSpec"
REASON_RESOURCE_EXISTS = "ResourceExists"
REASON_APPLY_FAILED = "ApplyFailed"
REASON_INIT_FAILED = {"prepare": "PrepareFailed", "install": "InstallFailed", "compile": "CompileFailed"}
REASON_OTHER_INIT_FAILED = "InitContainerFailed"
REASON_CRASHED = "FunctionCrashed"
REASON_IMAGE_PULL_FAILED = "ImagePullFailed"
# Ready=False reasons that no waiting will fix: the user must change the function (or read its logs).
FAILURE_REASONS = frozenset({REASON_INVALID_SPEC, REASON_RESOURCE_EXISTS, *REASON_INIT_FAILED.values(),
                             REASON_OTHER_INIT_FAILED, REASON_CRASHED, REASON_IMAGE_PULL_FAILED})
# The pod template's hash of the code: a change rolls the pods even without a checksum (Kubeless #952), and status
# reads failures only from pods of the current code.
CONTENT_HASH_ANNOTATION = "kubeless.io/content-hash"

EVENT_NAMESPACE_CLI = "cli.kubeless.io"

REPO = Path(__file__).resolve().parent.parent


def project_version() -> str:
    """The release version; also the tag of every image the project builds. The repository's VERSION file, else the
    copy the zipapp build puts in the package (cheaper than importlib.metadata at every start), else the metadata."""
    for path in (REPO / "VERSION", Path(__file__).with_name("VERSION")):
        try:
            return path.read_text().strip()
        except OSError:
            pass
    from importlib.metadata import version  # noqa: PLC0415 - only in an installed copy

    return version("kubectl-kubeless")


def function_labels(name: str) -> dict[str, str]:
    return {LABEL_CREATED_BY: CREATED_BY, LABEL_FUNCTION: name}
