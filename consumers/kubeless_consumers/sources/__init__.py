"""One module per broker: read a topic as one consumer, commit what was handled, dead-letter what could not be."""
from __future__ import annotations

from kubeless_api import meta
from kubeless_consumers.delivery import Stats, Transport
from kubeless_consumers.fleet import ConsumerSpec, Factory
from kubeless_consumers.settings import Settings

BROKERS = tuple(meta.EVENT_TRIGGERS)


def factory(kind: str, settings: Settings, transport: Transport | None = None) -> Factory:
    """The consumer maker of one broker kind, for the Fleet."""
    from kubeless_consumers.transport import HttpTransport  # noqa: PLC0415

    transport = transport or HttpTransport()
    if kind == "kafka":
        from kubeless_consumers.sources.kafka import KafkaSource, Producers  # noqa: PLC0415

        producers = Producers(settings)
        return lambda spec, stats: KafkaSource(spec, stats, settings, transport, producers=producers)
    if kind == "nats":
        from kubeless_consumers.sources.nats import NATSSource  # noqa: PLC0415

        return lambda spec, stats: NATSSource(spec, stats, settings, transport)
    if kind == "kinesis":
        from kubeless_consumers.sources.kinesis import KinesisSource  # noqa: PLC0415

        return lambda spec, stats: KinesisSource(spec, stats, settings, transport)
    raise ValueError(f"unknown broker {kind!r}: one of {', '.join(BROKERS)}")


__all__ = ["BROKERS", "ConsumerSpec", "Stats", "factory"]
