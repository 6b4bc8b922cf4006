"""`kubectl kubeless trigger http ...`: HTTPTriggers, routes from outside the cluster to a function.

The controller makes an Ingress of the gateway's class (nginx, traefik, kong) or, with `--gateway gateway-api`, a
Gateway API HTTPRoute attached to a Gateway (`--gateway-ref`). The flags are Kubeless's, and so are its rules:
nginx's default host `<function>.<API server host>.nip.io`, a host required for the other ingress gateways, TLS-acme
and a TLS secret excluding each other, no basic auth with Kong ("not yet supported"). What is new is gateway-api,
whose route needs no host (an HTTPRoute without hostnames answers any), and which takes neither TLS (the Gateway's
listener holds it), basic auth nor CORS: the controller would refuse those, so the plugin refuses them first.
"""
from __future__ import annotations

import re
from datetime import datetime
from functools import partial
from typing import Callable
from urllib.parse import urlsplit

from kubeless_api import meta, schema
from kubectl_kubeless import flags
from kubectl_kubeless.errors import UserError
from kubectl_kubeless.trigger.spec import (NONE, SpecFlag, TriggerKind, function_column, function_flag, identity,
                                           ready_column, subdomain)

INGRESS_GATEWAYS = [gateway for gateway in schema.GATEWAYS if gateway != schema.GATEWAY_API]
NGINX = "nginx"  # the gateway with a default host: Kubeless assumed it listens on port 80 of the API server's address
PATH_CHARACTERS = r"[A-Za-z0-9\-._~!$&'()*+,;=:@%/]*"  # RFC 3986's, in a path (compiled on first use)
# What a gateway cannot serve, and why: the controller would mark the trigger InvalidSpec.
UNSUPPORTED = {
    ("kong", schema.BASIC_AUTH_SECRET): "not yet supported (Kong's basic auth is a KongPlugin on the route, made by "
                                        "hand)",
    (schema.GATEWAY_API, schema.BASIC_AUTH_SECRET): "not supported: an HTTPRoute has no basic auth (use the "
                                                    "Gateway's own filters)",
    (schema.GATEWAY_API, schema.TLS_SECRET): "not supported: TLS belongs to the Gateway's listener",
    (schema.GATEWAY_API, "tls"): "not supported: TLS belongs to the Gateway's listener",
    (schema.GATEWAY_API, schema.CORS_ENABLE): "not supported: an HTTPRoute gets no CORS filter",
}


# --- the flags' values ------------------------------------------------------------------------------------------

def route_path(value: str) -> str:
    """--path as stored: without the leading '/' (Kubeless's form; the controller puts it back)."""
    path = value.lstrip("/")
    segments = path.split("/")
    if not re.fullmatch(PATH_CHARACTERS, path) or re.search(r"%(?![0-9A-Fa-f]{2})", path) \
            or any(segment in (".", "..") for segment in segments) or "" in segments[:-1]:
        raise UserError(f"invalid --path {value!r}: a URL path such as /hello, without empty, '.' or '..' segments, "
                        "and with spaces and other special characters percent-encoded (%20)")
    return path


def hostname(value: str, what: str = "--hostname") -> str:
    """A host an Ingress rule or an HTTPRoute takes: a DNS name, '*.' first for a wildcard, never an IP address."""
    name = value[2:] if value.startswith("*.") else value
    if len(value) > 253 or not flags.DNS1123_SUBDOMAIN.fullmatch(name) or re.fullmatch(r"[0-9.]+", name):
        raise UserError(f"invalid {what} {value!r}: a DNS name such as hello.example.com (lowercase letters, digits, "
                        "'-' and '.'; '*.' first for a wildcard), not an IP address")
    return value


def gateway(value: str) -> str:
    if value not in schema.GATEWAYS:
        raise UserError(f"Unsupported gateway {value}: choose {', '.join(schema.GATEWAYS)}")
    return value


def gateway_ref(value: str) -> str:
    """[NAMESPACE/]NAME of a Gateway; a bare name is in the trigger's namespace."""
    namespace, slash, name = value.rpartition("/")
    if slash:
        if len(namespace) > 63 or not flags.DNS1123_LABEL.fullmatch(namespace):
            raise UserError(f"invalid --gateway-ref {value!r}: [NAMESPACE/]NAME of a Gateway, e.g. "
                            f"{schema.DEFAULT_GATEWAY_REF}; {namespace!r} is not a namespace")
    subdomain(name, "--gateway-ref name")
    return value


def nip_io_host(function: str, api_server: Callable[[], str]) -> str:
    """nginx's default host, Kubeless's: `<function>.<API server host>.nip.io`, which nip.io resolves to the API
    server's IP (it answers any `<name>.<IP>.nip.io` with that IP)."""
    try:
        server = api_server()
    except UserError as error:
        raise UserError(f"{error}; the nginx gateway's default host (<function>.<API server host>.nip.io) comes from "
                        "the kubeconfig's server, or give --hostname") from None
    host = f"{function}.{urlsplit(server).hostname or ''}.nip.io"
    try:
        return hostname(host, "default host")
    except UserError:
        raise UserError(f"the API server {server} gives no usable default host ({host}); give --hostname") from None


# --- the kind ---------------------------------------------------------------------------------------------------

