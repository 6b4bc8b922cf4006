"""The server side of the product as Kubernetes objects: CRDs, RBAC, the controller and its configuration.

Pure functions of the project's version and runtime catalogue. `make manifests` writes them to
manifests/kubeless.yaml (which a unit test keeps in step), and `kubectl kubeless install` applies the same list.
"""
from __future__ import annotations

import json
from pathlib import Path

from kubectl_kubeless import api

CATALOGUE_FILE = Path(__file__).resolve().parent / "catalogue.json"


def load_catalogue() -> list[dict]:
    return json.loads(CATALOGUE_FILE.read_text())


# --- CRDs ------------------------------------------------------------------------------------------------------

def _string(description: str, **extra) -> dict:
    return {"type": "string", "description": description, **extra}


def _free_object(description: str) -> dict:
    return {"type": "object", "description": description, "x-kubernetes-preserve-unknown-fields": True}


CONDITIONS_SCHEMA = {
    "type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"],
    "items": {"type": "object", "required": ["type", "status"], "properties": {
        "type": {"type": "string"}, "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
        "reason": {"type": "string"}, "message": {"type": "string"},
        "observedGeneration": {"type": "integer", "format": "int64"},
        "lastTransitionTime": {"type": "string", "format": "date-time"}}}}

FUNCTION_SPEC = {
    "type": "object",
    "properties": {
        "handler": _string("<module>.<function>, e.g. hello.handler",
                           pattern=r"^[A-Za-z0-9_-]+\.[A-Za-z_][A-Za-z0-9_]*$"),
        "function": _string("the code: text, base64, or a URL, as function-content-type says"),
        "function-content-type": _string("text, base64 or url, then optionally +zip or +compressedtar, then +deps",
                                         pattern=r"^((text|base64|url)(\+(zip|compressedtar))?(\+deps)?)?$"),
        "checksum": _string("sha256:<hex> of the code as given", pattern=r"^(sha256:[0-9a-f]{64})?$"),
        "runtime": _string("a runtime id of the catalogue, e.g. python3.11"),
        "timeout": {"description": "seconds a call may take", "x-kubernetes-int-or-string": True,
                    "x-kubernetes-validations": [{
                        "rule": "type(self) == int ? self > 0 : self.matches('^[0-9]*$')",
                        "message": "timeout must be a whole number of seconds"}]},
        "deps": _string("the dependency file's content (requirements.txt, package.json, go.mod, ...)"),
        "deployment": _free_object("a partial apps/v1 Deployment merged into the generated one"),
        "service": _free_object("a partial core/v1 ServiceSpec"),
        "horizontalPodAutoscaler": _free_object("an autoscaling HorizontalPodAutoscaler for the function"),
    },
}

FUNCTION_STATUS = {
    "type": "object",
    "properties": {
        "observedGeneration": {"type": "integer", "format": "int64"},
        "replicas": {"type": "integer"},
        "readyReplicas": {"type": "integer"},
        "conditions": CONDITIONS_SCHEMA,
    },
}

TRIGGER_STATUS = {"type": "object", "properties": {"observedGeneration": {"type": "integer", "format": "int64"},
                                                    "conditions": CONDITIONS_SCHEMA}}

LABEL_SELECTOR = {"type": "object", "properties": {
    "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}},
    "matchExpressions": {"type": "array", "items": {"type": "object", "required": ["key", "operator"], "properties": {
        "key": {"type": "string"}, "operator": {"type": "string"},
        "values": {"type": "array", "items": {"type": "string"}}}}}}}

TRIGGER_SPECS = {
    "HTTPTrigger": {"type": "object", "required": ["function-name"], "properties": {
        "function-name": _string("the Function in the same namespace"),
        "host-name": _string("the Ingress host"),
        "path": _string("the path, without the leading /"),
        "tls": {"type": "boolean", "description": "ask cert-manager (ACME) for a certificate"},
        "tls-secret": _string("an existing TLS secret"),
        "basic-auth-secret": _string("an htpasswd secret (nginx, traefik)"),
        "gateway": _string("the ingress controller", enum=["nginx", "traefik", "kong"]),
        "cors-enable": {"type": "boolean"}}},
    "CronJobTrigger": {"type": "object", "required": ["schedule", "function-name"], "properties": {
        "schedule": _string("a cron schedule, e.g. */5 * * * *"),
        "function-name": _string("the Function in the same namespace"),
        "payload": {"description": "JSON sent as the call's body", "x-kubernetes-preserve-unknown-fields": True}}},
    "KafkaTrigger": {"type": "object", "required": ["topic", "functionSelector"], "properties": {
        "topic": _string("the Kafka topic"), "functionSelector": LABEL_SELECTOR}},
    "NATSTrigger": {"type": "object", "required": ["topic", "functionSelector"], "properties": {
        "topic": _string("the NATS subject"), "functionSelector": LABEL_SELECTOR}},
}

