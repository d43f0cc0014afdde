"""Commands to the worker over Kafka, and their replies back (the CommandSender port).

Every ingress reads every partition of the reply topic (no consumer group)
and picks out the replies to its own requests by correlation id; the rest
belong to other ingress processes and are dropped.

A command is handed to the producer only once its partition's leader is
reachable. The producer is idempotent, so it would keep a command it holds
until Kafka comes back, however long: a client told 503 must be able to trust
that nothing was written. So while Kafka is down a write fails within
`kafka_connect_timeout_s` with `Unavailable`, having written nothing; a
command handed over answers within the reply timeout (202 if Kafka went away
after it was handed over: it will be delivered when Kafka is back).
"""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from connectors.kafka_writable import writable_partition
from paystream import messages
from paystream.domain.commands import Command, CommandReply
from paystream.domain.errors import Unavailable
from paystream.observability.logs import get_logger

log = get_logger("paystream.ingress")


class KafkaCommandBus:
    def __init__(self, bootstrap: str, commands_topic: str, replies_topic: str,
                 connect_timeout_s: float = 1.0, linger_ms: int = 0, max_batch_bytes: int = 16384) -> None:
        self.commands_topic = commands_topic
        self.replies_topic = replies_topic
        self.connect_timeout_s = connect_timeout_s
        self.producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=linger_ms,
            max_batch_size=max_batch_bytes,
        )
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
            auto_offset_reset="latest",
        )
        self._pending: dict[str, asyncio.Future] = {}
        self._reader: asyncio.Task | None = None

    async def start(self) -> None:
        await self.producer.start()
        await self.consumer.start()
        # The producer fetches topic metadata on demand; the group-less consumer does not.
        partitions = await self.producer.partitions_for(self.replies_topic)
        if not partitions:
            raise RuntimeError(f"reply topic {self.replies_topic} does not exist")
        await self.producer.partitions_for(self.commands_topic)
        self.consumer.assign([TopicPartition(self.replies_topic, p) for p in partitions])
        await self.consumer.seek_to_end()
        self._reader = asyncio.create_task(self._read_replies(), name="reply-reader")

    async def stop(self) -> None:
        if self._reader:
            self._reader.cancel()
        await self.consumer.stop()
        await self.producer.stop()

    @property
    def waiting(self) -> int:
        return len(self._pending)

    async def publish(self, topic: str, key: bytes, value: bytes) -> None:
        await self.producer.send_and_wait(topic, key=key, value=value)

    async def send(self, command: Command, correlation_id: str, timeout_s: float) -> CommandReply | None:
        """Produce the command (acknowledged by all replicas) and wait for its reply.

        None when no reply came within `timeout_s`; the command is in Kafka
        either way and the payment goes on.
        """
        key = command.payment_id.encode()
        partition = await self._writable_partition(key)
        deadline = time.monotonic() + timeout_s
        waiter = asyncio.get_running_loop().create_future()
        self._pending[correlation_id] = waiter
        try:
            await asyncio.wait_for(self.producer.send_and_wait(
                self.commands_topic, key=key, value=messages.encode(command), partition=partition,
                headers=[("correlation_id", correlation_id.encode())],
            ), timeout_s)
            return await asyncio.wait_for(waiter, max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            return None
        finally:
            self._pending.pop(correlation_id, None)

    async def _writable_partition(self, key: bytes) -> int:
        """The key's partition, once its leader answers; `Unavailable` (nothing written) otherwise."""
        partition = await writable_partition(self.producer, self.commands_topic, key, self.connect_timeout_s)
        if partition is None:
            log.warning("kafka unreachable; refusing the command", topic=self.commands_topic)
            raise Unavailable("kafka_unavailable", "the payment log is unreachable right now; nothing was "
                              "written. Retry with the same Idempotency-Key")
        return partition

    async def _read_replies(self) -> None:
        async for message in self.consumer:
            try:
                reply = messages.decode("replies", message.value)
            except messages.UnreadableMessage as exc:
                # Nobody can be waiting on a reply whose correlation id cannot be read.
                log.error("unreadable reply", partition=message.partition, offset=message.offset, error=exc.error)
                continue
            waiter = self._pending.get(reply.correlation_id)
            if waiter is not None and not waiter.done():
                waiter.set_result(reply)
