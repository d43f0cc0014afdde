"""Rate-limit leases against the real Redis: two ingress processes (two limiters) sharing one key."""

from __future__ import annotations

import asyncio
import uuid

import redis.asyncio as redis

from connectors.rate_leases import lease_ceiling
from paystream import bootstrap, tuning

#: At the default settings a lease of 200/10 s holds up to 10 tokens for 1 s: the whole test runs
#: well inside one period, so nothing ages out while it runs.
LIMIT, AMOUNT, PERIOD_S, PROCESSES = "200/10 seconds", 200, 10, 2


async def _limiter_calls(client: redis.Redis) -> int:
    """The Lua calls Redis has answered: the `limits` library makes one per acquisition or window read."""
    stats = await client.info("commandstats")
    return sum(stats.get(name, {}).get("calls", 0) for name in ("cmdstat_evalsha", "cmdstat_eval"))


async def test_two_processes_leasing_one_key_admit_no_more_than_its_limit_with_few_redis_calls(settings):
    first, second = bootstrap.rate_limiter(settings), bootstrap.rate_limiter(settings)
    ceiling = lease_ceiling(AMOUNT, tuning.RATE_LIMIT_LEASE_FRACTION, tuning.RATE_LIMIT_LEASE_MAX)
    key_id = f"key_{uuid.uuid4().hex[:16]}"
    client = redis.Redis.from_url(settings.redis_url)
    try:
        calls_before = await _limiter_calls(client)
        # Under the limit less what the two may hold unspent: all admitted, in few Redis calls.
        under = AMOUNT - PROCESSES * (ceiling - 1)
        answers = await asyncio.gather(*(limiter.hit(key_id, LIMIT) for _ in range(under // 2)
                                         for limiter in (first, second)))
        assert all(admitted for admitted, _ in answers)
        calls = await _limiter_calls(client) - calls_before
        assert calls <= under // 4, f"{calls} Redis calls for {under} requests"
        # Past the limit: refused, each with when to retry; never more than the limit admitted in all.
        answers += await asyncio.gather(*(limiter.hit(key_id, LIMIT) for _ in range(100)
                                          for limiter in (first, second)))
        admitted = sum(1 for ok, _ in answers if ok)
        assert under <= admitted <= AMOUNT
        refused = [retry_after for ok, retry_after in answers if not ok]
        assert len(refused) == len(answers) - admitted
        assert all(1 <= retry_after <= PERIOD_S for retry_after in refused)
        # Refused again without asking Redis until its oldest token ages out.
        calls_after_burst = await _limiter_calls(client)
        assert not (await first.hit(key_id, LIMIT))[0] and not (await second.hit(key_id, LIMIT))[0]
        assert await _limiter_calls(client) == calls_after_burst
    finally:
        await client.aclose()
