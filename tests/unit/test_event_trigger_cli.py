"""`kubectl kubeless trigger kafka|nats|kinesis ...` and `topic ...` through `main([...])` with a fake API server:
the objects sent, the checks of what they name (a function the selector matches, the function, the AWS secret), and
bad input refused with one `error:` line before anything is written."""
from __future__ import annotations

import base64
import io
import json
import subprocess

import pytest
import yaml
from test_trigger_cli import TriggerAPI, complete, stored

from kubeless_api import meta, resources, schema
from kubectl_kubeless import cli, topic
from kubectl_kubeless.kube import ExecResult, exec_exit_code
from kubectl_kubeless.errors import UserError

FUNCTIONS = resources.path(meta.API_VERSION, "Function", "ns")
SECRET = resources.path("v1", "Secret", "ns", "aws-keys")
PODS = resources.path("v1", "Pod", "kubeless")
ORDERS = stored("KafkaTrigger", "orders", {"topic": "orders", schema.FUNCTION_SELECTOR: {"matchLabels": {"topic": "orders"}},
                                           schema.MAX_ATTEMPTS: 3})
EVENTS = stored("NATSTrigger", "events", {"topic": "events.new", schema.FUNCTION_SELECTOR: {"matchLabels": {"a": "b"}}})
CLICKS = stored("KinesisTrigger", "clicks", {schema.FUNCTION_NAME: "hello", "stream": "clicks", schema.AWS_REGION:
                                             "us-west-2", "shard": "shardId-000000000000", schema.AWS_SECRET: "aws-keys"})


class EventAPI(TriggerAPI):
    """Lists of any collection (empty when nothing is there), a label selector applied as the API server does, and
    an exec into the broker that records the command."""

    def __init__(self, objects=None):
        super().__init__(objects)
        self.execs: list[tuple] = []
        self.exec_result = ExecResult(0, "orders\n", "")

    def get(self, path: str, **query) -> dict:
        if path in self.objects:
            return super().get(path)
        items = [json.loads(json.dumps(obj)) for key, obj in self.objects.items() if key.rsplit("/", 1)[0] == path]
        if not items and path.rsplit("/", 1)[-1] not in meta.KINDS.values() and path != PODS:
            return super().get(path)
        wanted = dict(term.split("=", 1) for term in query.get("labelSelector", "").split(",") if term)
        items = [item for item in items
                 if all((item["metadata"].get("labels") or {}).get(k) == v for k, v in wanted.items())]
        return {"items": items[:int(query["limit"])] if "limit" in query else items}

    def exec(self, namespace, pod, container, command, *, timeout):
        self.execs.append((namespace, pod, container, command))
        return self.exec_result


def function(name: str, labels: dict) -> tuple[str, dict]:
    return (f"{FUNCTIONS}/{name}", {"apiVersion": meta.API_VERSION, "kind": "Function",
                                    "metadata": {"name": name, "namespace": "ns", "labels": labels}})


def aws_secret(**data: str) -> tuple[str, dict]:
    return SECRET, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "aws-keys", "namespace": "ns"},
                    "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}


@pytest.fixture
def api() -> EventAPI:
    """Namespace ns: the function hello labelled topic=orders, the AWS keys, and one trigger of each kind."""
    return EventAPI(dict([function("hello", {"topic": "orders", "function": "hello"}),
                          aws_secret(aws_access_key_id="AKID", aws_secret_access_key="s3cr3t"),
                          ORDERS, EVENTS, CLICKS]))


def run(argv: list[str], client: EventAPI, namespace: str = "ns") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main([*argv, "-n", namespace], stdout=out, stderr=err, client=client, environ={})
    return code, out.getvalue(), err.getvalue()


def refused(argv: list[str], client: EventAPI) -> str:
    code, out, err = run(argv, client)
    assert code == 1, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert out == "" and client.writes == []
    return err


KAFKA = ["trigger", "kafka", "create", "new", "--trigger-topic", "orders", "--function-selector", "topic=orders"]
NATS = ["trigger", "nats", "create", "new", "--trigger-topic", "orders.*", "--function-selector", "topic=orders"]
KINESIS = ["trigger", "kinesis", "create", "new", "--function-name", "hello", "--stream", "clicks", "--aws-region",
           "us-west-2", "--shard-id", "shardId-000000000000", "--secret", "aws-keys"]


# --- create ---------------------------------------------------------------------------------------------------------

def test_kafka_create_sends_the_trigger_and_says_so(api):
    assert run([*KAFKA, "--max-attempts", "4", "--dead-letter-topic", "orders-failed"], api) == \
        (0, "", "Kafka trigger new created in namespace ns successfully!\n")
    (method, path, body), = api.writes
    assert (method, path) == ("POST", resources.path(meta.API_VERSION, "KafkaTrigger", "ns"))
    assert body["spec"] == {"topic": "orders", schema.FUNCTION_SELECTOR: {"matchLabels": {"topic": "orders"}},
                            schema.MAX_ATTEMPTS: 4, schema.DEAD_LETTER_TOPIC: "orders-failed"}


