"""Reading topics from the outside, as a downstream consumer would (kafka-python)."""

from __future__ import annotations

import json
import time

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition


def _consumer(bootstrap: str) -> KafkaConsumer:
    return KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = _consumer(bootstrap)
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        return {tp.partition: off for tp, off in consumer.end_offsets(tps).items()}
    finally:
        consumer.close()


def uncommitted(bootstrap: str, group: str, topic: str) -> int:
    """How many of `topic`'s records `group` has not committed yet (its lag, as Kafka keeps it)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        # kafka-python 3 (the lock's) names it list_group_offsets, answered per group.
        offsets = admin.list_group_offsets(group).get(group, {})
        committed = {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic}
    finally:
        admin.close()
    return sum(end - max(committed.get(p, 0), 0) for p, end in end_offsets(bootstrap, topic).items())


def read_since(bootstrap: str, topic: str, since: dict[int, int], until: float = 15.0,
               want: int | None = None) -> list[dict]:
    """Every message appended after `since`, up to the current end (or until `want` arrive), as JSON."""
    return [json.loads(value) for value in read_raw_since(bootstrap, topic, since, until, want)]


def read_raw_since(bootstrap: str, topic: str, since: dict[int, int], until: float = 15.0,
                   want: int | None = None) -> list[bytes]:
    """Every message value appended after `since`, as the bytes on the topic."""
    return [r.value for r in _records_since(bootstrap, topic, since, until, want)]


def read_raw_headers_since(bootstrap: str, topic: str, since: dict[int, int], until: float = 15.0) -> list[dict]:
    """The headers of every message appended after `since`, decoded, one dict per message."""
    return [{k: v.decode(errors="replace") for k, v in (r.headers or [])}
            for r in _records_since(bootstrap, topic, since, until)]


def _records_since(bootstrap: str, topic: str, since: dict[int, int], until: float,
                   want: int | None = None) -> list:
    """The records appended after `since`, up to the current end (or until `want` arrive)."""
    consumer = _consumer(bootstrap)
    try:
        tps = [TopicPartition(topic, p) for p in since]
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, since[tp.partition])
        deadline = time.monotonic() + until
        found: list = []
        while time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                found.extend(records)
            ends = consumer.end_offsets(tps)
            caught_up = all(consumer.position(tp) >= ends[tp] for tp in tps)
            if (want is not None and len(found) >= want) or (want is None and caught_up):
                break
        return found
    finally:
        consumer.close()
