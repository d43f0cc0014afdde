"""The Couchbase and Redis adapters against the real services: what the sinks write, the read side reads."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest

from connectors.redis_cache import idempotency_key
from paystream import bootstrap, messages, projection
from paystream.data_keys import JournaledDataKeys
from paystream.domain.model import Status
from paystream.domain.records import Receipt
from paystream.ports import StoredDataKey, TransactionRef
from paystream.projection import Projection
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


@pytest.fixture
async def writer(settings):
    store_writer = await bootstrap.store_writer(settings)
    yield store_writer
    await store_writer.close()


async def test_couchbase_keeps_payments_receipts_and_the_transaction_index(couchbase, writer):
    payment, receipt = fresh_payment()
    ref = TransactionRef(payment.payment_id, payment.user_id, payment.account)
    await writer.write_payments([payment])
    await writer.write_transactions({payment.transaction_id: ref})
    await writer.write_receipts([receipt])

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


async def test_a_write_twice_is_one_document(couchbase, writer):
    payment, _ = fresh_payment()
    assert await writer.write_payments([payment]) == 1
    assert await writer.write_payments([payment]) == 0  # the store holds that version already
    assert await couchbase.get_payment(payment.payment_id) == payment


def versions(payment):
    """The payment at three versions, oldest first."""
    return [payment.model_copy(update={"version": payment.version + n, "updated_at": f"2026-01-01T00:00:0{n}Z"})
            for n in range(3)]


async def test_an_older_version_never_replaces_a_newer_one_through_the_one_writer(couchbase, writer, settings):
    payment, _ = fresh_payment()
    oldest, middle, newest = versions(payment)
    assert await writer.write_payments([middle]) == 1
    assert await writer.write_payments([newest]) == 1  # what it wrote a moment ago: replaced under its CAS
    assert await writer.write_payments([oldest]) == 0
    assert await writer.write_payments([middle]) == 0
    assert await couchbase.get_payment(payment.payment_id) == newest
    # Another writer (the rebuild of another process, a second sinks) knows nothing of this one's CAS:
    # it reads what the store holds before it writes, and writes only what is newer.
    other = await bootstrap.store_writer(settings)
    try:
        assert await other.write_payments([oldest, middle]) == 0
        assert await couchbase.get_payment(payment.payment_id) == newest
        newer = newest.model_copy(update={"version": newest.version + 1})
        assert await other.write_payments([newer]) == 1
        # The first writer's CAS is stale now: it reads again, and its older version stays out.
        assert await writer.write_payments([newest]) == 0
        assert await couchbase.get_payment(payment.payment_id) == newer
    finally:
        await other.close()


async def test_a_single_write_is_a_batch_of_one_through_the_same_projection(couchbase, writer, redis_cache):
    """A payment's events one at a time, out of order, and its receipt: the store ends at the latest
    version, with the transaction id, the receipt, the cache entry and both users' index entries."""
    payment = fresh_payment()[0].model_copy(update={"user_id": f"user-{uuid.uuid4().hex[:8]}"})
    receipt = payment.receipt()
    started = payment.model_copy(update={"status": Status.STARTED, "version": 1})
    tokenized = payment.model_copy(update={"status": Status.TOKENIZED, "version": 2})
    for one in (tokenized, payment, started):
        await projection.write(Projection.of_payments([one]), writer, redis_cache, whole_lifetime=True)
    await projection.write(Projection.of_receipts([receipt]), writer, redis_cache, whole_lifetime=True)
    assert await couchbase.get_payment(payment.payment_id) == payment
    assert await couchbase.get_transaction(payment.transaction_id) == TransactionRef(
        payment.payment_id, payment.user_id, payment.account)
    assert await couchbase.user_index("payments", payment.account, payment.user_id) == {
        payment.payment_id: payment.created_at}
    assert await couchbase.user_index("receipts", receipt.account, receipt.user_id) == {
        receipt.receipt_id: receipt.issued_at}
    assert Receipt.model_validate_json(
        await redis_cache.get_receipt(receipt.account, receipt.user_id, receipt.receipt_id)) == receipt


async def test_a_users_index_lists_each_id_once_however_often_it_is_written(couchbase, writer):
    user = f"user-{uuid.uuid4().hex[:8]}"
    for payment_id, at in (("pay_a", "2026-01-01T00:00:01Z"), ("pay_b", "2026-01-01T00:00:02Z"),
                           ("pay_a", "2026-01-01T00:00:01Z")):
        await writer.write_user_index({("payments", "acct-1", user): {payment_id: at}})
    assert await couchbase.user_index("payments", "acct-1", user) == {"pay_a": "2026-01-01T00:00:01Z",
                                                                     "pay_b": "2026-01-01T00:00:02Z"}
    assert await couchbase.user_index("payments", "acct-2", user) == {}
    assert await couchbase.user_index("receipts", "acct-1", user) == {}


async def test_the_writer_writes_a_batch_of_documents_and_many_index_ids_at_once(couchbase, writer):
    pairs = [fresh_payment() for _ in range(3)]
    payments, receipts = [p for p, _ in pairs], [r for _, r in pairs]
    refs = {p.transaction_id: TransactionRef(p.payment_id, p.user_id, p.account) for p in payments}
    user = f"user-{uuid.uuid4().hex[:8]}"
    ids = {f"pay_{i:04d}": f"2026-01-01T00:00:{i % 60:02d}Z" for i in range(40)}  # three sub-document writes
    for _ in range(2):  # a batch written again writes the same
        await writer.write_payments(payments)
        await writer.write_transactions(refs)
        await writer.write_receipts(receipts)
        await writer.write_user_index({("payments", "acct-1", user): ids})
    await writer.write_user_index({("payments", "acct-1", user): {"pay_late": "2026-01-02T00:00:00Z"}})
    for payment, receipt in pairs:
        assert await couchbase.get_payment(payment.payment_id) == payment
        assert await couchbase.get_transaction(payment.transaction_id) == refs[payment.transaction_id]
        assert await couchbase._get(f"receipt::{receipt.receipt_id}") == receipt.model_dump(mode="json")
    assert await couchbase.user_index("payments", "acct-1", user) == ids | {"pay_late": "2026-01-02T00:00:00Z"}
    with pytest.raises(ValueError):  # a document no store key can name: the message's own failure
        await writer.write_payments([payments[0].model_copy(update={"payment_id": "pay bad"})])


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
