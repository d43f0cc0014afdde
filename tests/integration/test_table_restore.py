"""A worker's table restored in bulk from a real changelog topic into Faust's own RocksDB files."""

from __future__ import annotations

import uuid

import faust
import pytest
from aiokafka import AIOKafkaProducer
from kafka import KafkaAdminClient

from connectors.kafka_admin import create_topics
from paystream import bootstrap
from paystream.topics import TopicSpec

PARTITIONS = 3


@pytest.fixture
def table(settings, tmp_path):
    app = faust.App(f"restore-test-{uuid.uuid4().hex[:8]}", broker=f"kafka://{settings.kafka_bootstrap}",
                    store="rocksdb://", datadir=str(tmp_path))
    table = app.Table("payments", partitions=PARTITIONS)
    changelog = table.changelog_topic.get_topic_name()
    create_topics(settings.kafka_bootstrap, [TopicSpec(changelog, PARTITIONS, {"cleanup.policy": "compact"})])
    yield table
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    try:
        admin.delete_topics([changelog])
    finally:
        admin.close()


async def _send(settings, topic: str, records: list[tuple[int, bytes, bytes | None]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for partition, key, value in records:
            await producer.send_and_wait(topic, key=key, value=value, partition=partition)
    finally:
        await producer.stop()


def _contents(table) -> dict[int, dict[bytes, bytes]]:
    store = table.data
    contents = {}
    for partition in range(PARTITIONS):
        db = store.rocksdb_options.open(store.partition_path(partition))
        try:
            contents[partition] = dict(db.items())
        finally:
            db.close()
    return contents


async def test_the_table_is_restored_to_the_changelog_end_then_only_the_tail(settings, table):
    topic = table.changelog_topic.get_topic_name()
    first = [(p, f'"pay_{p}_{i}"'.encode(), f'{{"v":{i}}}'.encode()) for p in range(PARTITIONS) for i in range(40)]
    first += [(0, b'"pay_0_1"', b'{"v":"newer"}'),  # a later version of a key wins
              (1, b'"pay_1_2"', None)]  # a tombstone deletes the key
    await _send(settings, topic, first)
    small_batches = settings.model_copy(update={"table_restore_batch": 7})

    restored = await bootstrap.restore_worker_table(small_batches, table)

    assert (restored.records, restored.partitions) == (len(first), PARTITIONS)
    contents = _contents(table)
    offset_key = table.data.offset_key
    assert contents[0][b'"pay_0_1"'] == b'{"v":"newer"}'
    assert contents[0][b'"pay_0_39"'] == b'{"v":39}'
    assert b'"pay_1_2"' not in contents[1]
    assert len(contents[2]) == 40 + 1
    # Faust's persisted offset: the last record applied in each partition, where its recovery resumes.
    assert [contents[p][offset_key] for p in range(PARTITIONS)] == [b"40", b"40", b"39"]

    tail = [(2, b'"pay_2_new"', b'{"v":"tail"}')]
    await _send(settings, topic, tail)
    again = await bootstrap.restore_worker_table(small_batches, table)
    assert (again.records, again.partitions) == (1, 1)
    contents = _contents(table)
    assert contents[2][b'"pay_2_new"'] == b'{"v":"tail"}'
    assert contents[2][offset_key] == b"40"
    assert contents[0][b'"pay_0_1"'] == b'{"v":"newer"}'  # untouched where nothing was new


async def test_an_empty_changelog_restores_nothing(settings, table):
    restored = await bootstrap.restore_worker_table(settings, table)
    assert (restored.records, restored.partitions) == (0, 0)
