"""The server side of the product as Kubernetes objects: CRDs, RBAC, the controller and its configuration.

Pure functions of the project's version and runtime catalogue. `make manifests` writes them to
manifests/kubeless.yaml (which a unit test keeps in step), and `kubectl kubeless install` applies the same list.
"""
from __future__ import annotations

from kubeless_api import brokers, catalogue, meta, schema
from kubeless_api.config import KubelessConfig


def load_catalogue() -> list[dict]:
    """The catalogue an install writes, as the plugin carries it."""
    return catalogue.parse((meta.PACKAGE_DIR / catalogue.CATALOGUE_FILE).read_text())


# --- controller, RBAC, configuration ---------------------------------------------------------------------------

def controller_rules() -> list[dict]:
    """Least privilege: what the controller's code calls, and nothing else (tests/e2e/test_install.py asks the API
    server with `kubectl auth can-i`). Children are written with server-side apply (patch; create for a new one),
    read once by the ownership check (get) and followed by label-selected watches (list, watch); the garbage
    collector deletes them with their owner, so only a pruned child (an autoscaler; an Ingress, HTTPRoute or Traefik
    Middleware when a trigger changes gateway or flags) is ever deleted here. Triggers are patched only to name their function as an owner."""
    write = ["get", "list", "watch", "create", "patch"]
    triggers = [meta.KINDS["HTTPTrigger"], meta.KINDS["CronJobTrigger"]]
    return [
        {"apiGroups": [meta.GROUP], "resources": [meta.FUNCTIONS], "verbs": ["get", "list", "watch"]},
        {"apiGroups": [meta.GROUP], "resources": triggers, "verbs": ["list", "watch", "patch"]},
        {"apiGroups": [meta.GROUP], "resources": [f"{plural}/status" for plural in [meta.FUNCTIONS, *triggers]],
         "verbs": ["patch"]},
        {"apiGroups": [""], "resources": ["configmaps", "services"], "verbs": write},
        {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": write},
        {"apiGroups": ["autoscaling"], "resources": ["horizontalpodautoscalers"], "verbs": [*write, "delete"]},
        {"apiGroups": ["batch"], "resources": ["cronjobs"], "verbs": write},
        {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["list", "watch"]},
        {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses"], "verbs": [*write, "delete"]},
        {"apiGroups": ["networking.k8s.io"], "resources": ["ingressclasses"], "verbs": ["get"]},
        {"apiGroups": ["gateway.networking.k8s.io"], "resources": ["httproutes"], "verbs": ["get", "create", "patch",
                                                                                             "delete"]},
        {"apiGroups": ["gateway.networking.k8s.io"], "resources": ["gateways"], "verbs": ["get"]},
        {"apiGroups": ["traefik.io"], "resources": ["middlewares"], "verbs": ["get", "create", "patch", "delete"]},
        # pods: the functions' (status); a failed cron call's (what the function answered)
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "watch"]},
        # a function may run as a service account of its namespace only if it exists (functions/policy.py)
        {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
    ]


def controller_namespace_rules() -> list[dict]:
    """In its own namespace only: the leader-election Lease."""
    return [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update"]}]


def config_map(version: str, runtimes: list[dict]) -> dict:
    settings = KubelessConfig(
        runtime_images=runtimes, provision_image=meta.image("provision", version),
        deps_cache_url=f"http://{meta.DEPS_CACHE_NAME}.{meta.SYSTEM_NAMESPACE}.svc.cluster.local:8080")
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": meta.CONFIG_MAP, "namespace": meta.SYSTEM_NAMESPACE}, "data": settings.to_data()}


def controller_deployment(version: str) -> dict:
    labels = {"kubeless": "controller"}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": meta.CONTROLLER_NAME, "namespace": meta.SYSTEM_NAMESPACE, "labels": labels},
        "spec": {
            "replicas": 1, "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels, "annotations": {
                "prometheus.io/scrape": "true", "prometheus.io/port": "8081", "prometheus.io/path": "/metrics"}},
                "spec": {
                    "serviceAccountName": meta.CONTROLLER_SERVICE_ACCOUNT,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000,
                                        "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [{
                        "name": "controller", "image": meta.image("controller", version), "imagePullPolicy": "IfNotPresent",
                        "env": [{"name": "KUBELESS_NAMESPACE",
                                 "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                                {"name": "KUBELESS_CONFIG", "value": meta.CONFIG_MAP},
                                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                        "ports": [{"name": "http-metrics", "containerPort": 8081}],
                        "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8081}, "periodSeconds": 10},
                        "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8081}, "periodSeconds": 2},
                        "resources": {"requests": {"cpu": "20m", "memory": "48Mi"}, "limits": {"memory": "256Mi"}},
                        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                            "capabilities": {"drop": ["ALL"]}}}]}}}}


