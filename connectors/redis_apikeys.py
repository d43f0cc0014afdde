"""API keys in Redis (the ApiKeyStore port): one hash, field = SHA-256 of the key, value = its record.

Redis is what paystream already runs for the read side; its append-only file keeps
the keys across restarts. The key itself is never stored: `paystream apikey create`
shows it once.
"""

from __future__ import annotations

import json
from dataclasses import asdict

import redis.asyncio as redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from paystream.domain.errors import Unavailable
from paystream.ports import ApiKeyRecord

KEYS = "paystream:apikeys"


class RedisApiKeys:
    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    async def find(self, key_hash: str) -> ApiKeyRecord | None:
        try:
            raw = await self.client.hget(KEYS, key_hash)
        except (RedisConnectionError, RedisTimeoutError, OSError):
            raise Unavailable("key_store_unavailable", "API keys cannot be checked right now; retry shortly") from None
        return ApiKeyRecord(**json.loads(raw)) if raw else None

    async def add(self, record: ApiKeyRecord) -> None:
        await self.client.hset(KEYS, record.key_hash, json.dumps(asdict(record)))

    async def all(self) -> list[ApiKeyRecord]:
        return sorted((ApiKeyRecord(**json.loads(v)) for v in (await self.client.hgetall(KEYS)).values()),
                      key=lambda r: (r.account, r.created_at))

    async def revoke(self, key_id: str) -> bool:
        for record in await self.all():
            if record.key_id == key_id:
                return bool(await self.client.hdel(KEYS, record.key_hash))
        return False

    async def close(self) -> None:
        await self.client.aclose()
