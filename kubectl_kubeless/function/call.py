"""`kubectl kubeless function call`: one request to a function through the API server's service proxy.

The request carries the event the runtime contract names (kubeless_api.contract): an id, a time, the CLI's event
namespace and, with a body, its type. The function's answer goes to stdout undecoded; a failure exits 1 with its
body on stderr, and the API server's own refusal (no endpoints yet) is told apart from the function's answer.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
from datetime import datetime, timezone

from kubeless_api import contract, meta, resources
from kubectl_kubeless import completion, flags, objects
from kubectl_kubeless.command import Factory, add_command
from kubectl_kubeless.errors import UserError


def call_content_type(data: str) -> str:
    """Kubeless' rule: a JSON object is sent as application/json, anything else as a form."""
    try:
        return "application/json" if isinstance(json.loads(data), dict) else "application/x-www-form-urlencoded"
    except ValueError:
        return "application/x-www-form-urlencoded"


def event_headers(data: str | None, *, now: datetime | None = None, event_id: str | None = None) -> dict[str, str]:
    headers = {contract.HEADER_EVENT_ID: event_id or base64.urlsafe_b64encode(os.urandom(11)).decode().rstrip("="),
               contract.HEADER_EVENT_TIME: meta.rfc3339(now or datetime.now(timezone.utc)),
               contract.HEADER_EVENT_NAMESPACE: contract.EVENT_NAMESPACE_CLI}
    if data:
        headers["Content-Type"] = headers[contract.HEADER_EVENT_TYPE] = call_content_type(data)
    return headers


def proxy_path(namespace: str, name: str, service: dict) -> str:
    """The API server's service proxy for the function's first port: by name (http-function-port), else number.
    The trailing slash matters: without it the API server redirects, and a redirected POST loses its body."""
    ports = meta.dig(service, "spec", "ports") or [{}]
    port = ports[0].get("name") or str(ports[0].get("port", meta.FUNCTION_PORT))
    return resources.path("v1", "Service", namespace) + f"/{name}:{port}/proxy/"


def call(args: argparse.Namespace, factory: Factory) -> int:
    name = flags.dns_label(args.name, "function name")
    namespace = factory.namespace()
    service = objects.get_or_none(factory, resources.path("v1", "Service", namespace, name))
    if service is None:
        raise UserError(f"function \"{name}\" has no service in namespace \"{namespace}\": is it deployed? "
                        f"(kubectl kubeless function ls {name} -n {namespace})")
    data = args.data or None
    response = factory.client().request("POST" if data else "GET", proxy_path(namespace, name, service),
                                        body=data.encode() if data else None, headers=event_headers(data))
    body = response.read()
    if 200 <= response.status < 300:
        factory.write_bytes(body + b"\n")
        return 0
    refusal = objects.api_status(body)
    if refusal:
        raise UserError(f"{refusal.get('message') or response.reason} (is function {name} ready? "
                        f"kubectl kubeless function ls {name} -n {namespace})")
    if body:
        factory.err.write(body.decode("utf-8", errors="replace").rstrip("\n") + "\n")
    if response.status == contract.STATUS_TIMEOUT:
        raise UserError(f"function {name} timed out (HTTP 408): it ran longer than its timeout; give it more with "
                        f"`kubectl kubeless function update {name} -n {namespace} --timeout SECONDS`")
    raise UserError(f"function {name} answered {response.status} {response.reason}")


def register(verbs: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    parser = add_command(verbs, "call", parents=parents, usage="NAME [--data DATA] [flags]",
                         summary="call a function through the API server",
                         description="Call a function through the API server's service proxy: GET without --data, "
                                     "POST with it.",
                         examples="  kubectl kubeless function call hello\n"
                                  "  kubectl kubeless function call hello --data '{\"name\": \"world\"}'\n",
                         run=call, complete=completion.FUNCTIONS)
    parser.add_argument("name", metavar="NAME")
    parser.add_argument("-d", "--data", help="the request body (a JSON object is sent as application/json)")
