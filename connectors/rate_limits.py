"""Per-API-key rate limits in Redis, with the `limits` library's moving window.

A moving window counts every hit of the last period exactly (a sorted log in Redis,
one Lua call a request), so a burst is refused at once and admitted again as its
oldest hits age out; shared by every ingress process through Redis.
"""

from __future__ import annotations

import math
import time

from limits import parse
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.asyncio import BlockingConnectionPool


class RateLimiter:
    def __init__(self, redis_url: str, max_connections: int = 64) -> None:
        uri = redis_url.replace("redis://", "async+redis://", 1).replace("rediss://", "async+rediss://", 1)
        # A fixed, blocking pool: the library's default pool opens a new connection whenever all are
        # busy (costly, and refused past its cap under a burst); this one makes a request wait instead.
        pool = BlockingConnectionPool.from_url(redis_url, max_connections=max_connections, timeout=5,
                                               socket_timeout=5, socket_connect_timeout=5)
        self.storage = RedisStorage(uri, implementation="redispy", key_prefix="paystream:ratelimit",
                                    connection_pool=pool)
        self.limiter = MovingWindowRateLimiter(self.storage)

    async def hit(self, key_id: str, limit: str) -> tuple[bool, int]:
        """(admitted, seconds until the next request would be) for one request of this key."""
        item = parse(limit)
        if await self.limiter.hit(item, key_id):
            return True, 0
        stats = await self.limiter.get_window_stats(item, key_id)
        return False, max(1, math.ceil(stats.reset_time - time.time()))

    async def close(self) -> None:
        # redis-py's pool inside `limits` closes with the process; nothing to flush.
        return None
