"""Kafka, NATS and Kinesis triggers on the local cluster, with the brokers of `make brokers` (Kafka at
kafka.kubeless:9092, pods `kubeless=kafka` with container `broker`; NATS at nats.kubeless:4222; Kinesis served by
moto at http://kinesis.kubeless:4567) and the consumers that `install --triggers` adds.

A trigger selecting two functions delivers every message to both, with Kubeless's headers (read from the
functions' logs); a function that always answers 500 gets each message maxAttempts times, then the message is in
the dead-letter topic and the trigger's status counts it. A cluster without the brokers skips these tests.
"""
from __future__ import annotations

import http.server
import json
import re
import threading
import time
import uuid
from pathlib import Path

import pytest

from conftest import REPO, Cluster
from kubectl_kubeless.wire import nats
from support import wait_until

# Prints one line per call that the test greps: the message and the headers the consumer sent.
RECORDER = """\
import json


def handler(event, context):
    print('CALL ' + json.dumps({'data': event['data'], 'event-id': event['event-id'],
                                'event-time': event['event-time'], 'event-type': event['event-type'],
                                'event-namespace': event['event-namespace'],
                                'event-topic': event['extensions']['request'].headers.get('event-topic')}),
          flush=True)
    return 'ok'
"""
FAILING = "def handler(event, context):\n    print('FAILED', flush=True)\n    raise RuntimeError('on purpose')\n"
EVENT_TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)? \+0000 UTC$")
BROKERS = {"kafka": ("service", "kafka"), "nats": ("service", "nats"), "kinesis": ("service", "kinesis")}
NATS_URL = "nats://nats.kubeless:4222"
KINESIS = "http://kinesis.kubeless:4567"


def kubeless(cluster: Cluster, namespace: str, *args: str, check: bool = True, timeout: float = 180):
    return cluster.run("kubectl", "kubeless", *args, "-n", namespace, check=check, timeout=timeout)


@pytest.fixture(scope="module")
def consumers(plugin: Cluster) -> Cluster:
    """The brokers: on the local cluster, `make brokers` starts them; another cluster needs them there already. The
    consumers of all three are installed and running."""
    missing = [broker for broker, obj in BROKERS.items()
               if plugin.kubectl("get", *obj, "-n", "kubeless", check=False).returncode != 0]
    if missing and plugin.kind == "local":
        plugin.run("bash", str(REPO / "hack" / "brokers.sh"), timeout=600)
    elif missing:
        pytest.skip(f"no {', '.join(missing)} broker in namespace kubeless (`make brokers` with this KUBECONFIG)")
    plugin.run("kubectl", "kubeless", "install", "--triggers", "kafka,nats,kinesis", "--wait", timeout=300)
    return plugin


def deploy(cluster: Cluster, namespace: str, tmp_path: Path, name: str, code: str, labels: str) -> None:
    source = tmp_path / f"{name}.py"
    source.write_text(code)
    kubeless(cluster, namespace, "function", "deploy", name, "--runtime", "python3.11", "--from-file", str(source),
             "--handler", f"{name}.handler", "--label", labels, "--wait")


def calls(cluster: Cluster, namespace: str, function: str) -> list[dict]:
    logs = kubeless(cluster, namespace, "function", "logs", function, check=False).stdout
    return [json.loads(line.split("CALL ", 1)[1]) for line in logs.splitlines() if "CALL " in line]


def ready(cluster: Cluster, namespace: str, kind: str, name: str) -> dict:
    cluster.kubectl("wait", "--for=condition=Ready", f"{kind}/{name}", "-n", namespace, "--timeout=120s",
                    timeout=130)
    return cluster.get_json(kind, name, "-n", namespace)


def check_headers(call: dict, event_namespace: str, topic: str | None) -> None:
    assert call["event-namespace"] == event_namespace
    assert EVENT_TIME.match(call["event-time"]), call["event-time"]
    assert len(call["event-id"]) == 16
    assert call["event-topic"] == topic


