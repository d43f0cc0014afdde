"""Redis: the receipt cache, the transaction index and idempotency records (the ReceiptCache port).

Keys are built by `store_key` from ids of one strict charset, so no two objects share
one; receipts are cached per account and user, so another's lookup simply misses.

`RedisCache` raises when Redis cannot answer (the sinks retry until it does).
`BestEffortCache` is what the ingress uses: the cache is a shortcut, never the
only copy, so while Redis is down a read raises `Unavailable` (the read side
falls back to the Couchbase replicas or the workers' table, and says 503
rather than 404 when those do not know yet), a write is skipped (the sinks
fill the cache again from the topics), and an Idempotency-Key is neither
checked against its first body nor answered from its stored response (the
pipeline still recognises the repeat: the payment and command ids derive from
the key). Every client here retries a pooled connection that Redis closed (a
restart) once on a fresh one before any of that.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from paystream import messages
from paystream.domain.errors import Unavailable
from paystream.domain.ids import store_key
from paystream.domain.records import PaymentView, Receipt
from paystream.observability import metrics
from paystream.observability.logs import get_logger
from paystream.ports import AcceptedPayment, TransactionRef

log = get_logger("paystream.cache")


def receipt_key(account: str, user_id: str, receipt_id: str) -> str:
    return "receipt:" + store_key(account, user_id, receipt_id)


def transaction_key(transaction_id: str) -> str:
    return "txn:" + store_key(transaction_id)


def accepted_key(payment_id: str) -> str:
    return "accepted:" + store_key(payment_id)


def idempotency_key(scoped: str) -> str:
    # The client's key may hold any printable character: hashed, it cannot collide with another's.
    return "idem:http:" + hashlib.sha256(scoped.encode()).hexdigest()


class RedisCache:
    def __init__(self, client: redis.Redis, *, receipt_ttl_s: int, transaction_ttl_s: int,
                 idempotency_ttl_s: int) -> None:
        self.client = client
        self.receipt_ttl_s = receipt_ttl_s
        self.transaction_ttl_s = transaction_ttl_s
        self.idempotency_ttl_s = idempotency_ttl_s

    @classmethod
    def from_url(cls, url: str, max_connections: int = 64, pool_timeout_s: float = 5.0, **ttls: int) -> RedisCache:
        return cls(client_for(url, max_connections, pool_timeout_s), **ttls)

    async def close(self) -> None:
        await self.client.aclose()

    async def get_receipt(self, account: str, user_id: str, receipt_id: str) -> bytes | None:
        """The cached receipt as stored JSON bytes (e-mail sealed, as on the topic)."""
        return await self.client.get(receipt_key(account, user_id, receipt_id))

    async def put_receipt(self, receipt: Receipt) -> None:
        await self.client.set(receipt_key(receipt.account, receipt.user_id, receipt.receipt_id),
                              messages.encode(receipt), ex=self.receipt_ttl_s)

    async def put_receipts(self, receipts: Sequence[Receipt], *, whole_lifetime: bool = False) -> None:
        """Many receipts in one round trip (a pipeline): each for what is left of its lifetime (a rebuild
        of the cache), or with `whole_lifetime` for all of it from now, as `put_receipt` (the sinks)."""
        now = datetime.now(UTC)
        pipe = self.client.pipeline(transaction=False)
        for receipt in receipts:
            left = self.receipt_ttl_s
            if not whole_lifetime:
                issued = datetime.fromisoformat(receipt.issued_at.replace("Z", "+00:00"))
                left -= int((now - issued).total_seconds())
            if left > 0:
                pipe.set(receipt_key(receipt.account, receipt.user_id, receipt.receipt_id),
                         messages.encode(receipt), ex=left)
        if len(pipe):
            await pipe.execute()

    async def get_transaction(self, transaction_id: str) -> TransactionRef | None:
        raw = await self.client.get(transaction_key(transaction_id))
        if not raw:
            return None
        data = json.loads(raw)
        return TransactionRef(data["payment_id"], data["user_id"], data["account"]) if "account" in data else None

    async def put_transaction(self, transaction_id: str, ref: TransactionRef) -> None:
        await self.client.set(transaction_key(transaction_id), json.dumps(
            {"payment_id": ref.payment_id, "user_id": ref.user_id, "account": ref.account}), ex=self.transaction_ttl_s)

    async def claim_idempotency_key(self, key: str, fingerprint: str) -> tuple[str, bytes | None] | None:
        """Record `fingerprint` for this key; or (the fingerprint recorded first, its stored response)."""
        name = idempotency_key(key)
        if await self.client.hsetnx(name, "fingerprint", fingerprint):
            await self.client.expire(name, self.idempotency_ttl_s)
            return None
        first, response = await self.client.hmget(name, ["fingerprint", "response"])
        return (first.decode() if first is not None else fingerprint), response

    async def store_response(self, key: str, sealed_response: bytes) -> None:
        name = idempotency_key(key)
        await self.client.hsetnx(name, "response", sealed_response)
        await self.client.expire(name, self.idempotency_ttl_s)

    async def put_accepted(self, accepted: AcceptedPayment) -> None:
        await self.client.set(accepted_key(accepted.view.payment_id), json.dumps(
            {"account": accepted.account, "user_id": accepted.user_id,
             "view": accepted.view.model_dump(mode="json")}), ex=self.idempotency_ttl_s)

    async def get_accepted(self, payment_id: str) -> AcceptedPayment | None:
        raw = await self.client.get(accepted_key(payment_id))
        if not raw:
            return None
        data = json.loads(raw)
        return AcceptedPayment(data["account"], data["user_id"], PaymentView.model_validate(data["view"]))


def client_for(url: str, max_connections: int = 64, pool_timeout_s: float = 5.0) -> redis.Redis:
    # A blocking pool makes a request wait for a free connection under a
    # burst; redis-py's default pool fails it with "Too many connections".
    # The wait is bounded (`pool_timeout_s`): past it the pool raises
    # ConnectionError("No connection available"), an outage like any other.
    # One retry on ConnectionError/TimeoutError: a pooled connection the
    # server closed (a restart) is replaced by a fresh one, not reported.
    pool = redis.BlockingConnectionPool.from_url(url, max_connections=max_connections,
                                                 timeout=pool_timeout_s, socket_timeout=5, socket_connect_timeout=5,
                                                 retry=Retry(NoBackoff(), 1))
    return redis.Redis(connection_pool=pool)


OUTAGES = (RedisConnectionError, RedisTimeoutError, OSError)


class BestEffortCache:
    """The ReceiptCache port over a RedisCache, going on without it while Redis is down."""

    LOG_EVERY_S = 10.0

    def __init__(self, cache: RedisCache) -> None:
        self.cache = cache
        self._logged_at = float("-inf")

    async def close(self) -> None:
        await self.cache.close()

    async def _try(self, operation: str, call, otherwise=None, *, read: bool = False):
        try:
            return await call
        except OUTAGES as exc:
            metrics.CACHE_ERRORS.labels(operation).inc()
            if time.monotonic() - self._logged_at > self.LOG_EVERY_S:
                self._logged_at = time.monotonic()
                log.warning("cache unavailable, going on without it", operation=operation, error=repr(exc))
            if read:
                raise Unavailable("cache_unavailable", "the cache cannot answer right now; retry shortly") from None
            return otherwise

    async def get_receipt(self, account: str, user_id: str, receipt_id: str) -> bytes | None:
        return await self._try("get_receipt", self.cache.get_receipt(account, user_id, receipt_id), read=True)

    async def put_receipt(self, receipt: Receipt) -> None:
        await self._try("put_receipt", self.cache.put_receipt(receipt))

    async def get_transaction(self, transaction_id: str) -> TransactionRef | None:
        return await self._try("get_transaction", self.cache.get_transaction(transaction_id), read=True)

    async def put_transaction(self, transaction_id: str, ref: TransactionRef) -> None:
        await self._try("put_transaction", self.cache.put_transaction(transaction_id, ref))

    async def claim_idempotency_key(self, key: str, fingerprint: str) -> tuple[str, bytes | None] | None:
        # Granted while Redis is down: the ids derived from the key still make a repeat do nothing twice.
        return await self._try("claim_idempotency_key", self.cache.claim_idempotency_key(key, fingerprint))

    async def store_response(self, key: str, sealed_response: bytes) -> None:
        await self._try("store_response", self.cache.store_response(key, sealed_response))

    async def put_accepted(self, accepted: AcceptedPayment) -> None:
        await self._try("put_accepted", self.cache.put_accepted(accepted))

    async def get_accepted(self, payment_id: str) -> AcceptedPayment | None:
        return await self._try("get_accepted", self.cache.get_accepted(payment_id), read=True)
