"""Complete payments (start + post) through paystream, beside the sandbox and Kafka alone."""

from __future__ import annotations

import asyncio
import contextlib

from connectors.kafka_admin import create_topics
from devstack.bench import tools
from devstack.bench.bench_stack import BenchStack
from devstack.bench.core import Step
from devstack.bench.load import paystream_payments, sandbox_payments
from paystream.topics import TopicSpec

P99_TARGET_MS = 250.0
OVERHEAD_RATE = 100


def run(stack: BenchStack, rates: list[int], seconds: float, say=print, profile=None) -> dict:
    settings = stack.settings()
    steps: list[Step] = []
    asyncio.run(paystream_payments(settings, rates[0], 1))  # warm-up, not reported
    asyncio.run(sandbox_payments(settings, rates[0], 1))
    for rate in rates:
        with (profile(f"payments@{rate}", seconds) if profile else contextlib.nullcontext()):
            start, post = asyncio.run(paystream_payments(settings, rate, seconds))
        stack.wait_drained()
        create, confirm = asyncio.run(sandbox_payments(settings, rate, seconds))
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