def test_nats_create_takes_a_wildcard_subject_and_a_stream(api):
    assert run([*NATS, "--stream", "ORDERS", "--function-selector", "topic==orders,function=hello"], api)[0] == 0
    assert api.writes[0][2]["spec"] == {"topic": "orders.*", schema.FUNCTION_SELECTOR: {
        "matchLabels": {"topic": "orders", "function": "hello"}}, "stream": "ORDERS"}


def test_kinesis_create_checks_function_and_secret(api):
    assert run(KINESIS, api) == (0, "", "Kinesis trigger new created in namespace ns successfully!\n")
    assert api.writes[0][2]["spec"] == {schema.FUNCTION_NAME: "hello", "stream": "clicks",
                                        schema.AWS_REGION: "us-west-2", "shard": "shardId-000000000000",
                                        schema.AWS_SECRET: "aws-keys"}


def test_a_dry_run_prints_json_with_indent_4(api):
    code, out, _ = run([*KAFKA, "--dryrun", "-o", "json"], api)
    assert code == 0 and api.writes == [] and out.startswith('{\n    "apiVersion"')
    assert json.loads(out)["kind"] == "KafkaTrigger"


@pytest.mark.parametrize(("argv", "message"), [
    ([*KAFKA[:-1], "team=web"], "no function in namespace ns matches --function-selector team=web; label one with "
                                "`kubectl label functions.kubeless.io NAME team=web -n ns`"),
    ([*NATS[:-1], "topic=orders,function=other"], "no function in namespace ns matches --function-selector "
                                                  "function=other,topic=orders"),
    ([*KAFKA[:-1], "topic!=orders"], "invalid --function-selector 'topic!=orders': give labels"),
    ([*KAFKA[:-1], "topic in (a,b)"], "invalid --function-selector"),
    ([*KAFKA[:-1], "bad-=x"], "invalid --function-selector key 'bad-'"),
    ([*KAFKA[:-1], "a=b,a=c"], "a is given two values"),
    ([*KAFKA, "--max-attempts", "0"], "invalid --max-attempts '0': expected a whole number, at least 1"),
    ([*KAFKA, "--max-attempts", "two"], "invalid --max-attempts 'two'"),
    ([*KAFKA, "--dead-letter-topic", "orders"], "--dead-letter-topic orders is the topic the trigger reads"),
    (KAFKA[:6], "--function-selector is required"),
    (KAFKA[:4] + KAFKA[6:], "--trigger-topic is required"),
    ([*KAFKA[:5], "bad topic", *KAFKA[6:]], "invalid --trigger-topic 'bad topic'"),
    ([*NATS[:5], "orders.>.x", *NATS[6:]], "invalid --trigger-topic 'orders.>.x'"),
    ([*NATS, "--stream", "a.b"], "invalid --stream 'a.b'"),
    ([*NATS, "--dead-letter-topic", "failed.*"], "invalid --dead-letter-topic 'failed.*'"),
    ([*KAFKA, "--dryrun", "-o", "table"], "Output format needs to be yaml or json"),
    ([*KINESIS[:-2]], "--secret is required"),
    ([*KINESIS[:8], "--aws-region", "west", *KINESIS[10:]], "invalid --aws-region 'west'"),
    ([*KINESIS, "--endpoint", "ftp://x"], "invalid --endpoint 'ftp://x'"),
    ([*KINESIS[:5], "nope", *KINESIS[6:]], 'function "nope" not found in namespace "ns"'),
    ([*KINESIS[:-1], "other"], 'secret "other" not found in namespace "ns": create it with kubectl create secret '
                               "generic other -n ns --from-literal=aws_access_key_id=..."),
])
def test_bad_input_creates_nothing(api, argv, message):
    assert message in refused(argv, api)


def test_a_secret_without_the_keys_is_refused(api):
    api.objects.update([aws_secret(aws_access_key_id="AKID")])
    assert "has no aws_secret_access_key" in refused(KINESIS, api)


# --- update, ls -----------------------------------------------------------------------------------------------------

def test_an_update_patches_only_what_is_given(api):
    assert run(["trigger", "kafka", "update", "orders", "--dead-letter-topic", "dead"], api) == \
        (0, "", "Kafka trigger orders updated in namespace ns successfully!\n")
    assert api.writes[0][2] == {"spec": {schema.DEAD_LETTER_TOPIC: "dead"}, "metadata": {"resourceVersion": "5"}}
    assert api.objects[ORDERS[0]]["spec"][schema.MAX_ATTEMPTS] == 3


