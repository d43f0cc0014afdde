"""Redis: the receipt cache, the transaction index and idempotency records (the ReceiptCache port).

Keys are built by `store_key` from ids of one strict charset, so no two objects share
one; receipts are cached per account and user, so another's lookup simply misses.
"""

from __future__ import annotations

import hashlib
import json

import redis.asyncio as redis

from paystream import messages
from paystream.domain.ids import store_key
from paystream.domain.records import Receipt
from paystream.ports import TransactionRef


def receipt_key(account: str, user_id: str, receipt_id: str) -> str:
    return "receipt:" + store_key(account, user_id, receipt_id)


def transaction_key(transaction_id: str) -> str:
    return "txn:" + store_key(transaction_id)


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
    def from_url(cls, url: str, max_connections: int = 64, **ttls: int) -> RedisCache:
        return cls(client_for(url, max_connections), **ttls)

    async def close(self) -> None:
        await self.client.aclose()

    async def get_receipt(self, account: str, user_id: str, receipt_id: str) -> bytes | None:
        """The cached receipt as stored JSON bytes (e-mail sealed, as on the topic)."""
        return await self.client.get(receipt_key(account, user_id, receipt_id))

    async def put_receipt(self, receipt: Receipt) -> None:
        await self.client.set(receipt_key(receipt.account, receipt.user_id, receipt.receipt_id),
                              messages.encode(receipt), ex=self.receipt_ttl_s)

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


def client_for(url: str, max_connections: int = 64) -> redis.Redis:
    # A blocking pool makes a request wait for a free connection under a
    # burst; redis-py's default pool fails it with "Too many connections".
    pool = redis.BlockingConnectionPool.from_url(url, max_connections=max_connections, timeout=5,
                                                 socket_timeout=5, socket_connect_timeout=5)
    return redis.Redis(connection_pool=pool)
