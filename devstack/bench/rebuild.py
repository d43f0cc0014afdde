"""How fast the stores are rebuilt from the topics: `python -m devstack.bench.rebuild [--payments N]`.

On a throwaway stack (Kafka, the Couchbase cluster and Redis on the benchmark
ports, no pipeline), it writes N complete payments to the topics as the worker
does (five events each, started -> tokenized -> posting -> succeeded ->
receipted, the payments of one round of 1,000 interleaved, plus one receipt
each), then runs the production rebuild (`paystream store rebuild`'s code) into
the empty stores and reports documents written per second. Every payment
becomes four documents: the payment, its transaction id, its receipt in
Couchbase and in the cache. The figure goes into BENCHMARKS.md, in a section
of its own that `paystream bench all` keeps.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from datetime import UTC, datetime
from pathlib import Path

from aiokafka import AIOKafkaProducer

from devstack.bench.bench_stack import BenchStack
from devstack.bench.core import git_commit, put_section
from devstack.bench.report import machine
from devstack.settings import DevSettings, get_dev_settings
from paystream import bootstrap, messages
from paystream.domain.commands import PostPayment, StartPayment
from paystream.domain.events import PaymentChanged
from paystream.domain.model import Payment
from paystream.domain.money import Money
from paystream.domain.records import Receipt

PREFIX = "rebuildbench"
ROUND = 1000
BEGIN, END = "<!-- store-rebuild -->", "<!-- /store-rebuild -->"


def lifecycle(i: int, tag: str = "rb", users: int = 10_000) -> list[Payment]:
    """Payment `i`'s five versions (ids made of `tag` and `i`; `users` users in turn)."""
    at = "2026-11-26T10:00:00.000Z"
    amount = Money.parse("10.00", "EUR")
    start = StartPayment(command_id=f"cmd_s{tag}{i}", payment_id=f"pay_{tag}{i:020d}", account="acct_bench",
                         user_id=f"user-{tag}-{i % users}",
                         email="bench@example.com", requested_at=at, payment_type="credit", amount=amount)
    post = PostPayment(command_id=f"cmd_p{tag}{i}", payment_id=start.payment_id, account=start.account,
                       user_id=start.user_id,
                       email=start.email, requested_at=at, payment_type="credit", transaction_id=f"pi_{tag}{i:014d}",
                       amount=amount, payment_method="pm_card_visa")
    started = Payment.start(start, at)
    tokenized = started.tokenized(post.transaction_id, at)
    posting = tokenized.posting(post, at)
    succeeded = posting.succeeded(f"ch_{tag}{i:014d}", at)
    return [started, tokenized, posting, succeeded, succeeded.receipted(at)]


async def fill(settings: DevSettings, payments: int, tag: str = "rb", users: int = 10_000) -> tuple[int, dict]:
    """Write the payments' events and receipts (`lifecycle`) to the topics; return the records written
    and, per (topic, partition), the last value written there (a payment's last version, a receipt)."""
    topics = settings.topics
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all", linger_ms=20,
                                max_batch_size=512 * 1024)
    await producer.start()
    sent = 0
    last: dict[tuple[str, int], Payment | Receipt] = {}
    try:
        for first in range(0, payments, ROUND):
            lives = [lifecycle(i, tag, users) for i in range(first, min(payments, first + ROUND))]
            pending = []
            for step in range(5):
                for life in lives:
                    payment = life[step]
                    pending.append((payment, await producer.send(
                        topics.events, key=payment.payment_id.encode(),
                        value=messages.encode(PaymentChanged.of(payment)))))
            for life in lives:
                receipt = life[-1].receipt()
                pending.append((receipt, await producer.send(topics.receipts, key=receipt.receipt_id.encode(),
                                                             value=messages.encode(receipt))))
            for value, where in zip([v for v, _ in pending], await asyncio.gather(*[f for _, f in pending]),
                                    strict=True):
                last[(where.topic, where.partition)] = value
            sent += len(pending)
    finally:
        await producer.stop()
    return sent, last


async def rebuild(settings: DevSettings) -> dict:
    rebuilder = await bootstrap.store_rebuild(settings)
    try:
        done = await rebuilder.rebuild()
    finally:
        await rebuilder.store.close()
        await rebuilder.cache.close()
    return {"records": done.records, "documents": done.documents, "seconds": round(done.seconds, 1),
            "documents_per_s": round(done.documents_per_s), "records_per_s": round(done.records / done.seconds)}


def publish(root: Path, payments: int, result: dict, command: str) -> Path:
    section = "\n".join([
        BEGIN,
        "## Store rebuild from the topics",
        "",
        f"- command: `{command}` (its own throwaway stack: Kafka, the local Couchbase cluster, Redis)",
        f"- commit: `{git_commit(root)}`, run at {datetime.now(UTC).isoformat(timespec='seconds')}",
        f"- machine: {machine()}",
        f"- {payments:,} payments (five events and a receipt each) replayed into empty stores by "
        "`paystream store rebuild`'s code: each payment's latest version, its transaction id, its receipt in "
        "Couchbase and in the Redis cache",
        "",
        "| payments | records read | documents written | seconds | documents/s | records/s | target |",
        "|---:|---:|---:|---:|---:|---:|---|",
        f"| {payments:,} | {result['records']:,} | {result['documents']:,} | {result['seconds']} | "
        f"**{result['documents_per_s']:,}** | {result['records_per_s']:,} | ≥ 5,000 documents/s: "
        f"**{'met' if result['documents_per_s'] >= 5000 else 'missed'}** |",
        END,
    ])
    return put_section(root / "BENCHMARKS.md", BEGIN, END, section)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--payments", type=int, default=100_000)
    args = parser.parse_args()
    root = Path.cwd()
    command = f"python -m devstack.bench.rebuild --payments {args.payments}"
    with BenchStack(root, get_dev_settings(), pipeline=False, say=print) as stack:
        os.environ["PAYSTREAM_TOPIC_PREFIX"] = PREFIX
        settings = DevSettings(_env_file=stack.env["PAYSTREAM_ENV_FILE"])
        bootstrap.ensure_topics(settings)
        started = time.monotonic()
        sent, _ = asyncio.run(fill(settings, args.payments))
        print(f"wrote {sent:,} records in {time.monotonic() - started:.0f} s; rebuilding ...")
        result = asyncio.run(rebuild(settings))
    print(result)
    print(f"published {publish(root, args.payments, result, command)}")


if __name__ == "__main__":
    main()