def test_an_update_replaces_the_selector_whole_and_checks_it(api):
    assert run(["trigger", "kafka", "update", "orders", "--function-selector", "function=hello"], api)[0] == 0
    assert api.objects[ORDERS[0]]["spec"][schema.FUNCTION_SELECTOR] == {"matchLabels": {"function": "hello"}}
    api.writes.clear()
    assert "no function in namespace ns matches" in refused(
        ["trigger", "kafka", "update", "orders", "--function-selector", "function=gone"], api)


def test_kinesis_update_takes_a_namespace(api):
    """Kubeless's update read -n without declaring it."""
    code, _, err = run(["trigger", "kinesis", "update", "clicks", "--shard-id", "shardId-000000000001"], api)
    assert code == 0, err
    assert api.objects[CLICKS[0]]["spec"]["shard"] == "shardId-000000000001"
    code, _, err = run(["trigger", "kinesis", "update", "clicks", "--shard-id", "s"], api, namespace="other")
    assert (code, err) == (1, 'error: kinesistrigger "clicks" not found in namespace "other"\n')


def test_ls_shows_kubeless_columns_and_the_status(api):
    api.objects[ORDERS[0]]["status"] = {"lag": 7, "conditions": [{"type": "Ready", "status": "True"}]}
    assert run(["trigger", "kafka", "ls"], api)[1].splitlines() == [
        "NAME     NAMESPACE   TOPIC    FUNCTION-SELECTOR   READY   LAG",
        "orders   ns          orders   topic=orders        True    7"]
    assert run(["trigger", "nats", "ls"], api)[1].splitlines()[1].split() == ["events", "ns", "events.new", "a=b",
                                                                              "<none>", "<none>"]
    assert run(["trigger", "kinesis", "ls"], api)[1].split()[:8] == ["NAME", "NAMESPACE", "REGION", "STREAM",
                                                                     "SHARD", "FUNCTION", "READY", "LAG"]
    assert run(["trigger", "kinesis", "ls", "-o", "name"], api) == (0, "kinesistrigger.kubeless.io/clicks\n", "")
    assert yaml.safe_load(run(["trigger", "nats", "ls", "-o", "yaml"], api)[1])[0]["spec"]["topic"] == "events.new"


def test_delete(api):
    assert run(["trigger", "nats", "delete", "events"], api) == \
        (0, "", "NATS trigger events deleted from namespace ns successfully!\n")


# --- publish, create-stream: what is refused before any connection -------------------------------------------------

@pytest.mark.parametrize(("argv", "message"), [
    (["--url", "http://localhost:4222"], "invalid --url 'http://localhost:4222': the scheme must be nats://"),
    (["--url", "nats://"], "invalid --url 'nats://': no host"),
    (["--url", "nats://host:99999"], "invalid --url 'nats://host:99999'"),
    (["--url", "nats://host/path"], "a server URL has no path"),
    (["--url", "nats://host", "--topic", "a b"], "invalid --topic 'a b'"),
    (["--url", "nats://host", "--topic", "orders.*"], "invalid --topic 'orders.*'"),
    (["--url", "nats://127.0.0.1:1"], "error: cannot reach the NATS server nats://127.0.0.1:1: "),
])
def test_nats_publish_refuses(argv, message):
    assert message in refused(["trigger", "nats", "publish", "--message", "hi", *argv], EventAPI())


def test_nats_publish_needs_message_and_url():
    assert run(["trigger", "nats", "publish", "--url", "nats://h"], EventAPI())[0] == 2  # argparse: bad usage


KINESIS_CALL = ["--aws-region", "us-east-1", "--secret", "aws-keys", "--endpoint", "http://127.0.0.1:1"]


@pytest.mark.parametrize(("argv", "message"), [
    (["publish", "--stream", "s", "--partition-key", "p", "--records", "a", "--aws-region", "x", "--secret", "k"],
     "invalid --aws-region 'x'"),
    (["publish", "--stream", "s s", "--partition-key", "p", "--records", "a", *KINESIS_CALL], "invalid --stream"),
    (["publish", "--stream", "s", "--partition-key", "", "--records", "a", *KINESIS_CALL], "invalid --partition-key"),
    (["create-stream", "--stream-name", "s", "--shard-count", "0", *KINESIS_CALL], "invalid --shard-count 0"),
    (["create-stream", "--stream-name", "s", *KINESIS_CALL[:3], "gone", *KINESIS_CALL[4:]],
     'secret "gone" not found in namespace "ns"'),
    (["create-stream", "--stream-name", "s", *KINESIS_CALL], "cannot reach Kinesis at http://127.0.0.1:1: "),
])
def test_kinesis_calls_refuse(api, argv, message):
    assert message in refused(["trigger", "kinesis", *argv], api)


