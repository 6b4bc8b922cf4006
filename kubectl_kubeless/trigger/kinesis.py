"""`kubectl kubeless trigger kinesis ...`: KinesisTriggers, the records of one shard of an Amazon Kinesis stream
delivered to a function; `publish` and `create-stream`, which call Kinesis from this machine (as Kubeless's did) with
the keys of a Secret read through the API (the wire is kubectl_kubeless/wire/kinesis.py).

The flags are Kubeless's. Fixed: `update` takes -n (Kubeless read a namespace flag it never declared). New:
`--max-attempts` and `--dead-letter-topic` (a stream), and `create` checks that the function and the secret exist.
"""
from __future__ import annotations

import argparse
import base64
import binascii
import re
from functools import partial
from urllib.parse import urlsplit

from kubeless_api import resources, schema
from kubectl_kubeless import objects
from kubectl_kubeless.command import Factory, add_command
from kubectl_kubeless.errors import UserError
from kubectl_kubeless.kube import parse_request_timeout
from kubectl_kubeless.trigger.events import EventTriggerKind, delivery_flags, lag_column
from kubectl_kubeless.trigger.spec import SpecFlag, function_column, function_flag, identity, ready_column, subdomain
from kubectl_kubeless.wire import kinesis

CALL_TIMEOUT = 30.0  # seconds a Kinesis call may take, unless --request-timeout says otherwise
MAX_RECORDS = 500  # PutRecords takes at most this many records in one call
REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d+")  # us-west-2, us-gov-east-1, ap-southeast-3


# --- the flags' values ------------------------------------------------------------------------------------------

def stream(value: str, what: str = "--stream") -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,128}", value):
        raise UserError(f"invalid {what} {value!r}: a Kinesis stream name is 1 to 128 letters, digits, '_', '.' "
                        "and '-'")
    return value


def region(value: str) -> str:
    if not REGION.fullmatch(value):
        raise UserError(f"invalid --aws-region {value!r}: an AWS region, e.g. us-west-2")
    return value


def shard(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,128}", value):
        raise UserError(f"invalid --shard-id {value!r}: a shard id, e.g. shardId-000000000000")
    return value


