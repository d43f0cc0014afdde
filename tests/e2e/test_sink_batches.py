"""The sinks write in batches: a burst lands whole (every payment at its latest version, every
transaction id, every receipt in Couchbase and in the cache, every user-index entry), and a poison
message inside a batch goes to the dead letters alone while the rest of its batch is stored.

A sinks process of the test's own, on topics of its own (so a poison message never reaches the
topics the dev stack's sinks replay after a wipe), writing into the dev stack's Couchbase and Redis
under ids of this run; its web port is the settings' sinks port plus 70.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
import uuid

import pytest
import redis
from aiokafka import AIOKafkaProducer
from couchbase.exceptions import DocumentNotFoundException
from kafka import KafkaAdminClient
from prometheus_client.parser import text_string_to_metric_families

from connectors.couchbase_store import payment_key, receipt_key, transaction_key, user_index_key
from connectors.redis_cache import receipt_key as cached_receipt_key
from devstack.bench.rebuild import fill, lifecycle
from paystream import bootstrap, messages
from paystream.domain.model import Status
from tests.analytics_cluster import TestWorker as OwnProcess
from tests.kafka_probe import end_offsets, read_raw_since

PAYMENTS, USERS = 200, 7  # about 29 ids per user and kind: more than one sub-document write (16 at most)


@pytest.fixture(scope="module")
def sinks(stack, settings, tmp_path_factory):
    run = uuid.uuid4().hex[:8]
    own = settings.model_copy(update={"topic_prefix": f"sinks-test-{run}", "sinks_id": f"sinks-test-{run}"})
    bootstrap.ensure_topics(own)
    folder = tmp_path_factory.mktemp("sinks")
    process = OwnProcess("sinks-test", settings.sinks_web_port + 70, {
        "PAYSTREAM_TOPIC_PREFIX": own.topic_prefix, "PAYSTREAM_SINKS_ID": own.sinks_id,
        "PAYSTREAM_SINKS_WEB_PORT": str(settings.sinks_web_port + 70), "PAYSTREAM_DATA_DIR": str(folder / "data"),
        # Long enough that a burst produced at once is taken in batches, whatever the machine's load.
        "PAYSTREAM_SINKS_BATCH_WITHIN_MS": "200", "PAYSTREAM_LOG_LEVEL": "INFO",
    }, folder / "sinks.log", kind="sinks")
    process.start()
    try:
        process.wait_ready()
        yield own, process, run
    finally:
        process.stop()
        admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, client_id="sinks-test")
        try:
            mine = [t for t in admin.list_topics() if t.startswith((own.topic_prefix + ".", own.sinks_id + "-"))]
            if mine:
                admin.delete_topics(mine)
        finally:
            admin.close()


@pytest.fixture
def cache(stack):
    client = redis.Redis.from_url(stack["redis"]["address"])
    yield client
    client.close()


def document(collection, key: str) -> dict | None:
    try:
        return collection.get(key).content_as[dict]
    except DocumentNotFoundException:
        return None


def batch_sizes(process: OwnProcess, topic: str) -> tuple[float, float]:
    """(batches, events) the sinks wrote from `topic`, from their batch-size histogram."""
    with urllib.request.urlopen(f"{process.url}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples = {s.name: s.value for family in text_string_to_metric_families(text) for s in family.samples
               if s.name.startswith("paystream_sink_batch_size") and s.labels.get("topic") == topic}
    return samples.get("paystream_sink_batch_size_count", 0), samples.get("paystream_sink_batch_size_sum", 0)


async def eventually(check, timeout: float = 60) -> list[str]:
    """Poll `check` (it returns what is still missing) until nothing is, or the time is up."""
    deadline = time.monotonic() + timeout
    while True:
        missing = check()
        if not missing or time.monotonic() > deadline:
            return missing
        await asyncio.sleep(1)


async def test_a_burst_lands_whole_in_batches(sinks, couchbase_collection, cache):
    own, process, run = sinks
    tag = f"sb{run}"
    sent, _ = await fill(own, PAYMENTS, tag=tag, users=USERS)
    assert sent == PAYMENTS * 6
    lives = [lifecycle(i, tag, USERS) for i in range(PAYMENTS)]

    def missing() -> list[str]:
        out = []
        for life in lives:
            final = life[-1]
            doc = document(couchbase_collection, payment_key(final.payment_id))
            if doc is None or (doc["version"], doc["status"]) != (final.version, Status.RECEIPTED.value):
                out.append(f"payment {final.payment_id}: {doc and (doc['version'], doc['status'])}")
            ref = document(couchbase_collection, transaction_key(final.transaction_id))
            if ref != {"payment_id": final.payment_id, "user_id": final.user_id, "account": final.account}:
                out.append(f"transaction {final.transaction_id}: {ref}")
            receipt = final.receipt()
            if document(couchbase_collection, receipt_key(receipt.receipt_id)) != receipt.model_dump(mode="json"):
                out.append(f"receipt {receipt.receipt_id} in Couchbase")
            cached = cache.get(cached_receipt_key(receipt.account, receipt.user_id, receipt.receipt_id))
            if cached is None or messages.decode("receipts", cached) != receipt:
                out.append(f"receipt {receipt.receipt_id} in Redis")
        for kind, ids in (("payments", {life[0].payment_id: (life[0].user_id, life[0].created_at) for life in lives}),
                          ("receipts", {life[-1].receipt_id: (life[-1].user_id, life[-1].receipt().issued_at)
                                        for life in lives})):
            indexes = {}
            for object_id, (user, at) in ids.items():
                if user not in indexes:
                    indexes[user] = (document(couchbase_collection, user_index_key(kind, lives[0][0].account, user))
                                     or {}).get("ids", {})
                if indexes[user].get(object_id) != at:
                    out.append(f"{kind} index of {user}: {object_id}")
        return out

    left = await eventually(missing)
    assert not left, f"{len(left)} not stored, e.g. {left[:5]}"
    # The receipts' cache entries keep the cache's whole lifetime, as one written alone does.
    receipt = lives[0][-1].receipt()
    assert cache.ttl(cached_receipt_key(receipt.account, receipt.user_id, receipt.receipt_id)) > \
        own.receipt_cache_ttl_s - 120
    # And they were written in batches, not one event at a time.
    for topic, events in (("events", PAYMENTS * 5), ("receipts", PAYMENTS)):
        batches, counted = batch_sizes(process, topic)
        assert counted >= events and batches < counted / 5, (topic, batches, counted)
    # One log line per batch, not one per event.
    lines = [json.loads(line) for line in process.log.read_text().splitlines() if line.startswith("{")]
    assert 0 < len([line for line in lines if line.get("event") == "payment events stored"]) < PAYMENTS


async def test_a_poison_message_in_a_batch_is_set_aside_alone(sinks, couchbase_collection, cache):
    own, process, run = sinks
    receipts = [lifecycle(i, f"sp{run}", USERS)[-1].receipt() for i in range(40)]
    # Readable, but no store takes it: its id is outside the charset store keys are made of.
    poison = receipts[20].model_copy(update={"receipt_id": "rcpt poison!"})
    dead = end_offsets(own.kafka_bootstrap, own.topics.dead_letters)
    producer = AIOKafkaProducer(bootstrap_servers=own.kafka_bootstrap, acks="all", linger_ms=50)
    await producer.start()
    try:
        # One partition, sent at once: the poison message sits inside a batch of good ones.
        sent = [await producer.send(own.topics.receipts, key=r.receipt_id.encode(), value=messages.encode(r),
                                    partition=0) for r in receipts[:20] + [poison] + receipts[21:]]
        where = (await asyncio.gather(*sent))[20]
    finally:
        await producer.stop()
    good = receipts[:20] + receipts[21:]

    def missing() -> list[str]:
        out = []
        for r in good:
            if document(couchbase_collection, receipt_key(r.receipt_id)) is None:
                out.append(f"{r.receipt_id} in Couchbase")
            if cache.get(cached_receipt_key(r.account, r.user_id, r.receipt_id)) is None:
                out.append(f"{r.receipt_id} in Redis")
            ids = (document(couchbase_collection, user_index_key("receipts", r.account, r.user_id)) or {}).get("ids", {})
            if r.receipt_id not in ids:
                out.append(f"{r.receipt_id} in its user's index")
        return out

    left = await eventually(missing)
    assert not left, left[:5]
    letters = [messages.decode("dead_letters", raw)
               for raw in read_raw_since(own.kafka_bootstrap, own.topics.dead_letters, dead, until=5)]
    assert [(letter.topic, letter.partition, letter.offset, letter.attempts) for letter in letters] == [
        (own.topics.receipts, 0, where.offset, own.poison_max_attempts)]
    assert letters[0].component == "sinks" and "not a valid id" in letters[0].error
    lines = process.log.read_text()
    assert "a batch failed on its own" in lines
