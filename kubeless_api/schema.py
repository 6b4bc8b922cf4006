"""The CRDs: each kind's schema, printer columns and spec field names.

The field names are Kubeless's (hyphenated, as its CLI wrote them); everything that writes or reads a spec takes
them from here. The plugin checks a handler with the schema's own pattern, so it and the API server never disagree.
"""
from __future__ import annotations

from kubeless_api.meta import GROUP, KINDS, VERSION

# Spec fields whose names are easy to mistype
CONTENT_TYPE = "function-content-type"
FUNCTION_NAME = "function-name"
HOST_NAME = "host-name"
TLS_SECRET = "tls-secret"
BASIC_AUTH_SECRET = "basic-auth-secret"
CORS_ENABLE = "cors-enable"
GATEWAY = "gateway"
GATEWAY_REF = "gateway-ref"
FUNCTION_SELECTOR = "functionSelector"
MAX_ATTEMPTS = "maxAttempts"
DEAD_LETTER_TOPIC = "deadLetterTopic"
HORIZONTAL_POD_AUTOSCALER = "horizontalPodAutoscaler"
AWS_REGION = "aws-region"
# KinesisTrigger's `secret` names a Secret holding these two keys (Kubeless's names): the CLI and the consumer read it.
AWS_SECRET = "secret"
AWS_ACCESS_KEY_ID = "aws_access_key_id"
AWS_SECRET_ACCESS_KEY = "aws_secret_access_key"


def _string(description: str, **extra) -> dict:
    return {"type": "string", "description": description, **extra}


def _free_object(description: str) -> dict:
    return {"type": "object", "description": description, "x-kubernetes-preserve-unknown-fields": True}


CONDITIONS_SCHEMA = {
    "type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"],
    "items": {"type": "object", "required": ["type", "status"], "properties": {
        "type": {"type": "string"}, "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
        "reason": {"type": "string"}, "message": {"type": "string"},
        "observedGeneration": {"type": "integer", "format": "int64"},
        "lastTransitionTime": {"type": "string", "format": "date-time"}}}}

FUNCTION_SPEC = {
    "type": "object",
    "properties": {
        "handler": _string("<module>.<function>, e.g. hello.handler",
                           pattern=r"^[A-Za-z0-9_-]+\.[A-Za-z_][A-Za-z0-9_]*$"),
        "function": _string("the code: text, base64, or a URL, as function-content-type says"),
        CONTENT_TYPE: _string("text, base64 or url, then optionally +zip or +compressedtar, then +deps",
                                         pattern=r"^((text|base64|url)(\+(zip|compressedtar))?(\+deps)?)?$"),
        "checksum": _string("sha256:<hex> of the code as given", pattern=r"^(sha256:[0-9a-f]{64})?$"),
        "runtime": _string("a runtime id of the catalogue, e.g. python3.11"),
        "timeout": {"description": "seconds a call may take", "x-kubernetes-int-or-string": True,
                    "x-kubernetes-validations": [{
                        "rule": "type(self) == int ? self > 0 : self.matches('^[0-9]*$')",
                        "message": "timeout must be a whole number of seconds"}]},
        "deps": _string("the dependency file's content (requirements.txt, package.json, go.mod, ...)"),
        "deployment": _free_object("a partial apps/v1 Deployment merged into the generated one"),
        "service": _free_object("a partial core/v1 ServiceSpec"),
        HORIZONTAL_POD_AUTOSCALER: _free_object("an autoscaling HorizontalPodAutoscaler for the function"),
    },
}

FUNCTION_STATUS = {
    "type": "object",
    "properties": {
        "observedGeneration": {"type": "integer", "format": "int64"},
        "replicas": {"type": "integer"},
        "readyReplicas": {"type": "integer"},
        "conditions": CONDITIONS_SCHEMA,
        "restarts": {"type": "object", "description": "restarts of the function's containers in its live pods, and "
                                                      "the last stop", "properties": {
            "count": {"type": "integer"},
            "lastReason": {"type": "string", "description": "OOMKilled, Error, ..."},
            "lastExitCode": {"type": "integer"},
            "lastTime": {"type": "string", "format": "date-time"},
            "lastPod": {"type": "string"}}},
    },
}

