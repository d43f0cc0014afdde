"""Per-API-key rate limits in Redis, with the `limits` library's moving window, taken in leases.

A moving window counts every hit of the last period exactly (a log in Redis, one Lua call per
acquisition), so a burst is refused at once and admitted again as its oldest hits age out; shared
by every ingress process through Redis. One Redis call per request would be a second round trip on
every read (a cache hit's other one is its GET), so each process takes a LEASE instead: several of
a key's tokens counted in Redis in one call (the library's `hit(..., cost=n)`), then spent here one
a request, without Redis, until they run out or the lease's life ends (connectors/rate_leases.py:
sizes follow use, up to `RATE_LIMIT_LEASE_FRACTION` of the limit and at most
`RATE_LIMIT_LEASE_MAX`; the life is `RATE_LIMIT_LEASE_LIFE` of the period, paystream/tuning.py). A lease Redis refuses
means the key is within that many tokens of its limit: the process then hits one token at a time
(exact, as without leases) for a lease's life. A refused single token is refused here without
Redis until the oldest token Redis counts ages out (none comes free sooner), so a client hammering
past its limit costs no Redis call a request either. A limit too small for a lease of two (5/second at
the defaults) is always hit one token at a time.

What holds, for a key with limit L_max per period P, lease ceiling L and life E, across N ingress
processes:
- Redis counts every admitted request before it is admitted, and never more than the limit within
  one period of its count; a token is spent at most E (a tenth of P by default) after Redis counted
  it. So in any window of P, a key is admitted at most L_max plus the tokens already leased but
  unspent at the window's start: at most N × (L - 1) (each process holds one lease per key), and
  only when leases are taken near the window's end while older ones are still being spent.
- Refused early: a request is refused only once Redis refuses its single token, i.e. when the
  counted tokens reach L_max. Counted but unspent are at most N × (L - 1) tokens in live leases,
  plus what leases that expired unspent left: a lease expires unspent only where its process sees
  fewer than L / E requests of the key a second (at the defaults, half the limit's rate), and the
  next lease is then only the size of what it used. So a key sending at its limit is refused at most
  N × (L - 1) requests early in a period; a key whose limit leases single tokens (L = 1) exactly as
  before leases.
While Redis cannot answer, requests are admitted (the limit protects paystream; refusing
everything would be the outage's doing, not the client's), counted in
`paystream_cache_errors_total{operation="rate_limit"}`, and each process asks for single tokens for
a lease's life (no request waits behind another's lease call to a Redis that is away). A refusal
says when the window admits one again (`Retry-After`), from the library's window statistics.
"""

from __future__ import annotations

import asyncio
import functools
import time

from cachetools import LRUCache
from limits import RateLimitItem, parse
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.asyncio import BlockingConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from connectors.rate_leases import Lease, lease_ceiling, lease_life_s
from paystream.observability import metrics
from paystream.observability.logs import get_logger

log = get_logger("paystream.ingress")

#: Keys whose leases one process remembers (the least recently used beyond are forgotten: their
#: unspent tokens age out in Redis as any other).
_MAX_KEYS = 100_000
_REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, OSError)


class RateLimiter:
    def __init__(self, redis_url: str, max_connections: int = 64, pool_timeout_s: float = 5.0,
                 lease_fraction: float = 0.0, lease_max: int = 1, lease_life: float = 0.1) -> None:
        uri = redis_url.replace("redis://", "async+redis://", 1).replace("rediss://", "async+rediss://", 1)
        # A fixed, blocking pool: the library's default pool opens a new connection whenever all are
        # busy (costly, and refused past its cap under a burst); this one makes a request wait instead.
        pool = BlockingConnectionPool.from_url(redis_url, max_connections=max_connections, timeout=pool_timeout_s,
                                               socket_timeout=5, socket_connect_timeout=5,
                                               retry=Retry(NoBackoff(), 1))
        self.storage = RedisStorage(uri, implementation="redispy", key_prefix="paystream:ratelimit",
                                    connection_pool=pool)
        self.limiter = MovingWindowRateLimiter(self.storage)
        self.lease_fraction, self.lease_max, self.lease_life = lease_fraction, lease_max, lease_life
        #: key id -> (this process's lease of it, the lock one acquisition at a time holds)
        self.leases: LRUCache = LRUCache(_MAX_KEYS)
        self._shape = functools.lru_cache(maxsize=1024)(self._shape_of)
        self._logged_at = float("-inf")

    async def hit(self, key_id: str, limit: str) -> tuple[bool, int]:
        """(admitted, seconds until the next request would be) for one request of this key."""
        item, ceiling, life = self._shape(limit)
        held = self.leases.get(key_id)
        if held is None or held[0].ceiling != ceiling or held[0].life_s != life:  # new, or its limit changed
            held = self.leases[key_id] = (Lease(ceiling, life), asyncio.Lock())
        lease, lock = held
        now = time.monotonic()
        if lease.take(now):
            return True, 0
        if (retry_after := lease.still_refused(now)) is not None:
            return False, retry_after
        if lease.exact(now):  # each its own single token, at once, as without leases
            return await self._acquire(lease, item, key_id)
        # One lease at a time per key here: requests arriving meanwhile wait for it, not lease their own.
        async with lock:
            now = time.monotonic()
            if lease.take(now):
                return True, 0
            if (retry_after := lease.still_refused(now)) is not None:
                return False, retry_after
            if not lease.exact(now):
                return await self._acquire(lease, item, key_id)
        # The lease before was refused, or Redis could not answer it: single tokens, all at once, as without leases.
        return await self._acquire(lease, item, key_id)

    def _shape_of(self, limit: str) -> tuple[RateLimitItem, int, float]:
        """A limit's parsed form, lease ceiling and lease life (remembered: a handful of limits are in use)."""
        item = parse(limit)
        return (item, lease_ceiling(item.amount, self.lease_fraction, self.lease_max),
                lease_life_s(item.get_expiry(), self.lease_life))

    async def _acquire(self, lease: Lease, item: RateLimitItem, key_id: str) -> tuple[bool, int]:
        """Ask Redis for a lease; refused, for this request's token alone; refused again, say when to retry."""
        size = lease.next_size(time.monotonic())
        try:
            if await self.limiter.hit(item, key_id, cost=size):
                lease.granted(size, time.monotonic())
                return True, 0
            lease.refused(size, time.monotonic())
            if size > 1 and await self.limiter.hit(item, key_id):
                lease.granted(1, time.monotonic())
                return True, 0
            stats = await self.limiter.get_window_stats(item, key_id)
        except _REDIS_DOWN as exc:
            lease.unanswered(time.monotonic())
            metrics.CACHE_ERRORS.labels("rate_limit").inc()
            if time.monotonic() - self._logged_at > 10:
                self._logged_at = time.monotonic()
                log.warning("rate limits unavailable; admitting", error=type(exc).__name__)
            return True, 0
        return False, lease.refused_for(stats.reset_time - time.time(), time.monotonic())

    async def close(self) -> None:
        # redis-py's pool inside `limits` closes with the process; nothing to flush.
        return None