CREATE_EXAMPLES = """\
  # nginx: hello.<API server host>.nip.io/ calls the function hello
  kubectl kubeless trigger http create hello --function-name hello

  # a host and a path of your own, HTTPS with an existing certificate
  kubectl kubeless trigger http create hello --function-name hello --hostname hello.example.com --path /hello \\
      --tls-secret hello-cert

  # a Gateway API HTTPRoute on the Gateway default/kubeless, any host
  kubectl kubeless trigger http create hello --function-name hello --gateway gateway-api --path /hello

  # only print the object
  kubectl kubeless trigger http create hello --function-name hello --dryrun -o json
"""
UPDATE_EXAMPLES = """\
  # another path; nothing else changes
  kubectl kubeless trigger http update hello --path /v2/hello
  # no more CORS, and another Gateway
  kubectl kubeless trigger http update hello --no-cors-enable --gateway-ref infra/public
"""


class HTTPTriggerKind(TriggerKind):
    kind = "HTTPTrigger"
    noun = "http"
    title = "HTTP trigger"
    a_title = "an HTTP trigger"
    about = ("Route HTTP requests to a function: the controller makes an Ingress of the gateway's class, or a "
             "Gateway API HTTPRoute.")
    spec_flags = (
        function_flag("--function-name", "the function the route calls, in the same namespace"),
        SpecFlag(("--path",), "path", "the URL path the route answers, and every path below it (default /)",
                 route_path),
        SpecFlag(("--hostname",), schema.HOST_NAME,
                 "the host the route answers; nginx's default: <function>.<API server host>.nip.io; "
                 "gateway-api's: any host", hostname),
        SpecFlag(("--gateway",), schema.GATEWAY,
                 f"what serves the route: the class of an ingress controller ({', '.join(INGRESS_GATEWAYS)}), "
                 f"or {schema.GATEWAY_API} for an HTTPRoute", gateway, metavar="|".join(schema.GATEWAYS),
                 default=schema.DEFAULT_GATEWAY),
        SpecFlag(("--gateway-ref",), schema.GATEWAY_REF,
                 f"with --gateway {schema.GATEWAY_API}: the Gateway, [NAMESPACE/]NAME (default "
                 f"{schema.DEFAULT_GATEWAY_REF}; a bare name is in the trigger's namespace)", gateway_ref,
                 metavar="[NAMESPACE/]NAME"),
        SpecFlag(("--basic-auth-secret",), schema.BASIC_AUTH_SECRET,
                 "an existing htpasswd Secret that guards the route (nginx, traefik)",
                 partial(subdomain, what="--basic-auth-secret"), metavar="SECRET"),
        SpecFlag(("--tls-secret",), schema.TLS_SECRET,
                 "an existing TLS Secret (certificate and key): serve HTTPS with it",
                 partial(subdomain, what="--tls-secret"), metavar="SECRET"),
        SpecFlag(("--enableTLSAcme", "--enable-tls-acme"), "tls",
                 "serve HTTPS with an ACME certificate: the Ingress asks cert-manager for one (annotation "
                 "kubernetes.io/tls-acme), kept in the secret <trigger>-tls", bool, boolean=True),
        SpecFlag(("--cors-enable",), schema.CORS_ENABLE, "let browsers call it from other origins: the ingress "
                 "controller's CORS annotation", bool, boolean=True),
    )
    headers = ("NAME", "NAMESPACE", "FUNCTION", "HOST", "PATH", "GATEWAY", "ADDRESS", "READY")
    examples = {"noun": "  kubectl kubeless trigger http create hello --function-name hello\n",
                "create": CREATE_EXAMPLES, "update": UPDATE_EXAMPLES}
    sample_name = "hello"

    def rules(self, spec: dict, given: dict, api_server: Callable[[], str] | None) -> None:
        """The gateway's Gateway, what excludes what, then the host (the module's docstring says which rules)."""
        gateway_name = spec.get(schema.GATEWAY) or schema.DEFAULT_GATEWAY
        if gateway_name == schema.GATEWAY_API:
            spec.setdefault(schema.GATEWAY_REF, schema.DEFAULT_GATEWAY_REF)  # written out: the object says which
        elif spec.get(schema.GATEWAY_REF):
            if given.get(schema.GATEWAY_REF):
                raise UserError(f"--gateway-ref only goes with --gateway {schema.GATEWAY_API}; this trigger's "
                                f"gateway is {gateway_name}")
            del spec[schema.GATEWAY_REF]  # left by the gateway-api the trigger had: nothing to attach to now
        if spec.get("tls") and spec.get(schema.TLS_SECRET):
            raise UserError("Cannot specify both --enableTLSAcme and --tls-secret: an ACME certificate or an existing "
                            "one (an update removes the other with --no-enableTLSAcme or --tls-secret '')")
        for field, value in spec.items():
            why = UNSUPPORTED.get((gateway_name, field))
            if why and value:
                raise UserError(f"{self.flag(field)} with --gateway {gateway_name} is {why}")
        if not spec.get(schema.HOST_NAME):
            if gateway_name == NGINX:
                spec[schema.HOST_NAME] = nip_io_host(spec[schema.FUNCTION_NAME], api_server)
            elif gateway_name != schema.GATEWAY_API:
                raise UserError(f"The --hostname flag is required with --gateway {gateway_name} (only nginx has a "
                                f"default, and {schema.GATEWAY_API} matches any host)")

    def row(self, trigger: dict, now: datetime) -> list[str]:
        spec = trigger.get("spec") or {}
        return [*identity(trigger), function_column(trigger), spec.get(schema.HOST_NAME) or "*",
                "/" + (spec.get("path") or "").lstrip("/"), spec.get(schema.GATEWAY) or schema.DEFAULT_GATEWAY,
                meta.dig(trigger, "status", "address") or NONE, ready_column(trigger)]


HTTP = HTTPTriggerKind()