# Kubeless's gateways name the ingress controller (its IngressClass); gateway-api renders an HTTPRoute instead.
GATEWAYS = ("nginx", "traefik", "kong", "gateway-api")
DEFAULT_GATEWAY = "nginx"
GATEWAY_API = "gateway-api"  # the one of GATEWAYS that is no ingress controller
# The Gateway an HTTPRoute attaches to when the trigger names none: the local cluster makes it, and any cluster can
# have one of this name (or the trigger says which with gateway-ref).
DEFAULT_GATEWAY_REF = "default/kubeless"
# The controller names a CronJobTrigger's CronJob after the trigger, and a CronJob's name takes at most 52
# characters (its Jobs add an 11-character suffix within the 63 of a label value): the longest name a new
# CronJobTrigger can have.
CRON_JOB_TRIGGER_NAME_MAX = 52
# The call's pod gets the payload in one environment variable, and Linux refuses a single environment string over
# 128 KiB (MAX_ARG_STRLEN): a bigger payload would keep every call from starting.
CRON_PAYLOAD_MAX_BYTES = 64 * 1024

TRIGGER_STATUS = {"type": "object", "properties": {"observedGeneration": {"type": "integer", "format": "int64"},
                                                    "conditions": CONDITIONS_SCHEMA}}
# Event triggers (Kafka, NATS, Kinesis): a message is delivered at least once; a failed call is retried with capped
# exponential backoff, and after maxAttempts calls the message goes to the dead-letter topic (subject, stream).
DEFAULT_MAX_ATTEMPTS = 5
DEAD_LETTER_SUFFIX = ".dead-letter"  # the default dead-letter topic: the trigger's topic with this suffix
EVENT_TRIGGER_STATUS = {"type": "object", "properties": {
    **TRIGGER_STATUS["properties"],
    "functions": {"type": "array", "items": {"type": "string"},
                  "description": "the functions the selector matches, each with its own consumer"},
    "delivered": {"type": "integer", "description": "messages a function answered with 2xx"},
    "retried": {"type": "integer", "description": "calls made again after a failure"},
    "deadLettered": {"type": "integer", "description": "messages sent to the dead-letter topic"},
    "lag": {"type": "integer", "description": "messages published and not yet delivered, over all functions"},
    "lastError": _string("the last failed delivery: function, status or error"),
    "lastErrorTime": {"type": "string", "format": "date-time"},
    "checkpoint": _string("Kinesis: the sequence number of the last record handled; the consumer starts after it")}}
HTTP_TRIGGER_STATUS = {"type": "object", "properties": {
    **TRIGGER_STATUS["properties"],
    "address": _string("where the ingress controller serves the route (its status.loadBalancer: an IP or host)"),
    "url": _string("the trigger's URL: scheme, host and path")}}
CRON_TRIGGER_STATUS = {"type": "object", "properties": {
    **TRIGGER_STATUS["properties"],
    "lastScheduleTime": {"type": "string", "format": "date-time"},
    "lastJob": _string("the Job of the last call that finished"),
    "lastResult": _string("Succeeded or Failed: how the last finished call ended", enum=["Succeeded", "Failed"]),
    "lastMessage": _string("why the last call failed, from its Job"),
    "lastCompletionTime": {"type": "string", "format": "date-time"}}}

LABEL_SELECTOR = {"type": "object", "properties": {
    "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}},
    "matchExpressions": {"type": "array", "items": {"type": "object", "required": ["key", "operator"], "properties": {
        "key": {"type": "string"}, "operator": {"type": "string"},
        "values": {"type": "array", "items": {"type": "string"}}}}}}}

DELIVERY = {
    MAX_ATTEMPTS: {"type": "integer", "minimum": 1, "description": f"calls before a message goes to the dead-letter "
                                                                   f"topic (default {DEFAULT_MAX_ATTEMPTS})"},
    DEAD_LETTER_TOPIC: _string(f"where undeliverable messages go (default: the topic + {DEAD_LETTER_SUFFIX})")}

