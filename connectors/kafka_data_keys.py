"""The DataKeyJournal port on Kafka: users' data keys on the compacted data-keys topic.

Written with the process's own producer (acks from every in-sync replica,
idempotent), keyed by account and user so compaction keeps each user's latest
record: their key, or the tombstone that forgets them.
"""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from connectors.kafka_writable import writable_partition
from paystream import messages
from paystream.domain.errors import Unavailable


class KafkaDataKeyJournal:
    def __init__(self, producer: AIOKafkaProducer, topic: str, timeout_s: float, connect_timeout_s: float,
                 owns_producer: bool = False) -> None:
        self.producer = producer
        self.topic = topic
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.owns_producer = owns_producer

    @classmethod
    async def started(cls, bootstrap: str, topic: str, timeout_s: float, connect_timeout_s: float
                      ) -> KafkaDataKeyJournal:
        """With a producer of its own (a CLI command); `close()` stops it."""
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
        await producer.start()
        return cls(producer, topic, timeout_s, connect_timeout_s, owns_producer=True)

    async def close(self) -> None:
        if self.owns_producer:
            await self.producer.stop()

    async def record(self, account: str, user_id: str, key: bytes | None) -> None:
        value = None if key is None else messages.encode(messages.DataKeyRecorded.of(account, user_id, key))
        message_key = messages.data_key_id(account, user_id)
        # At once while Kafka is unreachable, not after the send's own timeout.
        partition = await writable_partition(self.producer, self.topic, message_key, self.connect_timeout_s)
        try:
            if partition is None:
                raise KafkaError("the data-keys topic's leader is unreachable")
            await asyncio.wait_for(self.producer.send_and_wait(
                self.topic, key=message_key, value=value, partition=partition), self.timeout_s)
        except (TimeoutError, KafkaError) as exc:
            raise Unavailable("kafka_unavailable", "the log is unreachable right now, so the user's data key "
                              "cannot be kept; nothing was sealed with it. Retry shortly") from exc
