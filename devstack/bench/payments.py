"""Complete payments (start + post) through paystream, beside the sandbox and Kafka alone."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import aiohttp

from connectors.kafka_admin import create_topics
from devstack.bench import tools
from devstack.bench import tuning as bench_tuning
from devstack.bench.bench_stack import BenchStack
from devstack.bench.core import Step, open_loop, percentile
from devstack.settings import DevSettings
from paystream.topics import TopicSpec

P99_TARGET_MS = 250.0
OVERHEAD_RATE = 100


async def _paystream(settings: DevSettings, rate: int, seconds: float) -> tuple[Step, Step]:
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


async def _sandbox(settings: DevSettings, rate: int, seconds: float, label: str = "sandbox") -> tuple[Step, Step]:
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


def run(stack: BenchStack, rates: list[int], seconds: float, say=print, profile=None) -> dict:
    settings = stack.settings()
    steps: list[Step] = []
    asyncio.run(_paystream(settings, rates[0], 1))  # warm-up, not reported
    asyncio.run(_sandbox(settings, rates[0], 1))
    for rate in rates:
        with (profile(f"payments@{rate}", seconds) if profile else contextlib.nullcontext()):
            start, post = asyncio.run(_paystream(settings, rate, seconds))
        stack.wait_drained()
        create, confirm = asyncio.run(_sandbox(settings, rate, seconds))
        steps += [start, post, create, confirm]
        say(f"  payments at {rate}/s: start p99 {start.p99_ms} ms, post p99 {post.p99_ms} ms; "
            f"sandbox create p99 {create.p99_ms} ms, attach+confirm p99 {confirm.p99_ms} ms")
        if not post.sustainable(P99_TARGET_MS) and not confirm.sustainable(P99_TARGET_MS):
            say("  paystream and the sandbox alone both past their target: higher rates skipped")
            break

    topic = f"{settings.topic_prefix}.bench-kafka-floor"
    create_topics(settings.kafka_bootstrap, [TopicSpec(topic, settings.payment_topic_partitions, {})])
    records = 20_000 if seconds < 5 else 200_000
    kafka = {
        "producer_max": tools.kafka_producer_perf(settings, topic, records),
        "producer_at_1000": tools.kafka_producer_perf(settings, topic, max(2000, records // 20), throughput=1000),
        "consumer": tools.kafka_consumer_perf(settings, topic, records),
    }
    say(f"  kafka alone: {kafka['producer_max']['rps']:.0f} records/s produced (acks=all), "
        f"{kafka['consumer']['rps']:.0f}/s consumed")
    return {"steps": steps, "kafka": kafka, "p99_target_ms": P99_TARGET_MS, "overhead_rate": OVERHEAD_RATE}
