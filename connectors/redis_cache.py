"""Redis: the receipt cache, the transaction index and idempotency records (the ReceiptCache port)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import redis.asyncio as redis

from paystream import messages
from paystream.domain.records import Receipt
from paystream.ports import TransactionRef


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
        pool = redis.BlockingConnectionPool.from_url(url, max_connections=max_connections, timeout=5,
                                                     socket_timeout=5, socket_connect_timeout=5)
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

    async def put_receipts(self, receipts: list[Receipt]) -> None:
        """Many receipts in one round trip, each for what is left of its lifetime (a rebuild of the cache)."""
        now = datetime.now(UTC)
        pipe = self.client.pipeline(transaction=False)
        for receipt in receipts:
            issued = datetime.fromisoformat(receipt.issued_at.replace("Z", "+00:00"))
            left = self.receipt_ttl_s - int((now - issued).total_seconds())
            if left > 0:
                pipe.set(f"receipt:{receipt.user_id}:{receipt.receipt_id}", messages.encode(receipt), ex=left)
        if len(pipe):
            await pipe.execute()

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