READY = '.status.conditions[?(@.type=="Ready")]'
PRINTER_COLUMNS = {
    "Function": [
        {"name": "Runtime", "type": "string", "jsonPath": ".spec.runtime"},
        {"name": "Handler", "type": "string", "jsonPath": ".spec.handler"},
        {"name": "Ready", "type": "string", "jsonPath": f"{READY}.status"},
        {"name": "Replicas", "type": "integer", "jsonPath": ".status.readyReplicas"},
        {"name": "Reason", "type": "string", "jsonPath": f"{READY}.reason"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}],
    "HTTPTrigger": [{"name": "Function", "type": "string", "jsonPath": ".spec.function-name"},
                    {"name": "Host", "type": "string", "jsonPath": ".spec.host-name"}],
    "CronJobTrigger": [{"name": "Schedule", "type": "string", "jsonPath": ".spec.schedule"},
                       {"name": "Function", "type": "string", "jsonPath": ".spec.function-name"}],
    "KafkaTrigger": [{"name": "Topic", "type": "string", "jsonPath": ".spec.topic"}],
    "NATSTrigger": [{"name": "Topic", "type": "string", "jsonPath": ".spec.topic"}],
}


def crd(kind: str) -> dict:
    plural = api.KINDS[kind]
    spec_schema = FUNCTION_SPEC if kind == "Function" else TRIGGER_SPECS[kind]
    status_schema = FUNCTION_STATUS if kind == "Function" else TRIGGER_STATUS
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{api.GROUP}"},
        "spec": {
            "group": api.GROUP, "scope": "Namespaced",
            "names": {"kind": kind, "listKind": f"{kind}List", "plural": plural, "singular": kind.lower(),
                      "categories": ["kubeless"]},
            "versions": [{
                "name": api.VERSION, "served": True, "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": PRINTER_COLUMNS[kind],
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"},
                    "spec": spec_schema, "status": status_schema}}}}],
        },
    }


# --- controller, RBAC, configuration ---------------------------------------------------------------------------

def controller_rules() -> list[dict]:
    """Least privilege: what the reconcile loop reads and writes, and nothing else."""
    return [
        {"apiGroups": [api.GROUP], "resources": list(api.KINDS.values()), "verbs": ["get", "list", "watch"]},
        {"apiGroups": [api.GROUP], "resources": [f"{p}/status" for p in api.KINDS.values()],
         "verbs": ["get", "update", "patch"]},
        {"apiGroups": [api.GROUP], "resources": [f"{p}/finalizers" for p in api.KINDS.values()],
         "verbs": ["update"]},
        {"apiGroups": [""], "resources": ["configmaps", "services"],
         "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
        {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
        {"apiGroups": ["apps"], "resources": ["deployments"],
         "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
        {"apiGroups": ["autoscaling"], "resources": ["horizontalpodautoscalers"],
         "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
        {"apiGroups": ["batch"], "resources": ["cronjobs"],
         "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
        {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses"],
         "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
    ]


def controller_namespace_rules() -> list[dict]:
    """In its own namespace only: the leader-election Lease."""
    return [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
             "verbs": ["get", "list", "watch", "create", "update", "patch"]}]


def image(name: str, version: str) -> str:
    return f"localhost/kubeless/{name}:{version}"


def config_map(version: str, catalogue: list[dict]) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": api.CONFIG_MAP, "namespace": api.SYSTEM_NAMESPACE},
            "data": {
                api.CONFIG_RUNTIMES_KEY: json.dumps(catalogue, indent=2),
                "deployment": "{}",
                "provision-image": image("provision", version),
                "provision-image-secret": "",
                # env of every install/compile step: where pods find package indexes (air-gapped installs set
                # e.g. PIP_INDEX_URL and PIP_TRUSTED_HOST, npm_config_registry, GOPROXY here)
                "install-env": "{}",
                "deps-cache-url": f"http://{DEPS_CACHE}.{api.SYSTEM_NAMESPACE}.svc.cluster.local:8080",
                "functions-namespace": "",
                "enable-build-step": "false",
                "service-type": "ClusterIP",
            }}


def controller_deployment(version: str) -> dict:
    labels = {"kubeless": "controller"}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": api.CONTROLLER_NAME, "namespace": api.SYSTEM_NAMESPACE, "labels": labels},
        "spec": {
            "replicas": 1, "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels, "annotations": {
                "prometheus.io/scrape": "true", "prometheus.io/port": "8081", "prometheus.io/path": "/metrics"}},
                "spec": {
                    "serviceAccountName": api.CONTROLLER_SERVICE_ACCOUNT,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000},
                    "containers": [{
                        "name": "controller", "image": image("controller", version), "imagePullPolicy": "IfNotPresent",
                        "env": [{"name": "KUBELESS_NAMESPACE",
                                 "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                                {"name": "KUBELESS_CONFIG", "value": api.CONFIG_MAP},
                                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                        "ports": [{"name": "http-metrics", "containerPort": 8081}],
                        "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8081}, "periodSeconds": 10},
                        "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8081}, "periodSeconds": 2},
                        "resources": {"requests": {"cpu": "20m", "memory": "48Mi"}, "limits": {"memory": "256Mi"}},
                        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                            "capabilities": {"drop": ["ALL"]}}}]}}}}