# --- topic ----------------------------------------------------------------------------------------------------------

def pod(name: str, phase: str, **metadata) -> dict:
    return {"metadata": {"name": name, "labels": {"kubeless": "kafka"}, **metadata}, "status": {"phase": phase}}


def test_the_broker_is_the_first_running_pod():
    assert topic.broker_pod([pod("kafka-1", "Running"), pod("kafka-0", "Pending"), pod("kafka-2", "Running")]) == \
        "kafka-1"
    assert topic.broker_pod([pod("kafka-0", "Running", deletionTimestamp="2024-01-01T00:00:00Z")]) is None
    assert topic.broker_pod([]) is None


def test_the_tools_talk_to_the_broker_itself():
    assert topic.create_command("t") == ["/opt/kafka/bin/kafka-topics.sh", "--bootstrap-server", "localhost:9092",
                                         "--create", "--topic", "t", "--partitions", "1", "--replication-factor", "1"]
    assert topic.producer_command("t") == ["/opt/kafka/bin/kafka-console-producer.sh", "--bootstrap-server",
                                           "localhost:9092", "--topic", "t"]


def test_publish_feeds_the_data_and_a_newline_to_the_producer_through_the_brokers_shell():
    script = topic.publish_command("orders", "it's \"quoted\" $HOME")
    assert script[:2] == ["/bin/sh", "-c"]
    fed = subprocess.run([*script[:3], "it's \"quoted\" $HOME", "cat"], capture_output=True, text=True, check=True)
    assert fed.stdout == "it's \"quoted\" $HOME\n"
    assert topic.publish_command("orders", "x")[4:] == topic.producer_command("orders")


@pytest.fixture
def broker(api) -> EventAPI:
    api.objects[f"{PODS}/kafka-0"] = pod("kafka-0", "Running")
    return api


def test_topic_commands_exec_in_the_broker(broker):
    assert run(["topic", "ls"], broker) == (0, "orders\n", "")
    assert run(["topic", "publish", "--topic", "orders", "--data", "hi"], broker)[0] == 0
    assert run(["topic", "delete", "orders"], broker)[2] == "Topic orders deleted\n"
    (ns, name, container, command), published, deleted = broker.execs
    assert (ns, name, container, command[-1]) == ("kubeless", "kafka-0", "broker", "--list")
    assert published[3] == topic.publish_command("orders", "hi")
    assert deleted[3][-3:] == ["--delete", "--topic", "orders"]


def test_a_failed_tool_is_one_line_with_its_last_words(broker):
    broker.exec_result = ExecResult(1, "", "WARN something\nError: Topic 'orders' already exists.\n")
    assert refused(["topic", "create", "orders"], broker) == (
        "error: kafka-topics.sh failed in pod kafka-0 (namespace kubeless, exit 1): Error: Topic 'orders' already "
        "exists.\n")


@pytest.mark.parametrize(("argv", "message"), [
    (["topic", "ls"], "error: no Kafka broker in namespace kubeless (no running pod labelled kubeless=kafka); "),
    (["topic", "ls", "--kafka-namespace", "Bad"], "invalid namespace 'Bad' (--kafka-namespace)"),
    (["topic", "create", "a b"], "invalid topic name 'a b'"),
])
def test_topic_refuses(api, argv, message):
    assert message in refused(argv, api)
    assert api.execs == []


def test_the_exit_code_of_an_exec():
    assert exec_exit_code("{metadata: {}, status: Success}", "pod p") == 0
    assert exec_exit_code(json.dumps({"status": "Failure", "reason": "NonZeroExitCode", "details": {
        "causes": [{"reason": "ExitCode", "message": "3"}]}}), "pod p") == 3
    with pytest.raises(UserError, match="failed: exec: \"x\": executable file not found"):
        exec_exit_code(json.dumps({"status": "Failure", "message": 'exec: "x": executable file not found'}), "pod p")
    with pytest.raises(UserError, match="without an exit status"):
        exec_exit_code("", "pod p")


# --- completion -----------------------------------------------------------------------------------------------------

def test_completion_knows_the_event_commands():
    assert complete("trigger", "nats", "")[0] == ["create", "update", "delete", "list", "publish"]
    assert complete("trigger", "kinesis", "")[0] == ["create", "update", "delete", "list", "publish",
                                                     "create-stream"]
    assert complete("topic", "")[0] == ["create", "delete", "list", "publish"]
    assert complete("trigger", "kafka", "delete", "")[0] == ["orders"]
    assert complete("trigger", "kinesis", "update", "")[0] == ["clicks"]
    assert complete("trigger", "kinesis", "create", "x", "--function-name", "")[0] == ["echo"]
    assert complete("topic", "ls", "--kafka-namespace", "")[0] == ["default", "kube-system", "team"]