def deps_cache_rules() -> list[dict]:
    """The cache's: TokenReviews, to learn which namespace a function pod's token is of."""
    return [{"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]}]


def deps_cache(version: str) -> list[dict]:
    """The dependency cache (depcache/kubeless_depcache): built once, shared by every pod."""
    labels = {"kubeless": "deps-cache"}
    metadata = {"name": meta.DEPS_CACHE_NAME, "namespace": meta.SYSTEM_NAMESPACE, "labels": labels}
    cluster_metadata = {"name": meta.DEPS_CACHE_NAME, "labels": labels}
    account = [{"kind": "ServiceAccount", "name": meta.DEPS_CACHE_NAME, "namespace": meta.SYSTEM_NAMESPACE}]
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata},
        # to ask the API server whose a pod's token is (protocol.py), and nothing else
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": cluster_metadata,
         "rules": deps_cache_rules()},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": cluster_metadata,
         "subjects": account, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                          "name": meta.DEPS_CACHE_NAME}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata, "spec": {
            "replicas": 1, "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {
                # its token makes TokenReviews (deps_cache_rules) and nothing else
                "serviceAccountName": meta.DEPS_CACHE_NAME, "automountServiceAccountToken": True,
                "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000,
                                    "seccompProfile": {"type": "RuntimeDefault"}},
                "containers": [{
                    "name": "cache", "image": meta.image("controller", version), "imagePullPolicy": "IfNotPresent",
                    "command": ["python3", "-m", "kubeless_depcache"],
                    "env": [{"name": "DEPS_CACHE_DIR", "value": "/var/cache/kubeless-deps"}],
                    "ports": [{"name": "http", "containerPort": 8080}],
                    "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 2},
                    "volumeMounts": [{"name": "cache", "mountPath": "/var/cache/kubeless-deps"}],
                    "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "256Mi"}},
                    "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                        "capabilities": {"drop": ["ALL"]}}}],
                "volumes": [{"name": "cache", "emptyDir": {"sizeLimit": "4Gi"}}]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": metadata, "spec": {
            "selector": labels, "ports": [{"name": "http", "port": 8080, "targetPort": "http"}]}},
    ]


# --- event trigger consumers (consumers/kubeless_consumers) -------------------------------------------------------

BROKER_ENV = {
    "kafka": {"KAFKA_BROKERS": brokers.KAFKA_BROKERS, "KAFKA_ENABLE_TLS": "false",
              "KAFKA_ENABLE_SASL": "false"},
    "nats": {"NATS_URL": brokers.NATS_URL},
    "kinesis": {},
}
BACKOFF_INTERVAL = "5s"  # the longest wait between two calls of a failing function (Kubeless's variable)


def trigger_controller_rules(broker: str) -> list[dict]:
    """Least privilege for one broker's consumers: read the functions, their Services and its trigger kind, write
    that kind's status (server-side apply is a patch) and Events; Kinesis reads the Secret a trigger names."""
    plural = meta.KINDS[meta.EVENT_TRIGGERS[broker]]
    rules = [
        {"apiGroups": [meta.GROUP], "resources": [meta.FUNCTIONS, plural], "verbs": ["list", "watch"]},
        {"apiGroups": [meta.GROUP], "resources": [f"{plural}/status"], "verbs": ["patch"]},
        {"apiGroups": [""], "resources": ["services"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
    ]
    if broker == "kinesis":
        rules.append({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]})
    return rules


def trigger_controller(version: str, broker: str) -> list[dict]:
    """One broker's consumers: ServiceAccount, ClusterRole and binding, and a one-replica Deployment (two would
    deliver every message twice and write every status twice)."""
    name = meta.trigger_controller_name(broker)
    labels = {"kubeless": name}
    metadata = {"name": name, "namespace": meta.SYSTEM_NAMESPACE, "labels": labels}
    cluster_metadata = {"name": name, "labels": labels}
    env = {**BROKER_ENV[broker], "BACKOFF_INTERVAL": BACKOFF_INTERVAL, "KUBELESS_LOG_LEVEL": "INFO"}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": cluster_metadata,
         "rules": trigger_controller_rules(broker)},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": cluster_metadata,
         "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": meta.SYSTEM_NAMESPACE}],
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata, "spec": {
            "replicas": 1, "selector": {"matchLabels": labels},
            # never two at once, even during a rollout: the old one commits and stops before the new one reads
            "strategy": {"type": "Recreate"},
            "template": {"metadata": {"labels": labels, "annotations": {
                "prometheus.io/scrape": "true", "prometheus.io/port": "8080", "prometheus.io/path": "/metrics"}},
                "spec": {
                    "serviceAccountName": name,
                    "terminationGracePeriodSeconds": 30,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000,
                                        "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [{
                        "name": "consumers", "image": meta.image(meta.CONSUMERS_IMAGE, version),
                        "imagePullPolicy": "IfNotPresent", "command": ["python3", "-m", "kubeless_consumers", broker],
                        "env": [{"name": "KUBELESS_NAMESPACE",
                                 "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                                *({"name": key, "value": value} for key, value in env.items())],
                        "ports": [{"name": "http-metrics", "containerPort": 8080}],
                        "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 10},
                        "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 2},
                        "resources": {"requests": {"cpu": "20m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
                        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                            "capabilities": {"drop": ["ALL"]}}}]}}}},
    ]


def install_objects(version: str, runtimes: list[dict], triggers: tuple[str, ...] = ()) -> list[dict]:
    """Everything `kubectl kubeless install` creates, in apply order; `triggers` adds those brokers' consumers."""
    ns = meta.SYSTEM_NAMESPACE
    account = meta.CONTROLLER_SERVICE_ACCOUNT
    subject = [{"kind": "ServiceAccount", "name": account, "namespace": ns}]
    return [
        # the server side itself passes Pod Security "restricted", and the namespace holds it to that
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {
            "pod-security.kubernetes.io/enforce": "restricted"}}},
        *(schema.crd(kind) for kind in meta.KINDS),
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
        config_map(version, runtimes),
        controller_deployment(version),
        *deps_cache(version),
        *(obj for broker in meta.EVENT_TRIGGERS if broker in triggers for obj in trigger_controller(version, broker)),
    ]


def render_yaml(objects: list[dict]) -> str:
    import yaml  # noqa: PLC0415 - start-up: every command imports this module (install); only this needs PyYAML

    header = "# Generated by `make manifests` from kubectl_kubeless/manifests.py; do not edit.\n"
    return header + "".join("---\n" + yaml.safe_dump(obj, sort_keys=False) for obj in objects)


if __name__ == "__main__":
    print(render_yaml(install_objects(meta.project_version(), load_catalogue())), end="")
