"""The shapes of the free-form parts of a Function (`spec.deployment`, `spec.service`,
`spec.horizontalPodAutoscaler`) and of kubeless-config's default Deployment, checked before anything reads them.

The CRD leaves these parts free (x-kubernetes-preserve-unknown-fields: they are Kubernetes objects, partial), so the
API server accepts a string where a list belongs. Checked here, a wrong type becomes one message that names the
field, `spec.deployment.spec.template.spec.containers[0].env: must be a list, not a string`, instead of a crash in
whoever reads it. Only the fields this project reads or merges are described; any other field is the API server's
to judge when the child is applied.
"""
from __future__ import annotations


class ShapeError(ValueError):
    """A value does not have the shape its field needs; the message names the field."""


class Map:
    """An object whose keys are free and whose values all have one shape (labels, annotations, resources)."""

    def __init__(self, values):
        self.values = values


INT_OR_STRING = (int, str)  # a port number or name, a quantity
QUANTITY = (int, float, str)
ANY = object

ENV_VAR = {"name": str, "value": str, "valueFrom": dict}
PORT = {"name": str, "containerPort": int, "hostPort": int, "protocol": str}
VOLUME_MOUNT = {"name": str, "mountPath": str, "readOnly": bool, "subPath": str}
RESOURCES = {"limits": Map(QUANTITY), "requests": Map(QUANTITY)}
CAPABILITIES = {"add": [str], "drop": [str]}
SECCOMP = {"type": str, "localhostProfile": str}
CONTAINER_SECURITY = {"privileged": bool, "allowPrivilegeEscalation": bool, "runAsNonRoot": bool, "runAsUser": int,
                      "runAsGroup": int, "readOnlyRootFilesystem": bool, "capabilities": CAPABILITIES,
                      "seccompProfile": SECCOMP}
POD_SECURITY = {"runAsNonRoot": bool, "runAsUser": int, "runAsGroup": int, "fsGroup": int,
                "supplementalGroups": [int], "seccompProfile": SECCOMP}
PROBE = {"initialDelaySeconds": int, "periodSeconds": int, "timeoutSeconds": int, "failureThreshold": int,
         "successThreshold": int, "httpGet": {"path": str, "port": INT_OR_STRING}}
CONTAINER = {"name": str, "image": str, "imagePullPolicy": str, "command": [str], "args": [str], "workingDir": str,
             "env": [ENV_VAR], "envFrom": [dict], "ports": [PORT], "volumeMounts": [VOLUME_MOUNT],
             "resources": RESOURCES, "securityContext": CONTAINER_SECURITY, "livenessProbe": PROBE,
             "readinessProbe": PROBE, "terminationMessagePolicy": str}
VOLUME = {"name": str, "emptyDir": dict, "configMap": dict, "secret": dict, "hostPath": dict}
METADATA = {"labels": Map(str), "annotations": Map(str)}
POD_SPEC = {"containers": [CONTAINER], "initContainers": [CONTAINER], "volumes": [VOLUME],
            "securityContext": POD_SECURITY, "serviceAccountName": str, "automountServiceAccountToken": bool,
            "nodeSelector": Map(str), "hostNetwork": bool, "hostPID": bool, "hostIPC": bool,
            "imagePullSecrets": [{"name": str}], "affinity": dict, "tolerations": [dict],
            "terminationGracePeriodSeconds": int}
DEPLOYMENT = {"metadata": METADATA, "spec": {
    "replicas": int, "strategy": dict, "selector": dict,
    "template": {"metadata": METADATA, "spec": POD_SPEC}}}
SERVICE_SPEC = {"type": str, "clusterIP": str, "selector": Map(str), "externalIPs": [str],
                "ports": [{"name": str, "port": int, "targetPort": INT_OR_STRING, "nodePort": int, "protocol": str}]}
AUTOSCALER = {"spec": {"minReplicas": int, "maxReplicas": int, "metrics": [{
    "type": str, "resource": {"name": str, "targetAverageUtilization": int, "target": dict},
    "object": {"metricName": str, "target": {"kind": str, "name": str}, "targetValue": QUANTITY}}]}}


def _name(value) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list",
            dict: "an object"}.get(type(value), type(value).__name__)


def _wanted(shape) -> str:
    if isinstance(shape, (dict, Map)) or shape is dict:
        return "an object"
    if isinstance(shape, list):
        return "a list"
    kinds = shape if isinstance(shape, tuple) else (shape,)
    return " or ".join(dict.fromkeys(_name(kind()) for kind in kinds))


def check(value, shape, where: str) -> None:
    """Raise ShapeError naming the first field of `value` (at path `where`) that does not fit `shape`."""
    if shape is ANY or value is None:  # null is "not set" for every field of a Kubernetes object
        return
    if isinstance(shape, dict) or shape is dict:
        if not isinstance(value, dict):
            raise ShapeError(f"{where}: must be {_wanted(shape)}, not {_name(value)}")
        for key, field_shape in (shape.items() if isinstance(shape, dict) else ()):
            if key in value:
                check(value[key], field_shape, f"{where}.{key}")
    elif isinstance(shape, Map):
        if not isinstance(value, dict):
            raise ShapeError(f"{where}: must be an object, not {_name(value)}")
        for key, item in value.items():
            check(item, shape.values, f"{where}.{key}")
    elif isinstance(shape, list):
        if not isinstance(value, list):
            raise ShapeError(f"{where}: must be a list, not {_name(value)}")
        for index, item in enumerate(value):
            check(item, shape[0], f"{where}[{index}]")
    else:
        kinds = shape if isinstance(shape, tuple) else (shape,)
        # bool is an int to Python, never to Kubernetes
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise ShapeError(f"{where}: must be {_wanted(shape)}, not {_name(value)}")


def check_function_spec(spec: dict) -> None:
    """The free-form parts of a Function's spec."""
    check(spec.get("deployment"), DEPLOYMENT, "spec.deployment")
    check(spec.get("service"), SERVICE_SPEC, "spec.service")
    check(spec.get("horizontalPodAutoscaler"), AUTOSCALER, "spec.horizontalPodAutoscaler")