def endpoint(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/") or parts.query:
        raise UserError(f"invalid --endpoint {value!r}: the URL of a Kinesis endpoint, e.g. "
                        "https://kinesis.us-west-2.amazonaws.com or http://localhost:4566")
    return value.rstrip("/")


# --- the secret -------------------------------------------------------------------------------------------------

def secret_path(namespace: str, name: str) -> str:
    return resources.path("v1", "Secret", namespace, name)


def secret_missing(name: str, namespace: str) -> UserError:
    return UserError(f"secret \"{name}\" not found in namespace \"{namespace}\": create it with kubectl create "
                     f"secret generic {name} -n {namespace} --from-literal={schema.AWS_ACCESS_KEY_ID}=... "
                     f"--from-literal={schema.AWS_SECRET_ACCESS_KEY}=...")


def aws_secret(factory: Factory, namespace: str, name: str) -> dict:
    """The Secret named `name`; UserError saying how to make it when there is none."""
    found = objects.get_or_none(factory, secret_path(namespace, name))
    if found is None:
        raise secret_missing(name, namespace)
    return found


def aws_keys(secret: dict, namespace: str) -> kinesis.Credentials:
    """The AWS keys a Secret holds, under Kubeless's key names."""
    data, name = secret.get("data") or {}, secret["metadata"]["name"]
    missing = [key for key in (schema.AWS_ACCESS_KEY_ID, schema.AWS_SECRET_ACCESS_KEY) if not data.get(key)]
    if missing:
        raise UserError(f"secret \"{name}\" in namespace \"{namespace}\" has no {' and no '.join(missing)}: the AWS "
                        f"keys go under {schema.AWS_ACCESS_KEY_ID} and {schema.AWS_SECRET_ACCESS_KEY}")
    try:
        keys = [base64.b64decode(data[key], validate=True).decode().strip()
                for key in (schema.AWS_ACCESS_KEY_ID, schema.AWS_SECRET_ACCESS_KEY)]
    except (binascii.Error, UnicodeDecodeError):
        raise UserError(f"secret \"{name}\" in namespace \"{namespace}\": its AWS keys are not text") from None
    return kinesis.Credentials(*keys)


# --- publish, create-stream -------------------------------------------------------------------------------------

def call(factory: Factory, args: argparse.Namespace, action: str, body: dict) -> dict:
    """One Kinesis action with the keys of --secret, at --endpoint or AWS's endpoint of --aws-region."""
    namespace = factory.namespace()
    credentials = aws_keys(aws_secret(factory, namespace, args.secret), namespace)
    target = endpoint(args.endpoint) if args.endpoint else kinesis.endpoint_for(args.aws_region)
    limit = parse_request_timeout(factory.options.request_timeout) or CALL_TIMEOUT
    try:
        return kinesis.call(target, action, body, credentials=credentials, region=args.aws_region, timeout=limit)
    except kinesis.KinesisError as error:
        raise UserError(str(error)) from None


def check_call_flags(args: argparse.Namespace) -> None:
    """The flags every call takes, checked before the secret is read."""
    region(args.aws_region)
    subdomain(args.secret, "--secret")
    if args.endpoint:
        endpoint(args.endpoint)


def publish(args: argparse.Namespace, factory: Factory) -> int:
    stream(args.stream)
    check_call_flags(args)
    if not args.partition_key or len(args.partition_key) > 256:
        raise UserError(f"invalid --partition-key {args.partition_key!r}: 1 to 256 characters")
    records = [record.encode() for record in args.records]
    if len(records) > MAX_RECORDS:
        raise UserError(f"{len(records)} records: Kinesis takes at most {MAX_RECORDS} in one call; publish them in "
                        "parts")
    answer = call(factory, args, "PutRecords", kinesis.put_records_body(args.stream, args.partition_key, records))
    failed = kinesis.failed_records(answer)
    if failed:
        raise UserError(f"Kinesis stored {len(records) - len(failed)} of {len(records)} records in stream "
                        f"{args.stream}; {'; '.join(failed)}")
    factory.info(f"{len(records)} record{'s' if len(records) != 1 else ''} published to stream {args.stream}")
    return 0


def create_stream(args: argparse.Namespace, factory: Factory) -> int:
    stream(args.stream_name, "--stream-name")
    check_call_flags(args)
    if args.shard_count < 1:
        raise UserError(f"invalid --shard-count {args.shard_count}: at least 1")
    call(factory, args, "CreateStream", {"StreamName": args.stream_name, "ShardCount": args.shard_count})
    factory.info(f"Stream {args.stream_name} created in {args.aws_region} (Kinesis makes it ACTIVE within a minute; "
                 "its shards are shardId-000000000000 and up)")
    return 0


def add_call_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--aws-region", required=True, metavar="REGION", help="the AWS region, e.g. us-west-2 "
                                                                              "(required)")
    parser.add_argument("--secret", required=True, help=f"the Secret with {schema.AWS_ACCESS_KEY_ID} and "
                                                        f"{schema.AWS_SECRET_ACCESS_KEY} (required)")
    parser.add_argument("--endpoint", metavar="URL", help="the Kinesis endpoint (default: AWS's for the region)")


PUBLISH_EXAMPLES = """\
  kubectl kubeless trigger kinesis publish --stream orders --aws-region us-west-2 --secret aws-keys \\
      --partition-key p1 --records '{"id": 1}' '{"id": 2}'
  # to a local Kinesis (LocalStack, moto)
  kubectl kubeless trigger kinesis publish --stream orders --aws-region us-east-1 --secret aws-keys \\
      --partition-key p1 --records hi --endpoint http://localhost:4566
"""
CREATE_STREAM_EXAMPLES = """\
  kubectl kubeless trigger kinesis create-stream --stream-name orders --aws-region us-west-2 --secret aws-keys
  kubectl kubeless trigger kinesis create-stream --stream-name orders --aws-region us-east-1 --secret aws-keys \\
      --shard-count 2 --endpoint http://localhost:4566
"""


# --- the kind ---------------------------------------------------------------------------------------------------

CREATE_EXAMPLES = """\
  # the keys, once per namespace
  kubectl create secret generic aws-keys --from-literal=aws_access_key_id=AKIA... \\
      --from-literal=aws_secret_access_key=...
  # every record of the stream's first shard, to the function orders
  kubectl kubeless trigger kinesis create orders --function-name orders --stream orders --aws-region us-west-2 \\
      --shard-id shardId-000000000000 --secret aws-keys

  # only print the object
  kubectl kubeless trigger kinesis create orders --function-name orders --stream orders --aws-region us-west-2 \\
      --shard-id shardId-000000000000 --secret aws-keys --dryrun -o json
"""
UPDATE_EXAMPLES = """\
  # another shard, in another namespace than the context's
  kubectl kubeless trigger kinesis update orders -n shop --shard-id shardId-000000000001
  kubectl kubeless trigger kinesis update orders --max-attempts 10 --dead-letter-topic orders-failed
"""


