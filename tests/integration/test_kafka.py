"""Kafka through aiokafka: keyed order, acks=all, and data that survives a restart."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import defaultdict

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from connectors.kafka_admin import describe_partitions, ensure_topics
from paystream.topics import topic_specs
from tests.conftest import paystream

MESSAGES = 1000
KEYS = 37


async def _produce(bootstrap: str, topic: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        batch = [
            await producer.send(topic, key=f"k{i % KEYS}".encode(), value=json.dumps({"seq": i}).encode())
            for i in range(MESSAGES)
        ]
        await asyncio.gather(*batch)
    finally:
        await producer.stop()


async def _consume_all(bootstrap: str, topic: str) -> dict[str, list[int]]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=f"test-{uuid.uuid4()}",
        auto_offset_reset="earliest", enable_auto_commit=False,
    )
    await consumer.start()
    by_key: dict[str, list[int]] = defaultdict(list)
    seen = 0
    try:
        while seen < MESSAGES:
            batches = await asyncio.wait_for(consumer.getmany(timeout_ms=1000), timeout=30)
            for records in batches.values():
                for record in records:
                    by_key[record.key.decode()].append(json.loads(record.value)["seq"])
                    seen += 1
    finally:
        await consumer.stop()
    return by_key


def test_ensure_topics_creates_each_topic_once_with_its_partitions(stack, settings):
    fresh = settings.model_copy(update={"topic_prefix": f"test-{uuid.uuid4().hex[:8]}"})
    specs = topic_specs(fresh.topic_prefix, fresh.payment_topic_partitions)
    assert sorted(ensure_topics(fresh)) == sorted(s.name for s in specs)
    assert ensure_topics(fresh) == []  # idempotent: every process calls it at start
    for spec in specs:
        assert describe_partitions(fresh, spec.name) == spec.partitions


def test_keyed_messages_keep_order_and_survive_a_restart(stack, settings):
    bootstrap = stack["kafka"]["address"]
    topic = f"test.order.{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, 6, 1)])
    admin.close()

    asyncio.run(_produce(bootstrap, topic))
    by_key = asyncio.run(_consume_all(bootstrap, topic))
    assert sum(len(v) for v in by_key.values()) == MESSAGES
    assert len(by_key) == KEYS
    for key, seqs in by_key.items():
        assert seqs == sorted(seqs), f"messages of {key} out of order"
        assert seqs == [i for i in range(MESSAGES) if f"k{i % KEYS}" == key]

    down = paystream("stack", "down", "kafka")
    assert down.returncode == 0, down.stderr
    assert paystream("stack", "status", "kafka").returncode != 0
    up = paystream("stack", "up", "kafka")
    assert up.returncode == 0, up.stdout + up.stderr

    assert asyncio.run(_consume_all(bootstrap, topic)) == by_key