def from_this_machine(cluster: Cluster, url: str) -> str:
    """The broker's URL as the CLI reaches it from this machine: its Service's cluster IP, which kube-proxy serves
    here too (the machine's resolver does not know cluster.local names)."""
    scheme, _, rest = url.partition("://")
    host, _, port = rest.partition(":")
    name, namespace = host.split(".")[:2]
    address = cluster.kubectl("get", "service", name, "-n", namespace, "-o", "jsonpath={.spec.clusterIP}").stdout
    return f"{scheme}://{address.strip()}:{port}"


def status_of(cluster: Cluster, namespace: str, kind: str, name: str) -> dict:
    return cluster.get_json(kind, name, "-n", namespace).get("status") or {}


def test_a_kafka_trigger_feeds_both_selected_functions_and_dead_letters_what_fails(
        consumers: Cluster, namespace: str, tmp_path: Path):
    topic = f"orders-{uuid.uuid4().hex[:6]}"
    for name in ("first", "second"):
        deploy(consumers, namespace, tmp_path, name, RECORDER, "app=shop")
    kubeless(consumers, namespace, "topic", "create", topic)
    kubeless(consumers, namespace, "trigger", "kafka", "create", "orders", "--trigger-topic", topic,
             "--function-selector", "app=shop")
    trigger = ready(consumers, namespace, "kafkatrigger", "orders")
    assert trigger["status"]["functions"] == ["first", "second"]
    messages = [json.dumps({"order": n}) for n in range(5)] + ["plain text"]
    for message in messages:
        kubeless(consumers, namespace, "topic", "publish", "--topic", topic, "--data", message)
    for name in ("first", "second"):
        got = wait_until(f"every message in {name}'s log", lambda name=name: len(
            {json.dumps(c["data"]) if isinstance(c["data"], dict) else c["data"]
             for c in calls(consumers, namespace, name)}) >= len(messages) and calls(consumers, namespace, name),
            timeout=120, interval=3)
        for call in got:
            check_headers(call, "kafkatriggers.kubeless.io", topic)
        kinds = {("json" if isinstance(c["data"], dict) else "text"): c["event-type"] for c in got}
        assert kinds == {"json": "application/json", "text": "application/x-www-form-urlencoded"}
    status = wait_until("the deliveries counted", lambda: (s := status_of(
        consumers, namespace, "kafkatrigger", "orders")).get("delivered", 0) >= 2 * len(messages) and s, timeout=30)
    assert status.get("deadLettered", 0) == 0 and status.get("lag", 0) == 0

    deploy(consumers, namespace, tmp_path, "broken", FAILING, "app=broken")
    dead = f"{topic}.dead-letter"
    kubeless(consumers, namespace, "trigger", "kafka", "create", "failing", "--trigger-topic", topic,
             "--function-selector", "app=broken")
    status = wait_until("the failing function's messages dead-lettered", lambda: (s := status_of(
        consumers, namespace, "kafkatrigger", "failing")).get("deadLettered", 0) >= len(messages) and s,
        timeout=240, interval=3)
    assert status["retried"] >= len(messages) * 4, "maxAttempts 5: four retries each"
    assert "HTTP 500" in status["lastError"] and status["lastErrorTime"]
    logs = kubeless(consumers, namespace, "function", "logs", "broken").stdout
    assert logs.count("FAILED") >= 5 * len(messages)
    pod = consumers.kubectl("get", "pod", "-n", "kubeless", "-l", "kubeless=kafka", "-o",
                            "jsonpath={.items[0].metadata.name}").stdout
    out = consumers.kubectl("exec", "-n", "kubeless", pod, "-c", "broker", "--", "sh", "-c",
                            f"kafka-console-consumer.sh --bootstrap-server localhost:9092 --topic {dead} "
                            "--from-beginning --timeout-ms 15000 --property print.headers=true "
                            "2>/dev/null || true", timeout=60).stdout
    assert "x-kubeless-attempts:5" in out and "x-kubeless-origin-topic:" + topic in out
    assert "plain text" in out


