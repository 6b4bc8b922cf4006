"""`kubectl kubeless function call`: one request to a function through the API server's service proxy.

The request carries the event the runtime contract names (kubeless_api.contract): an id, a time, the CLI's event
namespace and, with a body, its type. The function's answer goes to stdout undecoded; a failure exits 1 with its
body on stderr, and the API server's own refusal (no endpoints yet) is told apart from the function's answer.

When the function's process dies during the call (OOM-killed at its memory limit, `os._exit`), the API server only
says its connection broke (`error trying to reach service: EOF`). Then the function's pods are read, after the
failure only so a call that works costs no request more, and a container that stopped since the call began is named
with its reason: `function oom was OOMKilled (limit 128Mi) while handling the call`.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import time
from datetime import datetime, timezone

from kubeless_api import contract, meta, resources
from kubectl_kubeless import completion, flags, objects
from kubectl_kubeless.command import Factory, add_command
from kubectl_kubeless.errors import UserError
from kubectl_kubeless.kube import ApiError

# What the API server's proxy says when the connection to the function broke mid-call (not when it could not dial).
BROKEN_CONNECTION = ("eof", "connection reset", "broken pipe", "server closed")
STOP_WAIT = 5.0  # seconds to wait for the kubelet to report the stop (its pod status lags a second or two)
STOP_POLL = 0.5


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


def connection_broke(status: int, refusal: dict | None, body: bytes) -> bool:
    """The proxy's 502/503 saying the function's connection broke: EOF, reset, broken pipe."""
    if status not in (502, 503):
        return False
    text = (refusal or {}).get("message") or body.decode("utf-8", errors="replace")
    return any(signature in text.lower() for signature in BROKEN_CONNECTION)


def stopped_during_call(factory: Factory, namespace: str, name: str, started: float,
                        wait: float | None = None) -> dict | None:
    """The function's container that stopped since `started` (objects.recent_stop), reading its pods until the
    kubelet reports it or `wait` seconds have passed; None also when the pods cannot be listed."""
    since = datetime.fromtimestamp(started, timezone.utc)
    deadline = time.monotonic() + (STOP_WAIT if wait is None else wait)
    while True:
        try:
            pods = factory.client().get(resources.path("v1", "Pod", namespace),
                                        labelSelector=f"{meta.LABEL_FUNCTION}={name}").get("items") or []
        except ApiError:
            return None
        stop = objects.recent_stop(pods, since)
        if stop is not None or time.monotonic() >= deadline:
            return stop
        time.sleep(STOP_POLL)


def stop_message(name: str, namespace: str, stop: dict) -> str:
    """`function oom was OOMKilled (limit 128Mi) while handling the call; ...` with what to do about it."""
    if stop["reason"] == "OOMKilled":
        limit = f" (limit {stop['memory_limit']})" if stop["memory_limit"] else ""
        return (f"function {name} was OOMKilled{limit} while handling the call; give it more memory with "
                f"`kubectl kubeless function update {name} -n {namespace} --memory QUANTITY`")
    code = stop["exit_code"]
    signal = f", killed by signal {code - 128}" if isinstance(code, int) and code > 128 else ""
    previous = "" if stop["current"] else " --previous"
    return (f"function {name} exited with code {code}{signal} while handling the call (its last output: "
            f"kubectl logs -n {namespace} {stop['pod']} -c {stop['container']}{previous})")


def call(args: argparse.Namespace, factory: Factory) -> int:
    name = flags.dns_label(args.name, "function name")
    namespace = factory.namespace()
    service = objects.get_or_none(factory, resources.path("v1", "Service", namespace, name))
    if service is None:
        raise UserError(f"function \"{name}\" has no service in namespace \"{namespace}\": is it deployed? "
                        f"(kubectl kubeless function ls {name} -n {namespace})")
    data = args.data or None
    started = time.time()
    response = factory.client().request("POST" if data else "GET", proxy_path(namespace, name, service),
                                        body=data.encode() if data else None, headers=event_headers(data))
    body = response.read()
    if 200 <= response.status < 300:
        factory.write_bytes(body + b"\n")
        return 0
    refusal = objects.api_status(body)
    if connection_broke(response.status, refusal, body):
        stop = stopped_during_call(factory, namespace, name, started)
        if stop is not None:
            raise UserError(stop_message(name, namespace, stop))
    if refusal:
        raise UserError(f"{refusal.get('message') or response.reason} (is function {name} ready? "
                        f"kubectl kubeless function ls {name} -n {namespace})")
    if body:
        factory.err.write(body.decode("utf-8", errors="replace").rstrip("\n") + "\n")
    if response.status == contract.STATUS_TIMEOUT:
        raise UserError(f"Request timeout exceeded: function {name} ran longer than its timeout (HTTP 408); give "
                        f"it more with `kubectl kubeless function update {name} -n {namespace} --timeout SECONDS`")
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
