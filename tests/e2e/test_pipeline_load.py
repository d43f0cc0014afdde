"""200 payments from 20 concurrent clients: each charged once, each receipt everywhere."""

from __future__ import annotations

import asyncio
import json
import statistics
import time

import redis

from tests.api_client import ApiClient, identity
from tests.conftest import ROOT
from tests.kafka_probe import end_offsets, read_since

CLIENTS = 20
PAYMENTS_PER_CLIENT = 10


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def one_client(api: ApiClient, n: int, starts: list, posts: list) -> list[dict]:
    receipts = []
    for i in range(PAYMENTS_PER_CLIENT):
        who = identity(f"load-{n}-{i}-{time.time_ns()}")
        started = await api.start(who, f"{n + 1}.{i:02d}", "EUR")
        assert started.status == 201, started.body
        starts.append(started.seconds)
        method = await api.card()
        posted = await api.post(who, started.body["transaction_id"], method, f"{n + 1}.{i:02d}", "EUR")
        assert posted.status == 201, posted.body
        posts.append(posted.seconds)
        receipts.append(posted.body)
    return receipts


async def test_200_payments_from_20_concurrent_clients(api, stack, settings, sandbox, couchbase_collection):
    bootstrap = stack["kafka"]["address"]
    before = end_offsets(bootstrap, settings.topics.receipts)
    starts: list[float] = []
    posts: list[float] = []

    began = time.perf_counter()
    results = await asyncio.gather(*(one_client(api, n, starts, posts) for n in range(CLIENTS)))
    elapsed = time.perf_counter() - began
    receipts = [r for client in results for r in client]
    assert len(receipts) == CLIENTS * PAYMENTS_PER_CLIENT
    assert len({r["receipt_id"] for r in receipts}) == len(receipts)

    # Exactly one successful charge per payment on the provider, over every object carrying its id.
    charges = sandbox.charges_of_payments([r["payment_id"] for r in receipts])
    for receipt in receipts:
        got = [(c["amount"], c["status"]) for c in charges[receipt["payment_id"]] if c["status"] == "succeeded"]
        assert got == [(receipt["amount_minor"], "succeeded")], receipt["payment_id"]

    # Every receipt on the topic, in Redis and in Couchbase.
    on_topic = {r["receipt_id"]: r for r in read_since(bootstrap, settings.topics.receipts, before, until=30,
                                                       want=len(receipts))}
    cache = redis.Redis.from_url(stack["redis"]["address"])
    deadline = time.monotonic() + 30
    for receipt in receipts:
        # As it travels and is stored, the e-mail is sealed with the user's key; otherwise the same.
        sealed = on_topic.get(receipt["receipt_id"], {}).get("email_id")
        assert sealed.startswith("sealed1.") and on_topic[receipt["receipt_id"]] == receipt | {"email_id": sealed}
        cached = json.loads(cache.get(f"receipt:{receipt['account']}:{receipt['user_id']}:{receipt['receipt_id']}"))
        assert cached == receipt | {"email_id": sealed}
        while True:
            try:
                assert couchbase_collection.get(f"receipt::{receipt['receipt_id']}").content_as[dict] == \
                    receipt | {"email_id": sealed}
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)

    report = {
        "payments": len(receipts), "clients": CLIENTS, "seconds": round(elapsed, 2),
        "payments_per_second": round(len(receipts) / elapsed, 1),
        "start_ms": {"p50": round(statistics.median(starts) * 1000, 1), "p99": round(percentile(starts, 99) * 1000, 1)},
        "post_ms": {"p50": round(statistics.median(posts) * 1000, 1), "p99": round(percentile(posts, 99) * 1000, 1)},
    }
    out = ROOT / "test-output"
    out.mkdir(exist_ok=True)
    (out / "pipeline-load.json").write_text(json.dumps(report, indent=2))
    print(f"\n200-payment load: {json.dumps(report)}")