class KinesisTriggerKind(EventTriggerKind):
    kind = "KinesisTrigger"
    noun = "kinesis"
    title = "Kinesis trigger"
    a_title = "a Kinesis trigger"
    about = ("Deliver the records of one shard of an Amazon Kinesis stream to a function: the consumer reads the "
             "shard with the keys of a Secret and POSTs each record to the function.")
    create_note = (f"The function and the secret (with {schema.AWS_ACCESS_KEY_ID} and "
                   f"{schema.AWS_SECRET_ACCESS_KEY}) must exist.")
    source = "stream"
    source_flag = "--stream"
    spec_flags = (
        function_flag("--function-name", "the function to call, in the same namespace"),
        SpecFlag(("--stream",), "stream", "the Kinesis stream to read", stream, metavar="STREAM", required=True),
        SpecFlag(("--aws-region",), schema.AWS_REGION, "the stream's AWS region, e.g. us-west-2", region,
                 metavar="REGION", required=True),
        SpecFlag(("--shard-id",), "shard", "the shard to read, e.g. shardId-000000000000", shard, metavar="SHARD",
                 required=True),
        SpecFlag(("--secret",), schema.AWS_SECRET, f"a Secret in the same namespace with {schema.AWS_ACCESS_KEY_ID} "
                 f"and {schema.AWS_SECRET_ACCESS_KEY}", partial(subdomain, what="--secret"), metavar="SECRET",
                 required=True),
        SpecFlag(("--endpoint",), "endpoint", "the Kinesis endpoint URL (default: AWS's for the region)", endpoint,
                 metavar="URL"),
        *delivery_flags(partial(stream, what="--dead-letter-topic"), "stream"),
    )
    headers = ("NAME", "NAMESPACE", "REGION", "STREAM", "SHARD", "FUNCTION", "READY", "LAG")
    examples = {"noun": "  kubectl kubeless trigger kinesis create orders --function-name orders --stream orders "
                        "--aws-region us-west-2 --shard-id shardId-000000000000 --secret aws-keys\n",
                "create": CREATE_EXAMPLES, "update": UPDATE_EXAMPLES}
    sample_name = "orders"
    extra_verbs = ("publish", "create-stream")

    def row(self, trigger, now):
        spec = trigger.get("spec") or {}
        return [*identity(trigger), spec.get(schema.AWS_REGION) or "", spec.get("stream") or "",
                spec.get("shard") or "", function_column(trigger), ready_column(trigger), lag_column(trigger)]

    def register_extra(self, verbs: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
        parser = add_command(verbs, "publish", parents=parents,
                             usage="--stream STREAM --aws-region REGION --secret SECRET --partition-key KEY "
                                   "--records RECORD... [flags]",
                             summary="put records into a Kinesis stream from this machine",
                             description="Put records into a stream (one PutRecords call), signed with the keys of "
                                         "a Secret of the namespace, from this machine (as Kubeless did).",
                             examples=PUBLISH_EXAMPLES, run=publish)
        parser.add_argument("--stream", required=True, help="the stream (required)")
        parser.add_argument("--partition-key", required=True, metavar="KEY",
                            help="the partition key of every record: it picks the shard (required)")
        parser.add_argument("--records", required=True, nargs="+", action="extend", metavar="RECORD",
                            help="the records, each one argument (required)")
        add_call_flags(parser)
        parser = add_command(verbs, "create-stream", parents=parents,
                             usage="--stream-name STREAM --aws-region REGION --secret SECRET [flags]",
                             summary="create a Kinesis stream from this machine",
                             description="Create a Kinesis stream (CreateStream), signed with the keys of a Secret "
                                         "of the namespace, from this machine (as Kubeless did).",
                             examples=CREATE_STREAM_EXAMPLES, run=create_stream)
        parser.add_argument("--stream-name", required=True, metavar="STREAM", help="the new stream (required)")
        parser.add_argument("--shard-count", type=int, default=1, metavar="N", help="its shards (default 1)")
        add_call_flags(parser)


KINESIS = KinesisTriggerKind()

