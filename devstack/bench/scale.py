"""Growth: latency with many receipts stored and many payments in flight, and how long
a worker takes to rebuild its table from the changelog after losing its local state."""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import time

import redis
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

from devstack.bench import load, tools
from devstack.bench.bench_stack import BenchStack

RECEIPT_READ_RATE = 1000
PAYMENT_RATE = 50


def _receipt(i: int) -> tuple[str, str]:
    user, receipt_id = f"scale-user-{i % 100_000}", f"rcpt_scale{i:019d}"
    body = {"receipt_id": receipt_id, "payment_id": f"pay_scale{i:019d}", "transaction_id": f"pi_scale{i:014d}",
            "account": "dev", "user_id": user, "email_id": "scale@example.com", "payment_type": "credit", "amount": "10.00",
            "amount_minor": 1000, "currency": "EUR", "status": "succeeded", "charge_id": f"ch_scale{i:014d}",
            "created_at": "2026-11-25T10:00:00.000Z", "paid_at": "2026-11-25T10:00:00.100Z",
            "issued_at": "2026-11-25T10:00:00.100Z"}
    return f"receipt:dev:{user}:{receipt_id}", json.dumps(body, separators=(",", ":"))


def fill_receipts(client: redis.Redis, start: int, end: int) -> None:
    for batch in range(start, end, 10_000):
        pipe = client.pipeline(transaction=False)
        for i in range(batch, min(end, batch + 10_000)):
            key, body = _receipt(i)
            pipe.set(key, body)
        pipe.execute()


async def fill_in_flight(bootstrap: str, changelog: str, partitions: int, start: int, end: int) -> None:
    """In-flight payments written the way the worker's table writes them: to its changelog, with a
    JSON-encoded key, in the partition that the payment's commands (keyed by the raw id) land in."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20, max_batch_size=512 * 1024)
    partitioner = DefaultPartitioner()
    every = list(range(partitions))
    await producer.start()
    try:
        batch = []
        for i in range(start, end):
            payment_id = f"pay_scale{i:019d}"
            value = {"payment_id": payment_id, "account": "dev", "user_id": f"scale-user-{i % 100_000}", "email": "scale@example.com",
                     "payment_type": "credit", "status": "tokenized", "created_at": "2026-11-25T10:00:00.000Z",
                     "updated_at": "2026-11-25T10:00:00.010Z", "start_command_id": f"cmd_scale{i:019d}",
                     "amount": {"amount": "10.00", "amount_minor": 1000, "currency": "EUR"},
                     "transaction_id": f"pi_scale{i:014d}", "payment_method": None,
                     "post_command_id": None, "charge_id": None, "receipt_id": None, "decline_code": None,
                     "failure_reason": None, "version": 2,
                     "history": [["started", "2026-11-25T10:00:00.000Z"], ["tokenized", "2026-11-25T10:00:00.010Z"]]}
            batch.append(await producer.send(
                changelog, key=json.dumps(payment_id).encode(), value=json.dumps(value, separators=(",", ":")).encode(),
                partition=partitioner(payment_id.encode(), every, every)))
            if len(batch) >= 20_000:
                await asyncio.gather(*batch)
                batch = []
        await asyncio.gather(*batch)
    finally:
        await producer.stop()


def run(stack: BenchStack, sizes: list[int], seconds: float, say=print) -> dict:
    settings = stack.settings()
    vegeta = tools.vegeta(settings)
    cache = redis.Redis.from_url(settings.redis_url)
    auth = {"Authorization": [f"Bearer {settings.dev_api_key.get_secret_value()}"]}
    changelog = f"{settings.worker_id}-payments-changelog"
    rows = []
    stored = in_flight = 0
    for size in sizes:
        t0 = time.perf_counter()
        fill_receipts(cache, stored, size)
        stored = size
        asyncio.run(fill_in_flight(settings.kafka_bootstrap, changelog, settings.payment_topic_partitions,
                                   in_flight, size))
        in_flight = size
        fill_s = time.perf_counter() - t0

        stack.wait_drained()  # let the fill's side effects settle before measuring
        picks = random.Random(size).sample(range(size), min(size, 5000))
        targets = [{"method": "GET", "header": auth,
                    "url": f"http://{settings.ingress_host}:{settings.ingress_port}/v1/getReceipt?receipt_id="
                           f"rcpt_scale{i:019d}&user_id=scale-user-{i % 100_000}"} for i in picks]
        receipt_step = tools.vegeta_step(vegeta, "scale", f"getReceipt, {size:,} stored", targets,
                                         RECEIPT_READ_RATE, seconds)

        # The worker loses its local RocksDB state and rebuilds its table from the changelog.
        stack.cli("pipeline", "down", "worker")
        shutil.rmtree(settings.pipeline_data_dir / settings.worker_id, ignore_errors=True)
        t0 = time.perf_counter()
        stack.cli("pipeline", "up", "worker")
        rebuild_s = time.perf_counter() - t0
        stack.refresh()

        stack.wait_drained()
        start, post = asyncio.run(load.paystream_payments(settings, PAYMENT_RATE, seconds))
        rows.append({"size": size, "fill_s": round(fill_s, 1), "rebuild_s": round(rebuild_s, 1),
                     "receipts": receipt_step, "start": start, "post": post,
                     "redis_used_mib": round(cache.info("memory")["used_memory"] / 2**20, 1)})
        say(f"  {size:>9,}: getReceipt p99 {receipt_step.p99_ms} ms, start p99 {start.p99_ms} ms, "
            f"post p99 {post.p99_ms} ms, table rebuilt in {rebuild_s:.1f} s")
    cache.close()
    return {"rows": rows, "receipt_rate": RECEIPT_READ_RATE, "payment_rate": PAYMENT_RATE}
