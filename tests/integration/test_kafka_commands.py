"""The Kafka command bus: a command goes out keyed by payment id, and the reply with its
correlation id comes back to the one waiting for it."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from connectors.kafka_admin import ensure_topics
from connectors.kafka_commands import KafkaCommandBus
from paystream import messages
from paystream.domain.commands import CommandReply
from tests.unit.fakes import START


@pytest.fixture
def topics(settings):
    fresh = settings.model_copy(update={"topic_prefix": f"test-{uuid.uuid4().hex[:8]}"})
    ensure_topics(fresh)
    return fresh.topics


async def _answer_one(bootstrap: str, topics) -> dict:
    """A stand-in worker: read one command, reply to it."""
    consumer = AIOKafkaConsumer(topics.commands, bootstrap_servers=bootstrap, group_id=f"t-{uuid.uuid4()}",
                                auto_offset_reset="earliest")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await consumer.start()
    await producer.start()
    try:
        record = await asyncio.wait_for(consumer.getone(), 30)
        command = messages.decode("commands", record.value)
        correlation_id = dict(record.headers)["correlation_id"].decode()
        await producer.send_and_wait(topics.replies, key=record.key, value=messages.encode(CommandReply(
            correlation_id=correlation_id, payment_id=command.payment_id, command_id=command.command_id, ok=True)))
        return {"key": record.key.decode(), "command": command, "correlation_id": correlation_id}
    finally:
        await consumer.stop()
        await producer.stop()


async def test_a_command_gets_its_reply(settings, topics):
    bus = KafkaCommandBus(settings.kafka_bootstrap, topics.commands, topics.replies)
    await bus.start()
    try:
        worker = asyncio.create_task(_answer_one(settings.kafka_bootstrap, topics))
        reply = await bus.send(START, "corr-1", timeout_s=30)
        seen = await worker
    finally:
        await bus.stop()
    assert seen == {"key": START.payment_id, "command": START, "correlation_id": "corr-1"}
    assert (reply.ok, reply.correlation_id, reply.command_id) == (True, "corr-1", START.command_id)
    assert bus.waiting == 0


async def test_no_reply_within_the_wait_is_none(settings, topics):
    bus = KafkaCommandBus(settings.kafka_bootstrap, topics.commands, topics.replies)
    await bus.start()
    try:
        assert await bus.send(START, "corr-2", timeout_s=0.5) is None
    finally:
        await bus.stop()