TRIGGER_SPECS = {
    "HTTPTrigger": {"type": "object", "required": [FUNCTION_NAME], "properties": {
        FUNCTION_NAME: _string("the Function in the same namespace"),
        HOST_NAME: _string("the Ingress host"),
        "path": _string("the path, without the leading /"),
        "tls": {"type": "boolean", "description": "ask cert-manager (ACME) for a certificate"},
        TLS_SECRET: _string("an existing TLS secret"),
        BASIC_AUTH_SECRET: _string("an htpasswd secret (nginx, traefik)"),
        GATEWAY: _string("the ingress controller's class, or gateway-api for an HTTPRoute", enum=list(GATEWAYS)),
        GATEWAY_REF: _string(f"with gateway-api: the Gateway, [namespace/]name (default {DEFAULT_GATEWAY_REF})"),
        CORS_ENABLE: {"type": "boolean"}}},
    "CronJobTrigger": {"type": "object", "required": ["schedule", FUNCTION_NAME], "properties": {
        "schedule": _string("a cron schedule, e.g. */5 * * * *"),
        FUNCTION_NAME: _string("the Function in the same namespace"),
        "payload": {"description": "JSON sent as the call's body", "x-kubernetes-preserve-unknown-fields": True}}},
    "KafkaTrigger": {"type": "object", "required": ["topic", FUNCTION_SELECTOR], "properties": {
        "topic": _string("the Kafka topic"), FUNCTION_SELECTOR: LABEL_SELECTOR, **DELIVERY}},
    "NATSTrigger": {"type": "object", "required": ["topic", FUNCTION_SELECTOR], "properties": {
        "topic": _string("the NATS subject"), FUNCTION_SELECTOR: LABEL_SELECTOR,
        "stream": _string("a JetStream stream holding the subject: at-least-once delivery with acks; empty: core "
                          "NATS, at most once as the protocol gives"),
        **DELIVERY}},
    "KinesisTrigger": {"type": "object", "required": [FUNCTION_NAME, "stream", "aws-region", "shard", "secret"],
                       "properties": {
        FUNCTION_NAME: _string("the Function in the same namespace"),
        "stream": _string("the Kinesis stream"), "aws-region": _string("e.g. us-west-2"),
        "shard": _string("the shard id, e.g. shardId-000000000000"),
        "secret": _string("a Secret with aws_access_key_id and aws_secret_access_key"),
        "endpoint": _string("the Kinesis endpoint URL; empty: AWS's for the region"), **DELIVERY}},
}

READY_CONDITION = '.status.conditions[?(@.type=="Ready")]'
EVENT_COLUMNS = [{"name": "Ready", "type": "string", "jsonPath": f"{READY_CONDITION}.status"},
                 {"name": "Lag", "type": "integer", "jsonPath": ".status.lag"},
                 {"name": "Dead-Lettered", "type": "integer", "jsonPath": ".status.deadLettered"}]
PRINTER_COLUMNS = {
    "Function": [
        {"name": "Runtime", "type": "string", "jsonPath": ".spec.runtime"},
        {"name": "Handler", "type": "string", "jsonPath": ".spec.handler"},
        {"name": "Ready", "type": "string", "jsonPath": f"{READY_CONDITION}.status"},
        {"name": "Replicas", "type": "integer", "jsonPath": ".status.readyReplicas"},
        {"name": "Reason", "type": "string", "jsonPath": f"{READY_CONDITION}.reason"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}],
    "HTTPTrigger": [{"name": "Function", "type": "string", "jsonPath": f".spec.{FUNCTION_NAME}"},
                    {"name": "Host", "type": "string", "jsonPath": f".spec.{HOST_NAME}"},
                    {"name": "Address", "type": "string", "jsonPath": ".status.address"},
                    {"name": "Ready", "type": "string", "jsonPath": f"{READY_CONDITION}.status"},
                    {"name": "Reason", "type": "string", "jsonPath": f"{READY_CONDITION}.reason"}],
    "CronJobTrigger": [{"name": "Schedule", "type": "string", "jsonPath": ".spec.schedule"},
                       {"name": "Function", "type": "string", "jsonPath": f".spec.{FUNCTION_NAME}"},
                       {"name": "Last-Schedule", "type": "date", "jsonPath": ".status.lastScheduleTime"},
                       {"name": "Last-Result", "type": "string", "jsonPath": ".status.lastResult"},
                       {"name": "Ready", "type": "string", "jsonPath": f"{READY_CONDITION}.status"}],
    **{kind: [{"name": "Topic", "type": "string", "jsonPath": ".spec.topic"}, *EVENT_COLUMNS]
       for kind in ("KafkaTrigger", "NATSTrigger")},
    "KinesisTrigger": [{"name": "Stream", "type": "string", "jsonPath": ".spec.stream"},
                       {"name": "Function", "type": "string", "jsonPath": f".spec.{FUNCTION_NAME}"}, *EVENT_COLUMNS],
}


def crd(kind: str) -> dict:
    plural = KINDS[kind]
    spec_schema = FUNCTION_SPEC if kind == "Function" else TRIGGER_SPECS[kind]
    status_schema = {"Function": FUNCTION_STATUS, "HTTPTrigger": HTTP_TRIGGER_STATUS,
                     "CronJobTrigger": CRON_TRIGGER_STATUS}.get(kind, EVENT_TRIGGER_STATUS)
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP, "scope": "Namespaced",
            "names": {"kind": kind, "listKind": f"{kind}List", "plural": plural, "singular": kind.lower(),
                      "categories": ["kubeless"]},
            "versions": [{
                "name": VERSION, "served": True, "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": PRINTER_COLUMNS[kind],
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"},
                    "spec": spec_schema, "status": status_schema}}}}],
        },
    }
