"""The ingress's cache against a Redis that closes its connections or is not there at all."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis

from paystream import bootstrap
from paystream.domain.errors import Unavailable
from paystream.ports import TransactionRef
from tests.conftest import closed_port
from tests.unit.fakes import fresh_payment


@pytest.fixture
async def read_cache(settings):
    cache = bootstrap.read_cache(settings)
    yield cache
    await cache.close()


async def test_a_pooled_connection_the_server_closed_is_retried_once(read_cache, stack):
    """What a Redis restart does to the pool: every pooled connection closed by the server."""
    payment, receipt = fresh_payment()
    await read_cache.put_receipt(receipt)
    admin = redis.Redis.from_url(stack["redis"]["address"])
    try:
        killed = admin.client_kill_filter(_type="normal", skipme=True)
    finally:
        admin.close()
    assert killed >= 1
    # The next call finds its connection closed, and succeeds on a fresh one: no error, no miss.
    assert await read_cache.get_receipt(receipt.account, receipt.user_id, receipt.receipt_id) is not None


async def test_with_redis_down_reads_say_unavailable_and_writes_go_on(settings):
    down = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{closed_port()}/0"})
    cache = bootstrap.read_cache(down)
    payment, receipt = fresh_payment()
    try:
        with pytest.raises(Unavailable):
            await cache.get_receipt(receipt.account, receipt.user_id, receipt.receipt_id)
        with pytest.raises(Unavailable):
            await cache.get_transaction(payment.transaction_id)
        await cache.put_receipt(receipt)
        await cache.put_transaction(payment.transaction_id, TransactionRef(payment.payment_id, payment.user_id, payment.account))
        # Unchecked, not refused: the ids derived from the key keep a repeat from doing anything twice.
        assert await cache.claim_idempotency_key(f"k-{uuid.uuid4().hex}", "fingerprint") is None
    finally:
        await cache.close()


async def test_the_sinks_cache_raises_so_they_retry(settings):
    down = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{closed_port()}/0"})
    cache = bootstrap.receipt_cache(down)
    try:
        with pytest.raises(redis.exceptions.ConnectionError):
            await cache.put_receipt(fresh_payment()[1])
    finally:
        await cache.close()


async def test_with_redis_down_rate_limits_admit_and_api_keys_say_unavailable(settings):
    down = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{closed_port()}/0"})
    assert await bootstrap.rate_limiter(down).hit("key_x", "1/second") == (True, 0)
    leasing = bootstrap.rate_limiter(down)  # a limit leased in many tokens: admitted all the same
    assert await asyncio.gather(*(leasing.hit("key_y", "1000/second") for _ in range(3))) == [(True, 0)] * 3
    keys = bootstrap.api_key_store(down)
    try:
        with pytest.raises(Unavailable):
            await keys.find("some-hash")
    finally:
        await keys.close()
