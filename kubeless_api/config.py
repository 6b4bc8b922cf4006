"""kubeless-config, the server's settings: its keys, defaults and parsing, in one frozen dataclass.

The install manifest writes `KubelessConfig(...).to_data()`; the controller reads `KubelessConfig.from_data(...)` once
per change of the ConfigMap (not at every reconcile) and compares the result by value: a real change requeues every
function, a reformatted one does nothing.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from kubeless_api import catalogue as catalogue_rules

KEY_RUNTIMES = "runtime-images"

# Keys Kubeless's manifests carry that no component here reads: kept, with Kubeless's values, so that tools and
# manifests written for Kubeless find them (enable-build-step: image builds by a Job; service-type: vestigial there).
KUBELESS_ONLY_KEYS = {"enable-build-step": "false", "service-type": "ClusterIP"}


# What an install of a given version decides; every other key is the admin's, and an upgrade keeps its value.
VERSION_KEYS = (KEY_RUNTIMES, "provision-image")


class ConfigError(ValueError):
    """A key of kubeless-config does not parse; whoever reads it keeps its previous settings."""


@dataclass(frozen=True)
class KubelessConfig:
    runtime_images: list[dict] = field(default_factory=list)  # the runtime catalogue
    deployment: dict = field(default_factory=dict)   # a default Deployment merged under every function's own
    provision_image: str = ""                        # the `prepare` and dependency-cache steps' image
    provision_image_secret: str = ""                 # its pull secret, if the image is private
    functions_namespace: str = ""                    # only functions of this namespace; empty: all
    install_env: dict[str, str] = field(default_factory=dict)  # env of install/compile steps (package indexes)
    deps_cache_url: str = ""                         # the dependency cache; empty: every pod installs its own
    # "true": builds of dependencies are shared across namespaces (the cache key leaves the namespace out). Only for
    # namespaces whose authors trust each other: one function's build serves every function with the same key, and
    # the key cannot see what differs between namespaces (a short host name like `pypi` names each namespace's own
    # Service). "false": each namespace builds its own.
    deps_cache_shared: bool = False
    # "true": Function authors are trusted with host namespaces, privileged containers, NodePorts
    # (controller/kubeless_controller/functions/policy.py says what is refused otherwise)
    allow_privileged_functions: bool = False

    @classmethod
    def from_data(cls, data: dict[str, str] | None) -> KubelessConfig:
        """From a ConfigMap's `data`; a missing key or an empty value takes the default."""
        data = data or {}
        try:
            runtimes = catalogue_rules.parse(data.get(KEY_RUNTIMES) or "[]")
        except catalogue_rules.CatalogueError as error:
            raise ConfigError(str(error)) from None
        install_env = _json_object(data, "install-env")
        if not all(isinstance(value, str) for value in install_env.values()):
            raise ConfigError("install-env must be a JSON object of strings")
        return cls(runtime_images=runtimes, deployment=_json_object(data, "deployment"),
                   provision_image=_text(data, "provision-image"),
                   provision_image_secret=_text(data, "provision-image-secret"),
                   functions_namespace=_text(data, "functions-namespace"), install_env=install_env,
                   deps_cache_url=_text(data, "deps-cache-url").rstrip("/"),
                   deps_cache_shared=_flag(data, "deps-cache-shared"),
                   allow_privileged_functions=_flag(data, "allow-privileged-functions"))

    def to_data(self) -> dict[str, str]:
        """The ConfigMap's `data`, every key present, as an install writes it."""
        return {KEY_RUNTIMES: json.dumps(self.runtime_images, indent=2),
                "deployment": json.dumps(self.deployment),
                "provision-image": self.provision_image,
                "provision-image-secret": self.provision_image_secret,
                "install-env": json.dumps(self.install_env),
                "deps-cache-url": self.deps_cache_url,
                "deps-cache-shared": str(self.deps_cache_shared).lower(),
                "functions-namespace": self.functions_namespace,
                "allow-privileged-functions": str(self.allow_privileged_functions).lower(),
                **KUBELESS_ONLY_KEYS}


def _text(data: dict[str, str], key: str) -> str:
    return (data.get(key) or "").strip()


def _flag(data: dict[str, str], key: str) -> bool:
    value = _text(data, key).lower() or "false"
    if value not in ("true", "false"):
        raise ConfigError(f'{key} must be "true" or "false", not {value!r}')
    return value == "true"


def _json_object(data: dict[str, str], key: str) -> dict:
    try:
        value = json.loads(data.get(key) or "{}")
    except ValueError as error:
        raise ConfigError(f"{key} is not JSON: {error}") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{key} must be a JSON object")
    return value


def upgraded(existing: dict[str, str] | None, fresh: dict[str, str]) -> dict[str, str]:
    """The data an install writes over a ConfigMap that is already there: the new version's own keys, and the
    admin's value of every other key (install-env, deployment, functions-namespace, ...)."""
    kept = {key: value for key, value in (existing or {}).items() if key not in VERSION_KEYS}
    return {**fresh, **kept}