def test_a_function_that_stops_matching_keeps_its_position(consumers: Cluster, namespace: str, tmp_path: Path):
    """Unlabelled, a function's consumer stops; labelled again, it gets what was published meanwhile (its group's
    offsets stay), and nothing twice."""
    topic = f"resume-{uuid.uuid4().hex[:6]}"
    deploy(consumers, namespace, tmp_path, "resumer", RECORDER, "app=resume")
    kubeless(consumers, namespace, "topic", "create", topic)
    kubeless(consumers, namespace, "trigger", "kafka", "create", "resume", "--trigger-topic", topic,
             "--function-selector", "app=resume")
    ready(consumers, namespace, "kafkatrigger", "resume")
    kubeless(consumers, namespace, "topic", "publish", "--topic", topic, "--data", "before")
    wait_until("the first message", lambda: calls(consumers, namespace, "resumer"), timeout=90, interval=3)
    consumers.kubectl("label", "function", "resumer", "-n", namespace, "app-")
    wait_until("NoFunctionMatches", lambda: (status_of(consumers, namespace, "kafkatrigger", "resume").get(
        "conditions") or [{}])[0].get("reason") == "NoFunctionMatches", timeout=60)
    kubeless(consumers, namespace, "topic", "publish", "--topic", topic, "--data", "meanwhile")
    assert status_of(consumers, namespace, "kafkatrigger", "resume").get("delivered") == 1, "no consumer, no call"
    consumers.kubectl("label", "function", "resumer", "-n", namespace, "app=resume")
    # the labels are the pods' too: each change rolls the function's pods, so the count is the trigger's
    wait_until("the message published meanwhile", lambda: status_of(
        consumers, namespace, "kafkatrigger", "resume").get("delivered", 0) >= 2, timeout=120, interval=3)
    time.sleep(6)  # a status tick and more, for a second delivery of "before" to show
    assert status_of(consumers, namespace, "kafkatrigger", "resume")["delivered"] == 2, "nothing delivered twice"


@pytest.mark.parametrize("stream", ["", "E2E"])
def test_a_nats_trigger_feeds_both_selected_functions(consumers: Cluster, namespace: str, tmp_path: Path,
                                                      stream: str):
    subject = f"orders.{uuid.uuid4().hex[:6]}"
    for name in ("first", "second"):
        deploy(consumers, namespace, tmp_path, name, RECORDER, "app=shop")
    name = "orders"
    stream_name = f"{stream}{uuid.uuid4().hex[:6].upper()}" if stream else ""
    kubeless(consumers, namespace, "trigger", "nats", "create", name, "--trigger-topic", subject,
             "--function-selector", "app=shop", *(["--stream", stream_name] if stream else []))
    ready(consumers, namespace, "natstrigger", name)
    messages = [json.dumps({"n": n}) for n in range(3)]
    for message in messages:
        kubeless(consumers, namespace, "trigger", "nats", "publish", "--message", message, "--topic", subject,
                 "--url", from_this_machine(consumers, NATS_URL))
    for function in ("first", "second"):
        got = wait_until(f"every message in {function}'s log", lambda function=function: len(
            calls(consumers, namespace, function)) >= len(messages) and calls(consumers, namespace, function),
            timeout=90, interval=3)
        assert sorted(json.dumps(c["data"]) for c in got) == sorted(messages)
        for call in got:
            check_headers(call, "natstriggers.kubeless.io", None)
            assert call["event-type"] == "application/json"