DEPS_CACHE = "kubeless-deps-cache"


def deps_cache(version: str) -> list[dict]:
    """The dependency cache (controller/kubeless_controller/depcache.py): built once, shared by every pod."""
    labels = {"kubeless": "deps-cache"}
    meta = {"name": DEPS_CACHE, "namespace": api.SYSTEM_NAMESPACE, "labels": labels}
    return [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": {
            "replicas": 1, "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {
                "automountServiceAccountToken": False,
                "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000},
                "containers": [{
                    "name": "cache", "image": image("controller", version), "imagePullPolicy": "IfNotPresent",
                    "command": ["python3", "-m", "kubeless_controller.depcache"],
                    "env": [{"name": "DEPS_CACHE_DIR", "value": "/var/cache/kubeless-deps"}],
                    "ports": [{"name": "http", "containerPort": 8080}],
                    "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 2},
                    "volumeMounts": [{"name": "cache", "mountPath": "/var/cache/kubeless-deps"}],
                    "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "256Mi"}},
                    "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                        "capabilities": {"drop": ["ALL"]}}}],
                "volumes": [{"name": "cache", "emptyDir": {"sizeLimit": "4Gi"}}]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": {
            "selector": labels, "ports": [{"name": "http", "port": 8080, "targetPort": "http"}]}},
    ]


def install_objects(version: str, catalogue: list[dict]) -> list[dict]:
    """Everything `kubectl kubeless install` creates, in apply order."""
    ns = api.SYSTEM_NAMESPACE
    account = api.CONTROLLER_SERVICE_ACCOUNT
    subject = [{"kind": "ServiceAccount", "name": account, "namespace": ns}]
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
        *(crd(kind) for kind in api.KINDS),
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": account, "namespace": ns}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": {"name": "kubeless-controller-deployer"}, "rules": controller_rules()},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": "kubeless-controller-deployer"}, "subjects": subject,
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                     "name": "kubeless-controller-deployer"}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": "kubeless-controller-leader-election", "namespace": ns},
         "rules": controller_namespace_rules()},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": "kubeless-controller-leader-election", "namespace": ns}, "subjects": subject,
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                     "name": "kubeless-controller-leader-election"}},
        config_map(version, catalogue),
        controller_deployment(version),
        *deps_cache(version),
    ]


def render_yaml(objects: list[dict]) -> str:
    import yaml  # noqa: PLC0415 - the controller image imports this module without PyYAML

    header = "# Generated by `make manifests` from kubectl_kubeless/manifests.py; do not edit.\n"
    return header + "".join("---\n" + yaml.safe_dump(obj, sort_keys=False) for obj in objects)


if __name__ == "__main__":
    print(render_yaml(install_objects(api.project_version(), load_catalogue())), end="")
