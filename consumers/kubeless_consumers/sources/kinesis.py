"""Kinesis, through boto3 (`endpoint` reaches moto or any other Kinesis API): one shard, read in order.

The checkpoint, the sequence number of the last record handled, is kept in the Stats; the status writer copies it
into the trigger's status (status.checkpoint), and a consumer starts after it. The trigger's status, not a
ConfigMap: the position belongs to the trigger and goes with it, the consumers already patch that status (no RBAC
on ConfigMaps), and `kubectl get -o yaml` shows it. The status is written every few seconds, so a crash delivers
again what was handled since the last write: at least once.
"""
from __future__ import annotations

import json

from kubeless_consumers.delivery import Message, Result, dead_letter_headers
from kubeless_consumers.sources.base import Source

RECORDS_PER_READ = 100
IDLE_WAIT = 1.0  # Kinesis serves five reads a second per shard


class KinesisSource(Source):
    def client(self):
        import boto3  # noqa: PLC0415 - only this image has boto3

        key_id, key = self.spec.credentials
        return boto3.client("kinesis", region_name=self.spec.region or None, endpoint_url=self.spec.endpoint or None,
                            aws_access_key_id=key_id or None, aws_secret_access_key=key or None)

    def consume(self) -> None:
        kinesis = self.client()
        stream, shard = self.spec.topic, self.spec.shard

        def dead_letter(message: Message, result: Result) -> None:
            # Kinesis records have no headers: the dead-letter record is a JSON envelope
            envelope = {"data": message.body.decode("utf-8", "replace"), **dead_letter_headers(result,
                                                                                               message.origin)}
            self._put(kinesis, json.dumps(envelope).encode(), message.origin.get("partitionKey") or "dead-letter")

        position = self.stats.checkpoint
        iterator = kinesis.get_shard_iterator(
            StreamName=stream, ShardId=shard,
            **({"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": position} if position
               else {"ShardIteratorType": "TRIM_HORIZON"}))["ShardIterator"]
        self.connected()
        while iterator and not self.stopped.is_set():
            answer = kinesis.get_records(ShardIterator=iterator, Limit=RECORDS_PER_READ)
            self.connected()
            for record in answer.get("Records", []):
                origin = {"stream": stream, "shard": shard, "sequenceNumber": record["SequenceNumber"],
                          "partitionKey": record.get("PartitionKey", "")}
                if not self.delivery.handle(Message(record["Data"], origin), dead_letter):
                    return
                with self.stats.lock:
                    self.stats.checkpoint = record["SequenceNumber"]
            behind = answer.get("MillisBehindLatest")
            self.stats.lag = 0 if behind == 0 and not answer.get("Records") else None
            iterator = answer.get("NextShardIterator")
            if not answer.get("Records"):
                self.stopped.wait(IDLE_WAIT)

    def _put(self, kinesis, data: bytes, key: str) -> None:
        """Into the dead-letter stream, made (one shard) when it does not exist."""
        try:
            kinesis.put_record(StreamName=self.spec.dead_letter, Data=data, PartitionKey=key)
        except kinesis.exceptions.ResourceNotFoundException:
            kinesis.create_stream(StreamName=self.spec.dead_letter, ShardCount=1)
            kinesis.get_waiter("stream_exists").wait(StreamName=self.spec.dead_letter,
                                                     WaiterConfig={"Delay": 1, "MaxAttempts": 60})
            kinesis.put_record(StreamName=self.spec.dead_letter, Data=data, PartitionKey=key)
