"""Payments as load: through paystream, and the same provider calls made straight at the provider
(the floor). Every payments benchmark and the bench stack's warm-up drive these."""

from __future__ import annotations

import asyncio
import uuid

import aiohttp

from devstack.bench import tuning as bench_tuning
from devstack.bench.core import Step, open_loop, percentile
from devstack.settings import DevSettings


async def paystream_payments(settings: DevSettings, rate: int, seconds: float) -> tuple[Step, Step]:
    """Complete payments (start, then post) through paystream's public address at `rate` a second."""
    base = f"http://{settings.ingress_host}:{settings.ingress_port}"
    starts, posts = [], []
    connector = aiohttp.TCPConnector(limit=bench_tuning.CLIENT_CONNECTIONS)
    headers = {"Authorization": f"Bearer {settings.dev_api_key.get_secret_value()}"}
    async with aiohttp.ClientSession(connector=connector, headers=headers) as http:
        async def payment(i: int) -> None:
            who = {"user_id": f"bench-{uuid.uuid4().hex[:12]}", "email_id": "payer@example.com",
                   "timestamp": "2026-11-25T10:00:00Z", "payment_type": "credit"}
            t0 = asyncio.get_running_loop().time()
            async with http.post(f"{base}/v1/startPayment", json={**who, "amount": "10.00", "currency": "EUR"}) as r:
                started = await r.json()
                if r.status != 201:
                    raise RuntimeError(f"start {r.status}")
            t1 = asyncio.get_running_loop().time()
            async with http.post(f"{base}/v1/postPayment", json={
                **who, "transaction_id": started["transaction_id"], "amount": "10.00", "currency": "EUR",
                "payment_method": "pm_card_visa"}) as r:
                await r.read()
                if r.status != 201:
                    raise RuntimeError(f"post {r.status}")
            starts.append(t1 - t0)
            posts.append(asyncio.get_running_loop().time() - t1)

        totals, errors, _ = await open_loop(rate, seconds, payment)
    # Achieved: payments completed per second of offered load (a provider call of hundreds of ms
    # makes the last ones finish well after the offering ends; their latency says so already).
    elapsed = seconds
    complete = percentile(sorted(totals), 99)
    return (Step.from_latencies("payments", "paystream start", rate, elapsed, starts, errors),
            Step.from_latencies("payments", "paystream post", rate, elapsed, posts, errors,
                                complete_p99_ms=None if complete is None else round(complete * 1000, 2)))


async def sandbox_payments(settings: DevSettings, rate: int, seconds: float, label: str = "sandbox") -> tuple[Step, Step]:
    """The provider calls paystream makes, made straight at the provider (`label`) at the same rate."""
    base = settings.stripe_api_base
    creates, confirms = [], []
    headers = {"Authorization": f"Bearer {settings.stripe_api_key.get_secret_value()}"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=bench_tuning.CLIENT_CONNECTIONS),
                                     headers=headers) as http:
        async def call(path: str, data: dict) -> dict:
            async with http.post(base + path, data=data) as r:
                body = await r.json()
                if r.status != 200:
                    raise RuntimeError(f"{path} {r.status}")
                return body

        async def payment(i: int) -> None:
            t0 = asyncio.get_running_loop().time()
            intent = await call("/v1/payment_intents", {"amount": "1000", "currency": "eur",
                                                        "metadata[payment_id]": f"floor-{i}"})
            t1 = asyncio.get_running_loop().time()
            await call(f"/v1/payment_intents/{intent['id']}", {"payment_method": "pm_card_visa"})
            await call(f"/v1/payment_intents/{intent['id']}/confirm", {})
            creates.append(t1 - t0)
            confirms.append(asyncio.get_running_loop().time() - t1)

        _, errors, _ = await open_loop(rate, seconds, payment)
    elapsed = seconds  # as for paystream: completed per second of offered load
    return (Step.from_latencies("payments", f"floor: {label} create", rate, elapsed, creates, errors),
            Step.from_latencies("payments", f"floor: {label} attach+confirm", rate, elapsed, confirms, errors))
