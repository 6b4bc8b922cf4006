"""The server's configuration as the plugin needs it: where the kubeless-config ConfigMap is, and which runtimes it
offers. Also `kubectl kubeless get-server-config`.

The location follows Kubeless (highest priority first): the environment variables KUBELESS_NAMESPACE and
KUBELESS_CONFIG; the annotations `kubeless.io/namespace` and `kubeless.io/config` on the functions CRD (an install in
another namespace says so there); the defaults kubeless/kubeless-config.
"""
from __future__ import annotations

import argparse

from kubeless_api import catalogue, config, meta, resources
from kubectl_kubeless.command import Factory, add_command
from kubectl_kubeless.errors import UserError
from kubectl_kubeless.kube import ApiError, Client

CRD_PATH = resources.path("apiextensions.k8s.io/v1", "CustomResourceDefinition", name=f"{meta.FUNCTIONS}.{meta.GROUP}")


def config_location(client: Client, environ: dict[str, str]) -> tuple[str, str]:
    namespace, name = environ.get("KUBELESS_NAMESPACE"), environ.get("KUBELESS_CONFIG")
    if not (namespace and name):
        try:
            annotations = meta.dig(client.get(CRD_PATH), "metadata", "annotations", default={})
        except ApiError:  # not allowed to read CRDs, or not installed: the defaults say where to look
            annotations = {}
        namespace = namespace or annotations.get(meta.ANNOTATION_NAMESPACE)
        name = name or annotations.get(meta.ANNOTATION_CONFIG)
    return namespace or meta.SYSTEM_NAMESPACE, name or meta.CONFIG_MAP


def read_runtimes(client: Client, environ: dict[str, str]) -> tuple[str, list[str]]:
    """(`namespace/name` of the ConfigMap, its runtime ids); ApiError when it cannot be read."""
    namespace, name = config_location(client, environ)
    location = f"{namespace}/{name}"
    text = meta.dig(client.get(resources.path("v1", "ConfigMap", namespace, name)), "data", config.KEY_RUNTIMES)
    if not text:
        raise ApiError(0, "Invalid", f"ConfigMap {location} has no {config.KEY_RUNTIMES} key")
    try:
        return location, catalogue.runtime_ids(catalogue.parse(text))
    except (catalogue.CatalogueError, KeyError, TypeError) as error:
        raise ApiError(0, "Invalid", f"the {config.KEY_RUNTIMES} of ConfigMap {location} cannot be read: "
                                     f"{error}") from None


class UnknownRuntime(UserError):
    """The server does not offer the runtime asked for."""


def check_runtime(factory: Factory, runtime: str) -> None:
    """Refuse a runtime the server does not offer; like Kubeless, only warn when the list cannot be read."""
    try:
        location, ids = read_runtimes(factory.client(), factory.environ)
    except ApiError as error:
        factory.warn(f"cannot read the runtime list ({error}); the runtime check is disabled")
        return
    if runtime not in ids:
        raise UnknownRuntime(f"invalid runtime: {runtime}. Supported runtimes are: {', '.join(ids) or '(none)'} "
                             f"(from ConfigMap {location})")


def get_server_config(args: argparse.Namespace, factory: Factory) -> int:
    try:
        location, ids = read_runtimes(factory.client(), factory.environ)
    except ApiError as error:
        raise UserError(f"cannot read the server configuration: {error}") from None
    factory.write(f"Current Server Config: ConfigMap {location}\nSupported Runtimes are: {', '.join(ids)}\n")
    return 0


def register(commands: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    add_command(commands, "get-server-config", parents=parents, usage="[flags]",
                summary="print the runtimes the server supports",
                description="Print where the Kubeless configuration is and the runtimes it supports.",
                examples="  kubectl kubeless get-server-config\n"
                         "  # a configuration in another namespace than kubeless\n"
                         "  KUBELESS_NAMESPACE=faas kubectl kubeless get-server-config\n",
                run=get_server_config)