def test_a_kinesis_trigger_calls_its_function_from_its_checkpoint(consumers: Cluster, namespace: str,
                                                                  tmp_path: Path):
    stream = f"e2e-{uuid.uuid4().hex[:6]}"
    consumers.kubectl("create", "secret", "generic", "aws", "-n", namespace, "--from-literal",
                      "aws_access_key_id=testing", "--from-literal", "aws_secret_access_key=testing")
    aws = ["--aws-region", "us-east-1", "--secret", "aws"]
    here = ["--endpoint", from_this_machine(consumers, KINESIS), *aws]
    kubeless(consumers, namespace, "trigger", "kinesis", "create-stream", "--stream-name", stream, "--shard-count",
             "1", *here)
    deploy(consumers, namespace, tmp_path, "reader", RECORDER, "app=kinesis")
    kubeless(consumers, namespace, "trigger", "kinesis", "create", "records", "--function-name", "reader",
             "--stream", stream, "--shard-id", "shardId-000000000000", "--endpoint", KINESIS, *aws)
    ready(consumers, namespace, "kinesistrigger", "records")
    kubeless(consumers, namespace, "trigger", "kinesis", "publish", "--stream", stream, "--partition-key", "k",
             "--records", '{"n": 1}', *here)
    (call,) = wait_until("the record in the function's log", lambda: calls(consumers, namespace, "reader"),
                         timeout=90, interval=3)
    check_headers(call, "kinesistriggers.kubeless.io", stream)
    assert call["data"] == {"n": 1}
    status = wait_until("the checkpoint in the status", lambda: (s := status_of(
        consumers, namespace, "kinesistrigger", "records")).get("checkpoint") and s, timeout=30)
    assert status["delivered"] >= 1


@pytest.mark.parametrize("broker, verb, resource, namespace, allowed", [
    ("kafka", "watch", "kafkatriggers.kubeless.io", "default", True),
    ("kafka", "patch", "kafkatriggers.kubeless.io/status", "default", True),
    ("kafka", "patch", "kafkatriggers.kubeless.io", "default", False),
    ("kafka", "watch", "natstriggers.kubeless.io", "default", False),
    ("kafka", "get", "secrets", "default", False),
    ("nats", "list", "functions.kubeless.io", "default", True),
    ("nats", "create", "events", "default", True),
    ("nats", "update", "functions.kubeless.io", "default", False),
    ("kinesis", "get", "secrets", "default", True),
    ("kinesis", "list", "secrets", "default", False),
    ("kinesis", "patch", "kinesistriggers.kubeless.io/status", "default", True),
])
def test_each_consumer_may_do_what_its_code_does_and_nothing_else(consumers: Cluster, broker: str, verb: str,
                                                                 resource: str, namespace: str, allowed: bool):
    who = f"system:serviceaccount:kubeless:{broker}-trigger-controller"
    resource, _, subresource = resource.partition("/")
    result = consumers.kubectl("auth", "can-i", verb, resource, "--as", who,
                               *(["--subresource", subresource] if subresource else []), "-n", namespace,
                               check=False)
    assert result.stdout.strip() == ("yes" if allowed else "no"), (who, verb, resource, result.stderr)


# Reports each message to a recorder on this machine: what a function received survives its pods.
REPORTER = """\
import os
import urllib.request


def handler(event, context):
    data = event['data'] if isinstance(event['data'], str) else str(event['data'])
    urllib.request.urlopen(urllib.request.Request(os.environ['RECORDER'], data=data.encode(), method='POST'),
                           timeout=10).read()
    return 'ok'
"""


