"""Redis: the receipt cache, the transaction index and idempotency records (the ReceiptCache port).

`RedisCache` raises when Redis cannot answer (the sinks retry until it does).
`BestEffortCache` is what the ingress uses: the cache is a shortcut, never the
only copy, so while Redis is down a read raises `Unavailable` (the read side
falls back to the Couchbase replicas or the workers' table, and says 503
rather than 404 when those do not know yet), a write is skipped (the sinks
fill the cache again from the topics), and an Idempotency-Key is not checked
against its first body (the pipeline still recognises the repeat: the payment
and command ids derive from the key). A pooled connection that Redis closed
(a restart) is retried once on a fresh one before any of that.
"""

from __future__ import annotations

import json
import time

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from paystream import messages
from paystream.domain.errors import Unavailable
from paystream.domain.records import PaymentView, Receipt
from paystream.observability import metrics
from paystream.observability.logs import get_logger
from paystream.ports import AcceptedPayment, TransactionRef

log = get_logger("paystream.cache")


class RedisCache:
    def __init__(self, client: redis.Redis, *, receipt_ttl_s: int, transaction_ttl_s: int,
                 idempotency_ttl_s: int) -> None:
        self.client = client
        self.receipt_ttl_s = receipt_ttl_s
        self.transaction_ttl_s = transaction_ttl_s
        self.idempotency_ttl_s = idempotency_ttl_s

    @classmethod
    def from_url(cls, url: str, max_connections: int = 64, **ttls: int) -> RedisCache:
        # A blocking pool makes a request wait for a free connection under a
        # burst; redis-py's default pool fails it with "Too many connections".
        # One retry on ConnectionError/TimeoutError: a pooled connection the
        # server closed (a restart) is replaced by a fresh one, not reported.
        pool = redis.BlockingConnectionPool.from_url(url, max_connections=max_connections, timeout=5,
                                                     socket_timeout=5, socket_connect_timeout=5,
                                                     retry=Retry(NoBackoff(), 1))
        return cls(redis.Redis(connection_pool=pool), **ttls)

    async def close(self) -> None:
        await self.client.aclose()

    async def get_receipt(self, user_id: str, receipt_id: str) -> bytes | None:
        """The cached receipt as stored JSON bytes, so a hit is served without decoding it.

        The owner is part of the key: another user's lookup simply misses."""
        return await self.client.get(f"receipt:{user_id}:{receipt_id}")

    async def put_receipt(self, receipt: Receipt) -> None:
        await self.client.set(f"receipt:{receipt.user_id}:{receipt.receipt_id}", messages.encode(receipt),
                              ex=self.receipt_ttl_s)

    async def get_transaction(self, transaction_id: str) -> TransactionRef | None:
        raw = await self.client.get(f"txn:{transaction_id}")
        return TransactionRef(**json.loads(raw)) if raw else None

    async def put_transaction(self, transaction_id: str, ref: TransactionRef) -> None:
        await self.client.set(f"txn:{transaction_id}",
                              json.dumps({"payment_id": ref.payment_id, "user_id": ref.user_id}),
                              ex=self.transaction_ttl_s)

    async def claim_idempotency_key(self, key: str, fingerprint: str) -> str | None:
        """Record `fingerprint` for this key, or return the one recorded first."""
        name = f"idem:http:{key}"
        if await self.client.set(name, fingerprint, nx=True, ex=self.idempotency_ttl_s):
            return None
        first = await self.client.get(name)
        return first.decode() if first is not None else None

    async def put_accepted(self, accepted: AcceptedPayment) -> None:
        await self.client.set(f"accepted:{accepted.view.payment_id}", json.dumps(
            {"user_id": accepted.user_id, "view": accepted.view.model_dump(mode="json")}), ex=self.idempotency_ttl_s)

    async def get_accepted(self, payment_id: str) -> AcceptedPayment | None:
        raw = await self.client.get(f"accepted:{payment_id}")
        if not raw:
            return None
        data = json.loads(raw)
        return AcceptedPayment(data["user_id"], PaymentView.model_validate(data["view"]))


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

    async def get_receipt(self, user_id: str, receipt_id: str) -> bytes | None:
        return await self._try("get_receipt", self.cache.get_receipt(user_id, receipt_id), read=True)

    async def put_receipt(self, receipt: Receipt) -> None:
        await self._try("put_receipt", self.cache.put_receipt(receipt))

    async def get_transaction(self, transaction_id: str) -> TransactionRef | None:
        return await self._try("get_transaction", self.cache.get_transaction(transaction_id), read=True)

    async def put_transaction(self, transaction_id: str, ref: TransactionRef) -> None:
        await self._try("put_transaction", self.cache.put_transaction(transaction_id, ref))

    async def claim_idempotency_key(self, key: str, fingerprint: str) -> str | None:
        # Unchecked while Redis is down: the ids derived from the key still make a repeat do nothing twice.
        return await self._try("claim_idempotency_key", self.cache.claim_idempotency_key(key, fingerprint))

    async def put_accepted(self, accepted: AcceptedPayment) -> None:
        await self._try("put_accepted", self.cache.put_accepted(accepted))

    async def get_accepted(self, payment_id: str) -> AcceptedPayment | None:
        return await self._try("get_accepted", self.cache.get_accepted(payment_id), read=True)
