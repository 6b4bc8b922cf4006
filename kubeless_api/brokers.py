"""The event brokers that the trigger controllers consume, as the project deploys them (brokers/): their Services in
the system namespace and the addresses a trigger uses unless told otherwise.

The names are Kubeless's: its manifests made a StatefulSet and Service `kafka` whose pods carry the label
`kubeless: kafka`, and `kubeless topic` execs into the `broker` container of the first such pod. Kubeless's NATS
trigger looked for NATS in namespace nats-io; here all three brokers live in the system namespace.
"""
from __future__ import annotations

from kubeless_api.meta import SYSTEM_NAMESPACE

KAFKA = "kafka"
KAFKA_PORT = 9092
KAFKA_LABELS = {"kubeless": KAFKA}
KAFKA_CONTAINER = "broker"
# Kubeless's KAFKA_BROKERS default; the broker also advertises itself under this name
KAFKA_BROKERS = f"{KAFKA}.{SYSTEM_NAMESPACE}:{KAFKA_PORT}"

NATS = "nats"
NATS_PORT = 4222
NATS_MONITOR_PORT = 8222  # /healthz, /varz, /jsz
NATS_URL = f"nats://{NATS}.{SYSTEM_NAMESPACE}:{NATS_PORT}"

KINESIS = "kinesis"
KINESIS_PORT = 4567
KINESIS_ENDPOINT = f"http://{KINESIS}.{SYSTEM_NAMESPACE}:{KINESIS_PORT}"
