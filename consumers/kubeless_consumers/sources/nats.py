"""NATS, through nats-py: a queue subscription per (trigger, function), or a durable JetStream pull consumer.

Core NATS (the trigger names no stream) keeps nothing for a subscriber that is away and acknowledges nothing: a
message is retried and dead-lettered like any other, but one published while no consumer runs is lost, as the
protocol gives. With a stream, a durable pull consumer of the group's name reads it: a message is acknowledged
only once handled, a redeployed function continues from the durable's position, and a long retry tells JetStream
the message is still in progress so that it is not handed out again.

Each consumer runs its own event loop on its thread; the blocking call to the function runs in an executor so the
loop keeps answering the server's pings meanwhile.
"""
from __future__ import annotations

import asyncio
import re

from kubeless_consumers.delivery import Message, Result, dead_letter_headers
from kubeless_consumers.sources.base import Source

CLIENT_NAME = "kubeless-nats-trigger-controller"
PENDING_MESSAGES = 256   # core NATS: what the client buffers before it drops (the server calls it a slow consumer)
FETCH_BATCH = 10
ACK_WAIT = 60            # seconds JetStream waits for an ack before handing a message out again
DEAD_LETTER_STREAM_SUFFIX = "_DEAD_LETTER"
# JetStream names (streams, durables) cannot hold these.
NAME_FORBIDDEN = re.compile(r"[.*>\s/\\]")


def jetstream_name(name: str) -> str:
    return NAME_FORBIDDEN.sub("_", name)


class NATSSource(Source):
    def consume(self) -> None:
        asyncio.run(self._consume())

    async def _consume(self) -> None:
        import nats  # noqa: PLC0415 - only this image has nats-py

        connection = await nats.connect(self.settings.nats_url, name=CLIENT_NAME, connect_timeout=5,
                                        max_reconnect_attempts=-1, reconnect_time_wait=1, allow_reconnect=True)
        try:
            if self.spec.stream:
                await self._jetstream(connection)
            else:
                await self._core(connection)
        finally:
            await connection.close()

    async def _stopped(self) -> bool:
        await asyncio.sleep(0)
        return self.stopped.is_set()

    async def _handle(self, message: Message, dead_letter, heartbeat=None) -> bool:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self.delivery.handle, message, dead_letter, heartbeat)

    async def _core(self, connection) -> None:
        loop = asyncio.get_running_loop()
        subscription = await connection.subscribe(self.spec.topic, queue=self.spec.group,
                                                  pending_msgs_limit=PENDING_MESSAGES)
        self.connected()

        def dead_letter(message: Message, result: Result) -> None:
            asyncio.run_coroutine_threadsafe(connection.publish(
                self.spec.dead_letter, message.body, headers=dead_letter_headers(result, message.origin)),
                loop).result(30)
            asyncio.run_coroutine_threadsafe(connection.flush(10), loop).result(30)

        while not await self._stopped():
            try:
                msg = await subscription.next_msg(timeout=0.5)
            except asyncio.TimeoutError:
                self._check(connection)
                continue
            await self._handle(Message(msg.data, {"subject": msg.subject}), dead_letter)
        await subscription.unsubscribe()

    async def _jetstream(self, connection) -> None:
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy  # noqa: PLC0415
        from nats.js.errors import NoStreamResponseError, NotFoundError  # noqa: PLC0415

        loop = asyncio.get_running_loop()
        js = connection.jetstream()
        await self._ensure_stream(js, self.spec.stream, self.spec.topic, NotFoundError)
        durable = jetstream_name(self.spec.group)
        subscription = await js.pull_subscribe(
            self.spec.topic, durable=durable, stream=self.spec.stream,
            config=ConsumerConfig(durable_name=durable, ack_policy=AckPolicy.EXPLICIT, ack_wait=ACK_WAIT,
                                  deliver_policy=DeliverPolicy.ALL, max_ack_pending=FETCH_BATCH * 10))
        self.connected()

        def dead_letter(message: Message, result: Result) -> None:
            headers = dead_letter_headers(result, message.origin)
            publish = asyncio.run_coroutine_threadsafe(self._publish_dead_letter(
                js, message.body, headers, NoStreamResponseError, NotFoundError), loop)
            publish.result(60)

        while not await self._stopped():
            try:
                batch = await subscription.fetch(FETCH_BATCH, timeout=1)
            except asyncio.TimeoutError:
                self._check(connection)
                continue
            for msg in batch:
                metadata = msg.metadata
                origin = {"stream": metadata.stream, "subject": msg.subject,
                          "sequence": str(metadata.sequence.stream)}

                def heartbeat(msg=msg) -> None:
                    asyncio.run_coroutine_threadsafe(msg.in_progress(), loop)

                if await self._handle(Message(msg.data, origin), dead_letter, heartbeat):
                    await msg.ack_sync(timeout=10)
                else:  # stopped: hand it back at once rather than after ACK_WAIT
                    await msg.nak()

    async def _ensure_stream(self, js, name: str, subject: str, not_found) -> None:
        """The stream, made to capture the subject when it does not exist yet (an existing one is left alone)."""
        try:
            await js.stream_info(name)
        except not_found:
            await js.add_stream(name=name, subjects=[subject])

    async def _publish_dead_letter(self, js, body: bytes, headers: dict, no_stream, not_found) -> None:
        """Into whatever stream captures the dead-letter subject; without one, into a stream made for it."""
        try:
            await js.publish(self.spec.dead_letter, body, headers=headers, timeout=10)
        except no_stream:
            name = jetstream_name(self.spec.stream + DEAD_LETTER_STREAM_SUFFIX)
            await self._ensure_stream(js, name, self.spec.dead_letter, not_found)
            await js.publish(self.spec.dead_letter, body, headers=headers, timeout=10)

    def _check(self, connection) -> None:
        """The connection's state, in the stats: nats-py reconnects on its own, the status should say when."""
        if connection.is_connected:
            self.connected()
        else:
            with self.stats.lock:
                self.stats.running, self.stats.broker_error = False, f"not connected to {self.settings.nats_url}"
