"""The controller's settings: the process environment, and kubeless-config as it changes."""
from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field

from kubeless_api import meta, resources
from kubeless_api.config import ConfigError, KubelessConfig
from kubeless_controller.client import Client
from kubeless_controller.informer import Informer

log = logging.getLogger(__name__)

# Each worker has at most one request in flight, on its own keep-alive connection: the workers' count is the
# controller's concurrency on the API server, and a slower server slows the controller down with it. 16 after
# bench/controller_scale.py on a 2-core machine, where the API server's CPU is the bottleneck: 1,000 new functions
# had their status in 27-39 s with 16 workers, 78 s with 4.
WORKERS = 16
# A client-side token bucket, off by default (0): the workers bound the load, and the API server's Priority and
# Fairness shares it fairly with the cluster's other clients. Set KUBELESS_API_QPS (and _BURST) to cap the rate.
API_QPS = 0.0
API_BURST = 0


@dataclass(frozen=True)
class Environment:
    """The process environment: kubeless-config's place, this pod's name, the workers, the port, the rate cap."""
    namespace: str = meta.SYSTEM_NAMESPACE
    config_map: str = meta.CONFIG_MAP
    pod_name: str = field(default_factory=socket.gethostname)
    workers: int = WORKERS
    port: int = 8081
    api_qps: float = API_QPS
    api_burst: int = API_BURST

    @classmethod
    def from_env(cls, environ=os.environ) -> Environment:
        return cls(namespace=environ.get("KUBELESS_NAMESPACE") or meta.SYSTEM_NAMESPACE,
                   config_map=environ.get("KUBELESS_CONFIG") or meta.CONFIG_MAP,
                   pod_name=environ.get("POD_NAME") or socket.gethostname(),
                   workers=int(environ.get("KUBELESS_WORKERS") or WORKERS),
                   port=int(environ.get("KUBELESS_CONTROLLER_PORT") or 8081),
                   api_qps=float(environ.get("KUBELESS_API_QPS") or API_QPS),
                   api_burst=int(environ.get("KUBELESS_API_BURST") or API_BURST))


class SettingsWatch:
    """Watches kubeless-config and hands each real change to the listeners; a broken or deleted ConfigMap keeps
    the last settings in force (a typo in the ConfigMap must not stop every function's reconciliation)."""

    def __init__(self, client: Client, environment: Environment,
                 listeners: list[Callable[[KubelessConfig], None]] | None = None):
        self.environment = environment
        self.current = KubelessConfig()
        self.listeners = listeners or []
        self.informer = Informer(client, "config", resources.path("v1", "ConfigMap", environment.namespace),
                                 self.on_event, field_selector=f"metadata.name={environment.config_map}")

    def start(self, timeout: float) -> KubelessConfig:
        """Read kubeless-config before anything else (the functions' namespace depends on it), then follow it."""
        self.informer.start()
        if not self.informer.synced.wait(timeout):
            log.warning("%s/%s not read after %.0f s; starting with defaults", self.environment.namespace,
                        self.environment.config_map, timeout)
        return self.current

    def on_event(self, event_type: str, obj: dict) -> None:
        name = self.environment.config_map
        if event_type == "DELETED":
            log.warning("%s was deleted; keeping the last settings", name)
            return
        try:
            settings = KubelessConfig.from_data(obj.get("data"))
        except ConfigError as error:
            log.error("%s: %s; keeping the last settings", name, error)
            return
        if settings == self.current:
            return
        self.current = settings
        log.info("settings from %s: %d runtimes, provision image %s, functions namespace %s", name,
                 len(settings.runtime_images), settings.provision_image or "(none)",
                 settings.functions_namespace or "(all)")
        for listener in self.listeners:
            listener(settings)
