"""The Couchbase and Redis adapters against the real services: what the sinks write, the read side reads."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest

from connectors.redis_cache import idempotency_key
from paystream import bootstrap, messages
from paystream.data_keys import JournaledDataKeys
from paystream.ports import StoredDataKey, TransactionRef
from tests.unit.fakes import fresh_payment


@pytest.fixture
async def couchbase(settings):
    store = await bootstrap.document_store(settings)
    yield store
    await store.close()


@pytest.fixture
async def redis_cache(settings):
    cache = bootstrap.receipt_cache(settings)
    yield cache
    await cache.close()


async def test_couchbase_keeps_payments_receipts_and_the_transaction_index(couchbase):
    payment, receipt = fresh_payment()
    ref = TransactionRef(payment.payment_id, payment.user_id, payment.account)
    await couchbase.upsert_payment(payment)
    await couchbase.upsert_transaction(payment.transaction_id, ref)
    await couchbase.upsert_receipt(receipt)

    assert await couchbase.get_payment(payment.payment_id) == payment
    assert await couchbase.get_transaction(payment.transaction_id) == ref
    # Receipts are read from any copy: a replica may lag the write by a few milliseconds.
    for _ in range(100):
        if (found := await couchbase.get_receipt(receipt.receipt_id)) is not None:
            break
        await asyncio.sleep(0.05)
    assert found == receipt


async def test_couchbase_answers_none_for_what_it_does_not_hold(couchbase):
    assert await couchbase.get_payment("pay_missing") is None
    assert await couchbase.get_receipt("rcpt_missing") is None
    assert await couchbase.get_transaction("pi_missing") is None


async def test_an_upsert_twice_is_one_document(couchbase):
    payment, _ = fresh_payment()
    await couchbase.upsert_payment(payment)
    await couchbase.upsert_payment(payment)
    assert await couchbase.get_payment(payment.payment_id) == payment


async def test_a_users_index_lists_each_id_once_however_often_it_is_written(couchbase):
    user = f"user-{uuid.uuid4().hex[:8]}"
    for payment_id, at in (("pay_a", "2026-01-01T00:00:01Z"), ("pay_b", "2026-01-01T00:00:02Z"),
                           ("pay_a", "2026-01-01T00:00:01Z")):
        await couchbase.index_for_user("payments", "acct-1", user, payment_id, at)
    assert await couchbase.user_index("payments", "acct-1", user) == {"pay_a": "2026-01-01T00:00:01Z",
                                                                     "pay_b": "2026-01-01T00:00:02Z"}
    assert await couchbase.user_index("payments", "acct-2", user) == {}
    assert await couchbase.user_index("receipts", "acct-1", user) == {}


async def test_the_sinks_batch_writer_upserts_documents_and_many_index_ids_at_once(couchbase, settings):
    bulk = await bootstrap.store_writer(settings)
    try:
        writer = bootstrap.sink_writer(bulk, couchbase)
        pairs = [fresh_payment() for _ in range(3)]
        payments, receipts = [p for p, _ in pairs], [r for _, r in pairs]
        refs = {p.transaction_id: TransactionRef(p.payment_id, p.user_id, p.account) for p in payments}
        user = f"user-{uuid.uuid4().hex[:8]}"
        ids = {f"pay_{i:04d}": f"2026-01-01T00:00:{i % 60:02d}Z" for i in range(40)}  # three sub-document writes
        for _ in range(2):  # a batch written again writes the same
            await writer.upsert_payments(payments)
            await writer.upsert_transactions(refs)
            await writer.upsert_receipts(receipts)
            await writer.index_for_users({("payments", "acct-1", user): ids})
        await writer.index_for_users({("payments", "acct-1", user): {"pay_late": "2026-01-02T00:00:00Z"}})
        for payment, receipt in pairs:
            assert await couchbase.get_payment(payment.payment_id) == payment
            assert await couchbase.get_transaction(payment.transaction_id) == refs[payment.transaction_id]
            assert await couchbase._get(f"receipt::{receipt.receipt_id}") == receipt.model_dump(mode="json")
        assert await couchbase.user_index("payments", "acct-1", user) == ids | {"pay_late": "2026-01-02T00:00:00Z"}
        with pytest.raises(ValueError):  # a document no store key can name: the message's own failure
            await writer.upsert_payments([payments[0].model_copy(update={"payment_id": "pay bad"})])
    finally:
        await bulk.close()


async def journaled_record(settings, account: str, user_id: str) -> tuple[bool, bytes | None]:
    """(whether the data-keys topic has a record of this user, the key of the latest: None for a tombstone)."""
    log = bootstrap.event_log(settings)
    topic = settings.topics.data_keys
    ends = await log.end_offsets(topic)
    found, latest = False, None
    async for records in log.read({(topic, p): (0, end) for p, end in ends.items() if end}, 1000):
        for record in records:
            if record.key == messages.data_key_id(account, user_id):
                found = True
                latest = None if record.value is None else messages.decode("data_keys", record.value).key
    return found, latest


async def test_a_users_data_key_is_made_once_kept_on_its_topic_and_forgotten(couchbase, settings, pipeline):
    await asyncio.to_thread(bootstrap.ensure_topics, settings)
    deadline = asyncio.get_running_loop().time() + 30
    while not await couchbase.holds_history():  # the sinks mark the store within seconds of starting
        assert asyncio.get_running_loop().time() < deadline, "the sinks never marked the store"
        await asyncio.sleep(0.5)
    journal = await bootstrap.data_key_journal(settings)
    keys = JournaledDataKeys(couchbase, journal)
    user = f"user-{uuid.uuid4().hex[:8]}"
    try:
        assert await keys.get("acct-1", user) is None
        first, again = await asyncio.gather(keys.get_or_create("acct-1", user), keys.get_or_create("acct-1", user))
        assert first == again and len(first) == 32 and await keys.get("acct-1", user) == first
        assert await couchbase.data_key("acct-1", user) == StoredDataKey(first, journaled=True)
        assert await journaled_record(settings, "acct-1", user) == (True, first)
        assert await keys.get("acct-2", user) is None
        assert await keys.forget("acct-1", user) is True
        assert await keys.get("acct-1", user) is None
        assert await journaled_record(settings, "acct-1", user) == (True, None)  # the tombstone is last
        assert await keys.forget("acct-1", user) is False
    finally:
        await journal.close()


def test_store_keys_refuse_ids_that_could_collide():
    from connectors.couchbase_store import user_index_key
    from connectors.redis_cache import receipt_key

    # ("a:b", "c") and ("a", "b:c") would both be "a:b:c": ids with a separator are refused outright.
    for build in (lambda: receipt_key("a:b", "c", "rcpt_1"), lambda: receipt_key("a", "b:c", "rcpt_1"),
                  lambda: user_index_key("payments", "acct::x", "u")):
        with pytest.raises(ValueError):
            build()


async def test_redis_caches_receipts_under_their_owner(redis_cache):
    _, receipt = fresh_payment()
    await redis_cache.put_receipt(receipt)
    cached = await redis_cache.get_receipt(receipt.account, receipt.user_id, receipt.receipt_id)
    assert cached is not None and receipt.model_validate_json(cached) == receipt
    assert await redis_cache.get_receipt(receipt.account, "someone-else", receipt.receipt_id) is None
    assert await redis_cache.get_receipt("another-account", receipt.user_id, receipt.receipt_id) is None
    ttl = await redis_cache.client.ttl(f"receipt:{receipt.account}:{receipt.user_id}:{receipt.receipt_id}")
    assert 0 < ttl <= redis_cache.receipt_ttl_s


async def test_redis_caches_a_batch_of_receipts_in_one_pipeline_for_their_lifetime(redis_cache):
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    old = fresh_payment()[1].model_copy(update={"issued_at": "2020-01-01T00:00:00Z"})
    receipts = [fresh_payment()[1].model_copy(update={"issued_at": now}) for _ in range(3)] + [old]

    def ttl(receipt):
        return redis_cache.client.ttl(f"receipt:{receipt.account}:{receipt.user_id}:{receipt.receipt_id}")

    # A rebuild caches each for what is left of its lifetime: the old one not at all.
    await redis_cache.put_receipts(receipts)
    assert await ttl(old) == -2 and 0 < await ttl(receipts[0]) <= redis_cache.receipt_ttl_s
    # The sinks cache live receipts for the whole lifetime from now, as one written alone.
    await redis_cache.put_receipts(receipts, whole_lifetime=True)
    for receipt in receipts:
        cached = await redis_cache.get_receipt(receipt.account, receipt.user_id, receipt.receipt_id)
        assert cached is not None and receipt.model_validate_json(cached) == receipt
        assert redis_cache.receipt_ttl_s - 60 < await ttl(receipt) <= redis_cache.receipt_ttl_s


async def test_redis_indexes_transactions(redis_cache):
    ref = TransactionRef("pay_x", "user-1", "acct-1")
    transaction_id = f"pi_{uuid.uuid4().hex[:12]}"
    assert await redis_cache.get_transaction(transaction_id) is None
    await redis_cache.put_transaction(transaction_id, ref)
    assert await redis_cache.get_transaction(transaction_id) == ref


async def test_an_idempotency_key_remembers_its_first_body_and_answer(redis_cache):
    key = f"acct-1:start:{uuid.uuid4().hex}"
    assert await redis_cache.claim_idempotency_key(key, "body-a") is None
    assert await redis_cache.claim_idempotency_key(key, "body-a") == ("body-a", None)
    await redis_cache.store_response(key, b"sealed-answer")
    await redis_cache.store_response(key, b"a later answer is not kept")
    assert await redis_cache.claim_idempotency_key(key, "body-b") == ("body-a", b"sealed-answer")
    assert 0 < await redis_cache.client.ttl(idempotency_key(key)) <= redis_cache.idempotency_ttl_s


async def test_api_keys_are_kept_as_hashes_and_revoked(settings):
    from paystream import apikeys

    store = bootstrap.api_key_store(settings)
    try:
        key, record = await apikeys.create(store, "acct-keys", "5/second")
        assert (await store.find(apikeys.key_hash(key))).account == "acct-keys"
        raw = await store.client.hgetall("paystream:apikeys")
        assert not any(key.encode() in k or key.encode() in v for k, v in raw.items())
        assert record.key_id in {r.key_id for r in await store.all()}
        assert await store.revoke(record.key_id) is True
        assert await store.find(apikeys.key_hash(key)) is None
        with pytest.raises(ValueError):
            await apikeys.create(store, "acct:with:separators")
    finally:
        await store.close()


async def test_the_rate_limit_refuses_a_burst_then_admits_the_next_window(settings):
    limiter = bootstrap.rate_limiter(settings)
    key_id = f"key_{uuid.uuid4().hex[:16]}"
    admitted = [(await limiter.hit(key_id, "5/second"))[0] for _ in range(8)]
    assert admitted == [True] * 5 + [False] * 3
    allowed, retry_after = await limiter.hit(key_id, "5/second")
    assert not allowed and retry_after == 1
    # The next window admits again: asked until it does (polled, bounded: a window is one second).
    deadline = asyncio.get_running_loop().time() + 10
    while not (await limiter.hit(key_id, "5/second"))[0]:
        assert asyncio.get_running_loop().time() < deadline, "the next window never admitted"
        await asyncio.sleep(0.1)
    assert (await limiter.hit(f"{key_id}-other", "5/second"))[0] is True  # per key


async def test_the_apis_store_connects_in_the_background_and_reads_once_connected(settings):
    payment, _ = fresh_payment()
    store = bootstrap.read_store(settings)
    try:
        assert await store.wait_connected(30)
        assert await store.get_payment(payment.payment_id) is None
    finally:
        await store.close()


async def test_the_apis_store_answers_unavailable_while_the_cluster_is_away(settings):
    from paystream.domain.errors import Unavailable
    from tests.conftest import closed_port

    away = settings.model_copy(update={"couchbase_connstr": f"couchbase://127.0.0.1:{closed_port()}"})
    store = bootstrap.read_store(away)
    try:
        assert not await store.wait_connected(0.5)
        with pytest.raises(Unavailable):
            await store.get_payment("pay_x")
        with pytest.raises(Unavailable):
            await store.get_receipt("rcpt_x")
    finally:
        await store.close()
