"""The Couchbase and Redis adapters against the real services: what the sinks write, the read side reads."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from paystream import bootstrap
from paystream.ports import TransactionRef
from tests.unit.test_messages import RECEIPTED


def fresh_payment():
    """A receipted payment with ids no other test uses."""
    suffix = uuid.uuid4().hex[:12]
    payment = RECEIPTED.model_copy(update={"payment_id": f"pay_{suffix}", "receipt_id": f"rcpt_{suffix}",
                                           "transaction_id": f"pi_{suffix}"})
    return payment, payment.receipt()


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
    ref = TransactionRef(payment.payment_id, payment.user_id)
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


async def test_redis_caches_receipts_under_their_owner(redis_cache):
    _, receipt = fresh_payment()
    await redis_cache.put_receipt(receipt)
    cached = await redis_cache.get_receipt(receipt.user_id, receipt.receipt_id)
    assert cached is not None and receipt.model_validate_json(cached) == receipt
    assert await redis_cache.get_receipt("someone-else", receipt.receipt_id) is None
    ttl = await redis_cache.client.ttl(f"receipt:{receipt.user_id}:{receipt.receipt_id}")
    assert 0 < ttl <= redis_cache.receipt_ttl_s


async def test_redis_indexes_transactions(redis_cache):
    ref = TransactionRef("pay_x", "user-1")
    transaction_id = f"pi_{uuid.uuid4().hex[:12]}"
    assert await redis_cache.get_transaction(transaction_id) is None
    await redis_cache.put_transaction(transaction_id, ref)
    assert await redis_cache.get_transaction(transaction_id) == ref


async def test_an_idempotency_key_remembers_its_first_body(redis_cache):
    key = f"client:start:{uuid.uuid4().hex}"
    assert await redis_cache.claim_idempotency_key(key, "body-a") is None
    assert await redis_cache.claim_idempotency_key(key, "body-a") == "body-a"
    assert await redis_cache.claim_idempotency_key(key, "body-b") == "body-a"


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
    from tests.integration.test_cache_outages import closed_port

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
