"""Reading topics from the outside, as a downstream consumer would (kafka-python)."""

from __future__ import annotations

import json
import time
import uuid

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

from paystream import messages
from tests.unit.fakes import START


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
        committed = {tp.partition: meta.offset for tp, meta in admin.list_group_offsets(group)[group].items()
                     if tp.topic == topic}
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


def wait_reply(bootstrap: str, topic: str, since: dict[int, int], correlation_id: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for raw in read_raw_since(bootstrap, topic, since, until=2):
            reply = json.loads(raw)
            if reply.get("correlation_id") == correlation_id:
                return reply
    raise AssertionError(f"no reply for {correlation_id}")


def produce(bootstrap: str, topic: str, key: str, value: bytes, correlation_id: str) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    producer.send(topic, key=key.encode(), value=value, headers=[("correlation_id", correlation_id.encode())])
    producer.flush()
    producer.close()


def command(**change) -> bytes:
    payment_id = f"pay_{uuid.uuid4().hex[:24]}"
    wire = json.loads(messages.encode(START)) | {"payment_id": payment_id, "command_id": f"cmd_{uuid.uuid4().hex}",
                                                  "user_id": f"user-{uuid.uuid4().hex[:8]}"}
    return json.dumps(wire | change).encode(), payment_id
