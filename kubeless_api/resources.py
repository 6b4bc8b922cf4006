"""Which REST resource holds each kind this project reads or writes, and the path of an object.

One table for every component: the plugin's install and uninstall, the controller's informers and applies, the
tools. A kind missing here is a KeyError at the first use, not a guessed plural.
"""
from __future__ import annotations

from urllib.parse import quote

from kubeless_api.meta import API_VERSION, KINDS

# (apiVersion, kind) -> plural
RESOURCES = {
    ("v1", "Namespace"): "namespaces",
    ("v1", "ConfigMap"): "configmaps",
    ("v1", "Secret"): "secrets",
    ("v1", "Service"): "services",
    ("v1", "ServiceAccount"): "serviceaccounts",
    ("v1", "Pod"): "pods",
    ("v1", "Event"): "events",
    ("apps/v1", "Deployment"): "deployments",
    ("autoscaling/v2", "HorizontalPodAutoscaler"): "horizontalpodautoscalers",
    ("batch/v1", "CronJob"): "cronjobs",
    ("batch/v1", "Job"): "jobs",
    ("networking.k8s.io/v1", "Ingress"): "ingresses",
    ("networking.k8s.io/v1", "IngressClass"): "ingressclasses",
    ("gateway.networking.k8s.io/v1", "Gateway"): "gateways",
    ("gateway.networking.k8s.io/v1", "HTTPRoute"): "httproutes",
    ("traefik.io/v1alpha1", "Middleware"): "middlewares",
    ("coordination.k8s.io/v1", "Lease"): "leases",
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition"): "customresourcedefinitions",
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): "clusterroles",
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): "clusterrolebindings",
    ("rbac.authorization.k8s.io/v1", "Role"): "roles",
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): "rolebindings",
    **{(API_VERSION, kind): plural for kind, plural in KINDS.items()},
}
CLUSTER_SCOPED = frozenset({"Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding",
                            "IngressClass"})


def path(api_version: str, kind: str, namespace: str | None = None, name: str | None = None,
         subresource: str | None = None) -> str:
    """The REST path of a collection (no name) or an object, in one namespace or (namespace None) in all."""
    parts = [f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"]
    if namespace:
        parts.append(f"namespaces/{quote(namespace)}")
    parts.append(RESOURCES[(api_version, kind)])
    if name:
        parts.append(quote(name))
    if subresource:
        parts.append(subresource)
    return "/".join(parts)


def object_path(obj: dict, subresource: str | None = None) -> str:
    meta = obj["metadata"]
    return path(obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"], subresource)


def display_name(obj: dict) -> str:
    """kubectl's way: `deployment.apps/kubeless-controller-manager`, `namespace/kubeless`."""
    group = obj["apiVersion"].rpartition("/")[0]
    return f"{obj['kind'].lower()}{'.' + group if group else ''}/{obj['metadata']['name']}"
