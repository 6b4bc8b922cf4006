"""The consumers' environment, with Kubeless's variable names where Kubeless had them."""
from __future__ import annotations

import os
from dataclasses import dataclass

from kubeless_api import brokers
from kubeless_consumers.delivery import Backoff, parse_duration

# {name}, {namespace} and {port}: where a function answers. Host tests point it at a local server.
FUNCTION_URL = "http://{name}.{namespace}.svc.cluster.local:{port}"
BACKOFF_FIRST = 0.1
BACKOFF_CAP = 5.0  # without BACKOFF_INTERVAL: Kubeless had none, which made a failing function spin


def _flag(environ, name: str) -> bool:
    return (environ.get(name) or "").strip().lower() in ("1", "true", "yes")


@dataclass(frozen=True)
class Settings:
    kafka_brokers: tuple[str, ...] = (brokers.KAFKA_BROKERS,)
    kafka_tls: bool = False
    kafka_cacerts: str = ""
    kafka_cert: str = ""
    kafka_key: str = ""
    kafka_insecure: bool = False
    kafka_sasl: bool = False
    kafka_username: str = ""
    kafka_password: str = ""
    nats_url: str = brokers.NATS_URL
    backoff: Backoff = Backoff(BACKOFF_FIRST, BACKOFF_CAP)
    function_url: str = FUNCTION_URL
    port: int = 8080
    status_interval: float = 5.0

    @classmethod
    def from_env(cls, environ=os.environ) -> Settings:
        cap = parse_duration(environ["BACKOFF_INTERVAL"]) if environ.get("BACKOFF_INTERVAL") else BACKOFF_CAP
        return cls(
            kafka_brokers=tuple(b.strip() for b in (environ.get("KAFKA_BROKERS") or brokers.KAFKA_BROKERS).split(",")
                                if b.strip()),
            kafka_tls=_flag(environ, "KAFKA_ENABLE_TLS"), kafka_cacerts=environ.get("KAFKA_CACERTS", ""),
            kafka_cert=environ.get("KAFKA_CERT", ""), kafka_key=environ.get("KAFKA_KEY", ""),
            kafka_insecure=_flag(environ, "KAFKA_INSECURE"), kafka_sasl=_flag(environ, "KAFKA_ENABLE_SASL"),
            kafka_username=environ.get("KAFKA_USERNAME", ""), kafka_password=environ.get("KAFKA_PASSWORD", ""),
            nats_url=environ.get("NATS_URL") or brokers.NATS_URL,
            backoff=Backoff(min(BACKOFF_FIRST, cap), cap),
            function_url=environ.get("KUBELESS_FUNCTION_URL") or FUNCTION_URL,
            port=int(environ.get("KUBELESS_CONSUMERS_PORT") or 8080),
            status_interval=float(environ.get("KUBELESS_STATUS_INTERVAL") or 5.0))
