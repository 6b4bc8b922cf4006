"""Status conditions: their types and reasons, which reasons are failures, the lookup, and the rollout rule.

The controller writes these reasons; `ls`, `describe`, `deploy --wait` and `install --wait` read them. Kubeless had
no status (users saw `0/1 NOT READY` and had to read the controller's logs, kubeless #482).
"""
from __future__ import annotations

from dataclasses import dataclass

READY = "Ready"
PROGRESSING = "Progressing"

# Ready reasons
REASON_READY = "MinimumReplicasAvailable"
REASON_DEPLOYING = "Deploying"
REASON_INVALID_SPEC = "InvalidSpec"
REASON_RESOURCE_EXISTS = "ResourceExists"
REASON_APPLY_FAILED = "ApplyFailed"
REASON_INIT_FAILED = {"prepare": "PrepareFailed", "install": "InstallFailed", "compile": "CompileFailed"}
REASON_OTHER_INIT_FAILED = "InitContainerFailed"
REASON_CRASHED = "FunctionCrashed"
REASON_IMAGE_PULL_FAILED = "ImagePullFailed"
REASON_CONTAINER_CONFIG = "ContainerConfigError"
REASON_REPLICA_FAILURE = "ReplicaFailure"
REASON_UNSCHEDULABLE = "Unschedulable"
REASON_SCALED_TO_ZERO = "ScaledToZero"
# Trigger Ready reasons
REASON_FUNCTION_NOT_FOUND = "FunctionNotFound"
REASON_SERVICE_NOT_FOUND = "ServiceNotFound"
REASON_INGRESS_CLASS_NOT_FOUND = "IngressClassNotFound"
REASON_GATEWAY_NOT_FOUND = "GatewayNotFound"
REASON_ROUTE_PENDING = "AddressPending"  # applied, but the ingress controller has not published an address yet
REASON_ROUTE_READY = "RouteReady"
REASON_ROUTE_REFUSED = "RouteNotAccepted"  # the Gateway refused the HTTPRoute; its condition's message says why
REASON_SCHEDULED = "Scheduled"
REASON_LAST_CALL_FAILED = "LastCallFailed"
# Event trigger (Kafka, NATS, Kinesis) Ready reasons
REASON_CONSUMING = "Consuming"                   # every function the trigger calls has a consumer reading
REASON_CONSUMER_STARTING = "ConsumerStarting"
REASON_NO_FUNCTION_MATCHES = "NoFunctionMatches"
REASON_BROKER_UNREACHABLE = "BrokerUnreachable"
REASON_SECRET_NOT_FOUND = "SecretNotFound"
# Progressing reasons, after the Deployment controller's own
REASON_UPDATING = "ReplicaSetUpdating"
REASON_ROLLED_OUT = "NewReplicaSetAvailable"
REASON_DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"

# Ready=False reasons that no waiting will fix: the user must change the function (or read its logs). The others
# (Deploying, Unschedulable, a missing Secret, ...) may still resolve on their own, so `deploy --wait` waits on them.
FAILURE_REASONS = frozenset({REASON_INVALID_SPEC, REASON_RESOURCE_EXISTS, *REASON_INIT_FAILED.values(),
                             REASON_OTHER_INIT_FAILED, REASON_CRASHED, REASON_IMAGE_PULL_FAILED})


def get_condition(status: dict | None, condition_type: str) -> dict:
    """The condition of that type in an object's status (a Function's, a Deployment's, a Pod's), or {}."""
    for item in (status or {}).get("conditions") or []:
        if item.get("type") == condition_type:
            return item
    return {}


@dataclass(frozen=True)
class Rollout:
    """Where a Deployment's rollout stands, after `kubectl rollout status`: `stage` is the first thing it waits for
    (observed, updated, terminated, available) or `done`; each reader words it its own way."""
    stage: str
    wanted: int
    updated: int
    replicas: int
    available: int

    @property
    def done(self) -> bool:
        return self.stage == "done"


def rollout(deployment: dict) -> Rollout:
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    replicas = spec.get("replicas")
    wanted = 1 if replicas is None else replicas
    updated, available = status.get("updatedReplicas") or 0, status.get("availableReplicas") or 0
    current = status.get("replicas") or 0
    if (status.get("observedGeneration") or 0) < (deployment.get("metadata") or {}).get("generation", 0):
        stage = "observed"
    elif updated < wanted:
        stage = "updated"
    elif current > updated:
        stage = "terminated"
    elif available < updated:
        stage = "available"
    else:
        stage = "done"
    return Rollout(stage, wanted, updated, current, available)
