"""Kafka topics read as a log (the EventLog port): end offsets, a group's commits, ranges of records.

Ranges are read with a consumer outside any group (nothing is committed), so a
rebuild never moves the sinks' own place in the topics.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from paystream.ports import LogRecord


async def _stop(consumer: AIOKafkaConsumer) -> None:
    """Stop a consumer outside any group. aiokafka (0.14) gives such a consumer a task that stop() cancels
    and awaits: one cancelled before its first turn raises CancelledError out of stop() (seen in CI, a
    consumer stopped straight after `end_offsets`). One turn of the event loop first lets it start."""
    await asyncio.sleep(0)
    await consumer.stop()


class KafkaEventLog:
    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap

    def _consumer(self) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest", max_partition_fetch_bytes=4 * 1024 * 1024,
                                fetch_max_bytes=32 * 1024 * 1024)

    async def end_offsets(self, topic: str) -> dict[int, int]:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            (described,) = await admin.describe_topics([topic])
        finally:
            await admin.close()
        consumer = self._consumer()
        await consumer.start()
        try:
            ends = await consumer.end_offsets([TopicPartition(topic, p["partition"]) for p in described["partitions"]])
            return {tp.partition: offset for tp, offset in ends.items()}
        finally:
            await _stop(consumer)

    async def committed(self, group: str, topic: str) -> dict[int, int]:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            offsets = await admin.list_consumer_group_offsets(group)
        finally:
            await admin.close()
        return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic and meta.offset >= 0}

    async def read(self, ranges: dict[tuple[str, int], tuple[int, int]], batch: int) -> AsyncIterator[list[LogRecord]]:
        if not ranges:  # a consumer with nothing assigned would wait forever
            return
        consumer = self._consumer()
        await consumer.start()
        try:
            ends = {TopicPartition(topic, p): end for (topic, p), (_, end) in ranges.items()}
            consumer.assign(list(ends))
            for tp in ends:
                consumer.seek(tp, ranges[(tp.topic, tp.partition)][0])
            open_tps = {tp for tp in ends if await consumer.position(tp) < ends[tp]}
            consumer.pause(*(set(ends) - open_tps))
            while open_tps:
                fetched = await consumer.getmany(*open_tps, timeout_ms=1000, max_records=batch)
                records = []
                for tp, messages in fetched.items():
                    records += [LogRecord(tp.topic, tp.partition, m.offset, m.value, m.key)
                                for m in messages if m.offset < ends[tp]]
                for tp in list(open_tps):
                    # By position, not by the last offset seen: a compacted topic has holes.
                    if await consumer.position(tp) >= ends[tp]:
                        open_tps.discard(tp)
                        consumer.pause(tp)
                if records:
                    yield records
        finally:
            await _stop(consumer)