@pytest.fixture
def recorder(consumers: Cluster):
    """Message ids as the functions report them, over HTTP at the node's address (pods of the local cluster reach
    it; nothing leaves the machine)."""
    if consumers.kind != "local":
        pytest.skip("an address both this machine and the pods reach is only known for the local cluster")
    node_ip = consumers.kubectl("get", "nodes", "-o",
                                "jsonpath={.items[0].status.addresses[?(@.type=='InternalIP')].address}").stdout
    received: list[str] = []

    class Record(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(self.rfile.read(int(self.headers["Content-Length"])).decode())
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer((node_ip, 0), Record)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://{node_ip}:{server.server_port}/", received
    server.shutdown()
    server.server_close()


def restart_broker(cluster: Cluster, selector: str, container: str) -> None:
    """The broker's main process ends (SIGTERM to PID 1); the kubelet restarts its container in the same pod, whose
    emptyDir keeps the log or the stream."""
    pod = cluster.kubectl("get", "pod", "-n", "kubeless", "-l", selector, "-o",
                          "jsonpath={.items[0].metadata.name}").stdout.strip()
    cluster.kubectl("exec", "-n", "kubeless", pod, "-c", container, "--", "kill", "1")
    wait_until("the broker back", lambda: cluster.kubectl(
        "get", "pod", pod, "-n", "kubeless", "-o", "jsonpath={.status.containerStatuses[0].restartCount}"
    ).stdout not in ("", "0") and cluster.kubectl(
        "wait", "--for=condition=Ready", f"pod/{pod}", "-n", "kubeless", "--timeout=5s", check=False,
        timeout=15).returncode == 0, timeout=180, interval=2)


@pytest.mark.parametrize("broker", ["kafka", "jetstream"])
def test_no_message_is_lost_through_a_redeploy_a_killed_consumer_and_a_broker_restart(
        consumers: Cluster, namespace: str, tmp_path: Path, recorder, broker: str):
    """1,000 messages: the consumer is SIGKILLed while it delivers the first half, the function is deleted before
    the second half is published, the broker restarts, and the function is deployed again: every message arrives at
    least once. Duplicates are allowed (and reported): offsets are committed, and JetStream messages acknowledged,
    after delivery, not before."""
    url, received = recorder
    topic = f"loss-{uuid.uuid4().hex[:6]}"

    def deploy_sink() -> None:
        source = tmp_path / "sink.py"
        source.write_text(REPORTER)
        kubeless(consumers, namespace, "function", "deploy", "sink", "--runtime", "python3.11", "--from-file",
                 str(source), "--handler", "sink.handler", "--label", "app=sink", "--env", f"RECORDER={url}",
                 "--wait")

    deploy_sink()
    if broker == "kafka":
        def publish(ids: range) -> None:  # one message per line, as Kafka's console producer reads them
            kubeless(consumers, namespace, "topic", "publish", "--topic", topic, "--data",
                     "\n".join(f"m{n}" for n in ids))

        kubeless(consumers, namespace, "topic", "create", topic)
        kubeless(consumers, namespace, "trigger", "kafka", "create", "loss", "--trigger-topic", topic,
                 "--function-selector", "app=sink")
        kind, consumer, broker_pod = "kafkatrigger", "kafka-trigger-controller", ("kubeless=kafka", "broker")
    else:
        server = nats.parse_url(from_this_machine(consumers, NATS_URL))

        def publish(ids: range) -> None:  # each stored by the stream (its ack) before the next
            for n in ids:
                nats.publish(server, topic, f"m{n}".encode(), timeout=10, wants_ack=True)

        kubeless(consumers, namespace, "trigger", "nats", "create", "loss", "--trigger-topic", topic,
                 "--function-selector", "app=sink", "--stream", f"LOSS{uuid.uuid4().hex[:6].upper()}")
        kind, consumer, broker_pod = "natstrigger", "nats-trigger-controller", ("kubeless=nats", "nats")
    ready(consumers, namespace, kind, "loss")
    publish(range(500))
    wait_until("the first deliveries", lambda: len(set(received)) >= 50, timeout=120)
    consumers.kubectl("delete", "pod", "-n", "kubeless", "-l", f"kubeless={consumer}", "--grace-period=0",
                      "--force")
    wait_until("the first half", lambda: len(set(received)) >= 500, timeout=180)
    kubeless(consumers, namespace, "function", "delete", "sink")
    publish(range(500, 1000))
    restart_broker(consumers, *broker_pod)
    deploy_sink()
    wait_until("every message", lambda: len(set(received)) >= 1000, timeout=300, interval=2)
    assert set(received) == {f"m{n}" for n in range(1000)}
    duplicates = len(received) - len(set(received))
    print(f"{broker}: 1000 messages delivered, {duplicates} more than once")
