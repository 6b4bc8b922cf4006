"""Kafka, NATS and a Kinesis endpoint as Kubernetes objects in the system namespace, named as Kubeless named them.

Pure functions of the project version. `make brokers` (hack/brokers.sh) applies what `python3 -m brokers.manifests`
prints, one JSON List as kubectl reads it. Standard library and kubeless_api only, like hack/images/build.py: it
runs before any virtualenv exists.

These are brokers for triggers under test, not for production: one replica each, the data in an emptyDir (a new
pod starts empty), pods that pass Pod Security "restricted" as the rest of the namespace must.
"""
from __future__ import annotations

import json

from kubeless_api import brokers, meta

# The images' user (hack/images/build.py writes uid 1000 into every image) and where each keeps its data, which the
# recipes leave writable for it; an emptyDir is mounted there.
IMAGE_USER = 1000
KAFKA_DATA_DIR = "/var/lib/kafka"
NATS_DATA_DIR = "/var/lib/nats"


def namespace() -> dict:
    """The system namespace as `kubectl kubeless install` creates it (a unit test holds the two equal), so the
    brokers can come up before or without an install."""
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": meta.SYSTEM_NAMESPACE, "labels": {
        "pod-security.kubernetes.io/enforce": "restricted"}}}


def _metadata(name: str, labels: dict[str, str]) -> dict:
    return {"name": name, "namespace": meta.SYSTEM_NAMESPACE, "labels": labels}


def _pod(labels: dict[str, str], container: dict, volumes: dict[str, str]) -> dict:
    """A pod template of one container, with an emptyDir mounted at each of `volumes` (name -> path)."""
    return {"metadata": {"labels": labels}, "spec": {
        # Kubernetes would give every pod KAFKA_PORT=tcp://..., NATS_PORT, ... for the Services of the namespace:
        # names an image's own settings may use (Kafka images have broken on KAFKA_PORT before).
        "enableServiceLinks": False,
        "automountServiceAccountToken": False,
        "securityContext": {"runAsNonRoot": True, "runAsUser": IMAGE_USER, "runAsGroup": IMAGE_USER,
                            "fsGroup": IMAGE_USER, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{
            **container,
            "imagePullPolicy": "IfNotPresent",
            "volumeMounts": [{"name": name, "mountPath": path} for name, path in volumes.items()],
            "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]}},
        }],
        "volumes": [{"name": name, "emptyDir": {}} for name in volumes],
    }}


def _deployment(name: str, pod: dict) -> dict:
    labels = pod["metadata"]["labels"]
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": _metadata(name, labels), "spec": {
        "replicas": 1, "selector": {"matchLabels": labels},
        # a rolling update would run two unconnected servers behind the Service for a while: a publisher and a
        # subscriber could meet different ones
        "strategy": {"type": "Recreate"},
        "template": pod}}


def _service(name: str, labels: dict[str, str], ports: dict[str, int]) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": _metadata(name, labels), "spec": {
        "selector": labels,
        "ports": [{"name": port_name, "port": port, "targetPort": port_name} for port_name, port in ports.items()]}}


def kafka(version: str) -> list[dict]:
    """A StatefulSet as in Kubeless (one pod at a time, named kafka-0) and its Service."""
    labels = brokers.KAFKA_LABELS
    container = {
        "name": brokers.KAFKA_CONTAINER, "image": meta.image("kafka", version),
        "env": [{"name": "KAFKA_ADVERTISED_LISTENERS", "value": f"PLAINTEXT://{brokers.KAFKA_BROKERS}"}],
        "ports": [{"name": "kafka", "containerPort": brokers.KAFKA_PORT}],
        "readinessProbe": {"tcpSocket": {"port": "kafka"}, "periodSeconds": 2},
        # the JVM's heap is 384 MiB (kafka-server.sh); metaspace, code cache, and the direct buffers take the rest.
        # A tool that `kubectl exec` runs (kafka-topics.sh) is a second JVM of up to 128 MiB of heap.
        "resources": {"requests": {"cpu": "100m", "memory": "512Mi"}, "limits": {"memory": "768Mi"}},
    }
    # /tmp: the JVM's perf data, and the native libraries of the compression codecs, which unpack there
    pod = _pod(labels, container, {"data": KAFKA_DATA_DIR, "tmp": "/tmp"})
    return [
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": _metadata(brokers.KAFKA, labels), "spec": {
            "replicas": 1, "serviceName": brokers.KAFKA, "selector": {"matchLabels": labels}, "template": pod}},
        _service(brokers.KAFKA, labels, {"kafka": brokers.KAFKA_PORT}),
    ]


def nats(version: str) -> list[dict]:
    labels = {"kubeless": brokers.NATS}
    container = {
        "name": brokers.NATS, "image": meta.image("nats", version),
        # the Go runtime collects before it reaches the limit instead of at twice the live heap
        "env": [{"name": "GOMEMLIMIT", "value": "200MiB"}],
        "ports": [{"name": "client", "containerPort": brokers.NATS_PORT},
                  {"name": "monitor", "containerPort": brokers.NATS_MONITOR_PORT}],
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": "monitor"}, "periodSeconds": 2},
        # JetStream may hold 64 MB in memory (nats-server.conf)
        "resources": {"requests": {"cpu": "20m", "memory": "32Mi"}, "limits": {"memory": "256Mi"}},
    }
    return [
        _deployment(brokers.NATS, _pod(labels, container, {"data": NATS_DATA_DIR})),
        _service(brokers.NATS, labels, {"client": brokers.NATS_PORT, "monitor": brokers.NATS_MONITOR_PORT}),
    ]


def kinesis(version: str) -> list[dict]:
    labels = {"kubeless": brokers.KINESIS}
    container = {
        "name": brokers.KINESIS, "image": meta.image("kinesis", version),
        "ports": [{"name": "http", "containerPort": brokers.KINESIS_PORT}],
        "readinessProbe": {"tcpSocket": {"port": "http"}, "periodSeconds": 2},
        "resources": {"requests": {"cpu": "20m", "memory": "96Mi"}, "limits": {"memory": "256Mi"}},
    }
    return [
        _deployment(brokers.KINESIS, _pod(labels, container, {"tmp": "/tmp"})),
        _service(brokers.KINESIS, labels, {"http": brokers.KINESIS_PORT}),
    ]


def broker_objects(version: str) -> list[dict]:
    """Everything `make brokers` applies, in apply order."""
    return [namespace(), *kafka(version), *nats(version), *kinesis(version)]


if __name__ == "__main__":
    print(json.dumps({"apiVersion": "v1", "kind": "List", "items": broker_objects(meta.project_version())},
                     indent=4))
