"""`kubectl kubeless topic create|delete|list|publish`: Kafka topics, by running Kafka's own tools in the broker.

As Kubeless did, each command execs into the first running pod labelled `kubeless=kafka` of --kafka-namespace,
container `broker`, so it needs no route to Kafka from this machine, only the rights to exec. Kafka 4 has no
ZooKeeper: the tools talk to the broker itself (`--bootstrap-server localhost:9092`, where Kubeless gave
`--zookeeper` and `--broker-list`). The broker is one of your own, or the local cluster's (`make brokers`).
"""
from __future__ import annotations

import argparse

from kubeless_api import brokers, meta, resources
from kubectl_kubeless import flags
from kubectl_kubeless.command import Factory, add_command, add_noun
from kubectl_kubeless.errors import UserError
from kubectl_kubeless.kube import parse_request_timeout
from kubectl_kubeless.trigger.kafka import topic as topic_name

KAFKA_BIN = "/opt/kafka/bin"
BOOTSTRAP_SERVER = f"localhost:{brokers.KAFKA_PORT}"  # the broker's own listener, seen from its container
BROKER_SELECTOR = ",".join(f"{key}={value}" for key, value in brokers.KAFKA_LABELS.items())
BROKER_CONTAINER = brokers.KAFKA_CONTAINER
DEFAULT_TOPIC = "kubeless"  # Kubeless's default for publish --topic
# The tools start a JVM each (a few seconds); a broker that does not answer makes them retry for a minute.
TOOL_TIMEOUT = 120.0


# --- pure: the commands and the pod -----------------------------------------------------------------------------

def topics_command(*arguments: str) -> list[str]:
    """kafka-topics.sh with the broker to ask, then `arguments` (--create --topic t ...)."""
    return [f"{KAFKA_BIN}/kafka-topics.sh", "--bootstrap-server", BOOTSTRAP_SERVER, *arguments]


def create_command(topic: str) -> list[str]:
    return topics_command("--create", "--topic", topic, "--partitions", "1", "--replication-factor", "1")


def producer_command(topic: str) -> list[str]:
    return [f"{KAFKA_BIN}/kafka-console-producer.sh", "--bootstrap-server", BOOTSTRAP_SERVER, "--topic", topic]


def publish_command(topic: str, data: str) -> list[str]:
    """The producer fed `data` and a newline by the broker's shell. The data rides as an argument, not on the exec's
    stdin: a command sees the end of its stdin only through the v5 exec protocol, which not every API server and
    client speak, and the console producer reads to the end."""
    return ["/bin/sh", "-c", 'printf "%s\\n" "$0" | "$@"', data, *producer_command(topic)]


def broker_pod(pods: list[dict]) -> str | None:
    """The first running pod by name (not one being deleted), as Kubeless took the first; None when none runs."""
    running = [pod["metadata"]["name"] for pod in pods
               if meta.dig(pod, "status", "phase") == "Running" and not meta.dig(pod, "metadata", "deletionTimestamp")]
    return min(running, default=None)


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


# --- running a tool ---------------------------------------------------------------------------------------------

def run_tool(factory: Factory, namespace: str, command: list[str], tool: str = "") -> str:
    """The tool's stdout, run in the broker; one error line with the last line of its stderr when it fails."""
    client = factory.client()
    pods = client.get(resources.path("v1", "Pod", namespace), labelSelector=BROKER_SELECTOR).get("items") or []
    pod = broker_pod(pods)
    if pod is None:
        raise UserError(f"no Kafka broker in namespace {namespace} (no running pod labelled {BROKER_SELECTOR}); "
                        "start one (`make brokers` on the local cluster), or give the namespace it runs in with "
                        "--kafka-namespace")
    limit = parse_request_timeout(factory.options.request_timeout) or TOOL_TIMEOUT
    result = client.exec(namespace, pod, BROKER_CONTAINER, command, timeout=limit)
    if result.code != 0:
        why = last_line(result.stderr) or last_line(result.stdout) or "no message"
        raise UserError(f"{tool or command[0].rsplit('/', 1)[-1]} failed in pod {pod} (namespace {namespace}, exit "
                        f"{result.code}): {why}")
    return result.stdout


def namespace_of(args: argparse.Namespace) -> str:
    return flags.namespace(args.kafka_namespace, "--kafka-namespace")


def create(args: argparse.Namespace, factory: Factory) -> int:
    topic = topic_name(args.topic, "topic name")
    factory.write(run_tool(factory, namespace_of(args), create_command(topic)))
    return 0


def delete(args: argparse.Namespace, factory: Factory) -> int:
    topic = topic_name(args.topic, "topic name")
    namespace = namespace_of(args)
    factory.write(run_tool(factory, namespace, topics_command("--delete", "--topic", topic)))
    factory.info(f"Topic {topic} deleted")
    return 0


def ls(args: argparse.Namespace, factory: Factory) -> int:
    factory.write(run_tool(factory, namespace_of(args), topics_command("--list")))
    return 0


def publish(args: argparse.Namespace, factory: Factory) -> int:
    topic = topic_name(args.topic, "--topic")
    namespace = namespace_of(args)
    run_tool(factory, namespace, publish_command(topic, args.data), "kafka-console-producer.sh")
    factory.info(f"Message published to topic {topic}")
    return 0


# --- the command line -------------------------------------------------------------------------------------------

def add_kafka_namespace(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kafka-namespace", default=meta.SYSTEM_NAMESPACE, metavar="NAMESPACE",
                        help=f"where the Kafka broker runs (default {meta.SYSTEM_NAMESPACE})")


def register(commands: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    verbs = add_noun(commands, "topic", parents=parents, summary="Kafka topics: create, delete, list, publish",
                     description="Manage the topics of a Kafka broker (the local cluster's: `make brokers`), by "
                                 "running Kafka's tools in its pod (kubectl exec).",
                     examples="  kubectl kubeless topic create orders\n  kubectl kubeless topic ls\n")
    parser = add_command(verbs, "create", parents=parents, usage="TOPIC [flags]", summary="create a Kafka topic",
                         description="Create a topic with one partition and one replica.",
                         examples="  kubectl kubeless topic create orders\n"
                                  "  kubectl kubeless topic create orders --kafka-namespace kafka\n", run=create)
    parser.add_argument("topic", metavar="TOPIC")
    add_kafka_namespace(parser)
    parser = add_command(verbs, "delete", parents=parents, usage="TOPIC [flags]", summary="delete a Kafka topic",
                         description="Delete a topic and its messages.",
                         examples="  kubectl kubeless topic delete orders\n", run=delete)
    parser.add_argument("topic", metavar="TOPIC")
    add_kafka_namespace(parser)
    parser = add_command(verbs, "list", parents=parents, usage="[flags]", summary="list the Kafka topics",
                         description="List the broker's topics, one a line.",
                         examples="  kubectl kubeless topic ls\n  kubectl kubeless topic list --kafka-namespace "
                                  "kafka\n", run=ls, aliases=("ls",))
    add_kafka_namespace(parser)
    parser = add_command(verbs, "publish", parents=parents, usage="--topic TOPIC --data TEXT [flags]",
                         summary="publish a message to a Kafka topic",
                         description="Publish one message (the data and a line break) with Kafka's console "
                                     "producer.",
                         examples="  kubectl kubeless topic publish --topic orders --data '{\"id\": 1}'\n",
                         run=publish)
    parser.add_argument("--topic", default=DEFAULT_TOPIC, help=f"the topic (default {DEFAULT_TOPIC})")
    parser.add_argument("--data", default="", help="the message")
    add_kafka_namespace(parser)
