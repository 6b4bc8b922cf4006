"""Kafka, through kafka-python: one consumer group per (trigger, function), offsets committed by hand.

Each poll's records are delivered partition by partition in parallel (in order within a partition), then the
offsets of what was handled are committed, and only then is the next poll made: at most one poll's worth
(MAX_POLL_RECORDS) is in memory, and a slow function slows the reading. Stopping commits what was handled so far.
"""
from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from kubeless_consumers.delivery import Message, Result, dead_letter_headers
from kubeless_consumers.settings import Settings
from kubeless_consumers.sources.base import Source

log = logging.getLogger(__name__)

CLIENT_ID = "kubeless-kafka-trigger-controller"
MAX_POLL_RECORDS = 100
PARTITION_WORKERS = 4
# A poll's records may wait for a function that is away (retried without limit): the group must not drop the
# consumer meanwhile, or another poll would read the same records again.
MAX_POLL_INTERVAL_MS = 30 * 60 * 1000
DEAD_LETTER_TIMEOUT = 30


def client_options(settings: Settings) -> dict:
    """kafka-python's connection options from Kubeless's variables."""
    options = {"bootstrap_servers": list(settings.kafka_brokers), "client_id": CLIENT_ID}
    if settings.kafka_tls:
        options.update(security_protocol="SASL_SSL" if settings.kafka_sasl else "SSL",
                       ssl_cafile=settings.kafka_cacerts or None, ssl_certfile=settings.kafka_cert or None,
                       ssl_keyfile=settings.kafka_key or None, ssl_check_hostname=not settings.kafka_insecure)
        if settings.kafka_insecure:
            import ssl  # noqa: PLC0415

            context = ssl.create_default_context()
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
            options["ssl_context"] = context
    elif settings.kafka_sasl:
        options["security_protocol"] = "SASL_PLAINTEXT"
    if settings.kafka_sasl:
        options.update(sasl_mechanism="PLAIN", sasl_plain_username=settings.kafka_username,
                       sasl_plain_password=settings.kafka_password)
    return options


class Producers:
    """One producer per process for dead-letters: thread-safe, and made only when a message first needs it."""

    def __init__(self, settings: Settings):
        self.settings, self._producer = settings, None

    def send(self, topic: str, value: bytes, headers: dict[str, str]) -> None:
        from kafka import KafkaProducer  # noqa: PLC0415 - only this image has kafka-python

        if self._producer is None:
            self._producer = KafkaProducer(acks="all", **client_options(self.settings))
        self._producer.send(topic, value=value, headers=[(k, v.encode()) for k, v in headers.items()]).get(
            timeout=DEAD_LETTER_TIMEOUT)


class KafkaSource(Source):
    def __init__(self, *args, producers: Producers, **kwargs):
        super().__init__(*args, **kwargs)
        self.producers = producers

    def dead_letter(self, message: Message, result: Result) -> None:
        self.producers.send(self.spec.dead_letter, message.body, dead_letter_headers(result, message.origin))

    def deliver_partition(self, records: list) -> int | None:
        """Deliver in order; the offset to commit (the next one to read), or None when nothing was handled."""
        done = None
        for record in records:
            origin = {"topic": record.topic, "partition": str(record.partition), "offset": str(record.offset)}
            if not self.delivery.handle(Message(record.value or b"", origin), self.dead_letter):
                break
            done = record.offset + 1
        return done

    def consume(self) -> None:
        from kafka import KafkaConsumer  # noqa: PLC0415
        from kafka.structs import OffsetAndMetadata  # noqa: PLC0415

        consumer = KafkaConsumer(
            self.spec.topic, group_id=self.spec.group, enable_auto_commit=False,
            # a new group reads the topic from its start: what was published while the trigger was being set up
            # is delivered too
            auto_offset_reset="earliest", max_poll_records=MAX_POLL_RECORDS,
            max_poll_interval_ms=MAX_POLL_INTERVAL_MS, **client_options(self.settings))
        try:
            with ThreadPoolExecutor(PARTITION_WORKERS, thread_name_prefix=self.name) as pool:
                self.connected()
                while not self.stopped.is_set():
                    batch = consumer.poll(timeout_ms=500)
                    self.connected()
                    if batch:
                        partitions = list(batch)
                        offsets = pool.map(lambda tp: self.deliver_partition(batch[tp]), partitions)
                        commit = {tp: OffsetAndMetadata(offset, "", -1)
                                  for tp, offset in zip(partitions, offsets) if offset is not None}
                        if commit:  # a partition cut short by a stop is read again by whoever reads next
                            consumer.commit(commit)
                    self.stats.lag = self.lag(consumer)
        finally:
            consumer.close(autocommit=False)

    @staticmethod
    def lag(consumer) -> int | None:
        """End offset minus the next offset to deliver, summed over the assigned partitions, from what the
        fetches already reported (no request of its own)."""
        total = None
        for tp in consumer.assignment():
            end = consumer.highwater(tp)
            if end is None:
                continue
            try:
                position = consumer.position(tp, timeout_ms=0)
            except Exception:  # noqa: BLE001 - a position not known yet: no lag to report for it
                position = None
            if position is not None:
                total = (total or 0) + max(0, end - position)
        return total
