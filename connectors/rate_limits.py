"""Per-API-key rate limits in Redis, with the `limits` library's moving window.

A moving window counts every hit of the last period exactly (a sorted log in Redis,
one Lua call a request), so a burst is refused at once and admitted again as its
oldest hits age out; shared by every ingress process through Redis. While Redis
cannot answer, requests are admitted (the limit protects paystream; refusing
everything would be the outage's doing, not the client's), counted in
`paystream_cache_errors_total{operation="rate_limit"}`.
"""

from __future__ import annotations

import math
import time

from limits import parse
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.asyncio import BlockingConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from paystream.observability import metrics
from paystream.observability.logs import get_logger

log = get_logger("paystream.ingress")


class RateLimiter:
    def __init__(self, redis_url: str, max_connections: int = 64, pool_timeout_s: float = 5.0) -> None:
        uri = redis_url.replace("redis://", "async+redis://", 1).replace("rediss://", "async+rediss://", 1)
        # A fixed, blocking pool: the library's default pool opens a new connection whenever all are
        # busy (costly, and refused past its cap under a burst); this one makes a request wait instead.
        pool = BlockingConnectionPool.from_url(redis_url, max_connections=max_connections, timeout=pool_timeout_s,
                                               socket_timeout=5, socket_connect_timeout=5,
                                               retry=Retry(NoBackoff(), 1))
        self.storage = RedisStorage(uri, implementation="redispy", key_prefix="paystream:ratelimit",
                                    connection_pool=pool)
        self.limiter = MovingWindowRateLimiter(self.storage)
        self._logged_at = float("-inf")

    async def hit(self, key_id: str, limit: str) -> tuple[bool, int]:
        """(admitted, seconds until the next request would be) for one request of this key."""
        item = parse(limit)
        try:
            if await self.limiter.hit(item, key_id):
                return True, 0
            stats = await self.limiter.get_window_stats(item, key_id)
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            metrics.CACHE_ERRORS.labels("rate_limit").inc()
            if time.monotonic() - self._logged_at > 10:
                self._logged_at = time.monotonic()
                log.warning("rate limits unavailable; admitting", error=type(exc).__name__)
            return True, 0
        return False, max(1, math.ceil(stats.reset_time - time.time()))

    async def close(self) -> None:
        # redis-py's pool inside `limits` closes with the process; nothing to flush.
        return None
