"""The controller's settings: the kubeless-config ConfigMap, parsed, and the process environment."""
from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass, field

from kubectl_kubeless import api


class ConfigError(ValueError):
    """A key of kubeless-config does not parse; the previous settings stay in force."""


@dataclass(frozen=True)
class Settings:
    """What kubeless-config says. Frozen and compared by value: a change requeues every function."""
    catalogue: tuple = ()          # the runtime-images list, as JSON text-equivalent tuples (see catalogue_list)
    deployment: str = "{}"         # the default Deployment, canonical JSON
    provision_image: str = ""
    functions_namespace: str = ""
    install_env: str = "{}"        # env for install/compile steps (package index locations), canonical JSON
    deps_cache_url: str = ""       # the dependency cache service; empty: every pod installs its own

    @classmethod
    def from_config_map(cls, config_map: dict | None) -> Settings:
        data = (config_map or {}).get("data") or {}
        try:
            catalogue = json.loads(data.get(api.CONFIG_RUNTIMES_KEY) or "[]")
        except ValueError as error:
            raise ConfigError(f"{api.CONFIG_RUNTIMES_KEY} is not JSON: {error}") from None
        if not isinstance(catalogue, list):
            raise ConfigError(f"{api.CONFIG_RUNTIMES_KEY} must be a JSON list")
        try:
            deployment = json.loads(data.get("deployment") or "{}")
        except ValueError as error:
            raise ConfigError(f"deployment is not JSON: {error}") from None
        if not isinstance(deployment, dict):
            raise ConfigError("deployment must be a JSON object")
        try:
            install_env = json.loads(data.get("install-env") or "{}")
        except ValueError as error:
            raise ConfigError(f"install-env is not JSON: {error}") from None
        if not isinstance(install_env, dict) or not all(isinstance(v, str) for v in install_env.values()):
            raise ConfigError("install-env must be a JSON object of strings")
        return cls(catalogue=tuple(json.dumps(entry, sort_keys=True) for entry in catalogue),
                   deployment=json.dumps(deployment, sort_keys=True),
                   provision_image=(data.get("provision-image") or "").strip(),
                   functions_namespace=(data.get("functions-namespace") or "").strip(),
                   install_env=json.dumps(install_env, sort_keys=True),
                   deps_cache_url=(data.get("deps-cache-url") or "").strip().rstrip("/"))

    def catalogue_list(self) -> list[dict]:
        return [json.loads(entry) for entry in self.catalogue]

    def render_config(self) -> dict:
        """The `config` argument of render.children."""
        return {"deployment": json.loads(self.deployment), "provision-image": self.provision_image,
                "install-env": json.loads(self.install_env), "deps-cache-url": self.deps_cache_url}


@dataclass(frozen=True)
class Environment:
    namespace: str = api.SYSTEM_NAMESPACE
    config_map: str = api.CONFIG_MAP
    pod_name: str = field(default_factory=socket.gethostname)
    workers: int = 4
    port: int = 8081

    @classmethod
    def from_env(cls, environ=os.environ) -> Environment:
        return cls(namespace=environ.get("KUBELESS_NAMESPACE") or api.SYSTEM_NAMESPACE,
                   config_map=environ.get("KUBELESS_CONFIG") or api.CONFIG_MAP,
                   pod_name=environ.get("POD_NAME") or socket.gethostname(),
                   workers=int(environ.get("KUBELESS_WORKERS") or 4),
                   port=int(environ.get("KUBELESS_CONTROLLER_PORT") or 8081))
