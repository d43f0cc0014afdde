"""An ingress past its bound refuses at once with 503 + Retry-After, and a Redis pool run dry is a 503,
never a 500: an ingress process of the test's own (port: the ingress's + 70, small bounds) against the
real Kafka, Redis, Couchbase and the running worker.

The requests held in flight are held by the real thing that holds them under overload: every
connection of a Redis pool taken, so that admitted requests wait for one."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import aiohttp
import pytest
from aiohttp import web

from ingress.app import create_app
from ingress.context import CONTEXT
from monitor.sampler import flatten
from tests.conftest import new_api_key

PORT_OFFSET = 70


@contextlib.asynccontextmanager
async def own_ingress(settings, pool_timeout_s: float):
    """(base URL, app) of an ingress admitting 4 requests at once, with one-connection Redis pools."""
    own = settings.model_copy(update={
        "ingress_port": settings.ingress_port + PORT_OFFSET, "ingress_max_in_flight_reads": 4,
        "redis_pool_size": 1, "redis_pool_timeout_s": pool_timeout_s, "key_cache_s": 0.0,
    })
    app = create_app(own)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, own.ingress_host, own.ingress_port)
    await site.start()
    try:
        yield f"http://{own.ingress_host}:{own.ingress_port}", app
    finally:
        await runner.cleanup()


async def metric(session: aiohttp.ClientSession, base: str, name: str, **labels: str) -> float:
    async with session.get(f"{base}/metrics") as resp:
        flat = flatten(await resp.text())
    return sum(v for (n, ls), v in flat.items() if n == name and all(dict(ls).get(k) == w for k, w in labels.items()))


async def wait_in_flight(session, base: str, count: int) -> None:
    for _ in range(200):
        if await metric(session, base, "paystream_http_in_flight_requests") >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{count} requests never were in flight")


@pytest.fixture
async def small_ingress(pipeline, settings):
    async with own_ingress(settings, pool_timeout_s=30.0) as ingress:
        yield ingress


@pytest.fixture
async def dry_ingress(pipeline, settings):
    async with own_ingress(settings, pool_timeout_s=0.2) as ingress:
        yield ingress


async def test_past_its_bound_the_ingress_answers_503_overloaded_at_once_and_admits_again(small_ingress, api_key):
    base, app = small_ingress
    # Every connection of the API keys' pool taken: admitted requests wait for one (key memory is off).
    pool = app[CONTEXT].api_keys.store.client.connection_pool
    held = await pool.get_connection()
    headers = {"Authorization": f"Bearer {api_key}"}
    url = f"{base}/v1/payments"
    async with aiohttp.ClientSession() as session:
        shed_before = await metric(session, base, "paystream_http_shed_requests_total")
        answered_503 = await metric(session, base, "paystream_http_requests_total", status="503")
        request_ids = []

        async def list_payments(user: str):
            async with session.get(url, params={"user_id": user}, headers=headers) as resp:
                request_ids.append(resp.headers.get("Request-Id"))
                return resp.status, resp.headers.get("Retry-After"), await resp.json()

        admitted = [asyncio.create_task(list_payments(f"u-{uuid.uuid4().hex[:8]}")) for _ in range(4)]
        await wait_in_flight(session, base, 4)
        refused = await asyncio.gather(*(list_payments("u-refused") for _ in range(6)))
        # The bound is met: each further request is refused while the four wait, not queued behind them.
        assert not any(task.done() for task in admitted)
        assert [(status, retry, body["error"]["code"]) for status, retry, body in refused] == \
            [(503, "1", "overloaded")] * 6
        assert await metric(session, base, "paystream_http_shed_requests_total") - shed_before == 6
        # Counted among the answers (the monitor's error ratio reads them there), each with its Request-Id.
        assert await metric(session, base, "paystream_http_requests_total", status="503") - answered_503 == 6
        assert len(set(request_ids)) == 6 and all(i.startswith("req_") for i in request_ids)
        # /metrics and /health are never shed: an overloaded process stays observable.
        async with session.get(f"{base}/health") as resp:
            assert resp.status == 200
        await pool.release(held)
        assert [status for status, _, _ in await asyncio.gather(*admitted)] == [200] * 4
        # Work done, room again.
        status, _, _ = await list_payments("u-after")
        assert status == 200


async def test_an_exhausted_redis_pool_is_a_503_never_a_500(dry_ingress, api_key):
    base, app = dry_ingress
    ctx = app[CONTEXT]
    fresh_key = new_api_key(f"acct-{uuid.uuid4().hex[:8]}")
    held = [await ctx.api_keys.store.client.connection_pool.get_connection(),
            await ctx.cache.cache.client.connection_pool.get_connection()]
    async with aiohttp.ClientSession() as session:
        errors_before = await metric(session, base, "paystream_http_requests_total", status="500")
        # A key this process never saw, with the key store's pool dry: 503, as for Redis down.
        async with session.get(f"{base}/v1/payments", params={"user_id": "u1"},
                               headers={"Authorization": f"Bearer {fresh_key}"}) as resp:
            body = await resp.json()
            assert (resp.status, resp.headers.get("Retry-After"), body["error"]["type"]) == \
                (503, "1", "unavailable_error")
        # A known key (remembered as last found), the cache's pool dry: a receipt read is answered from the
        # store or refused with 503, never a 500.
        headers = {"Authorization": f"Bearer {api_key}"}
        await ctx.api_keys.store.client.connection_pool.release(held[0])
        async with session.get(f"{base}/v1/payments", params={"user_id": "u1"}, headers=headers) as resp:
            assert resp.status == 200
        held[0] = await ctx.api_keys.store.client.connection_pool.get_connection()
        async with session.get(f"{base}/v1/getReceipt", params={"receipt_id": "rcpt_missing", "user_id": "u1"},
                               headers=headers) as resp:
            assert resp.status in (404, 503), await resp.text()
            if resp.status == 503:
                assert resp.headers.get("Retry-After") == "1"
        assert await metric(session, base, "paystream_http_requests_total", status="500") == errors_before
    await ctx.api_keys.store.client.connection_pool.release(held[0])
    await ctx.cache.cache.client.connection_pool.release(held[1])
