"""The store is derived from the topics: wiped, it comes back by itself (the sinks) or on command
(`paystream store rebuild`), and every payment and receipt is readable again."""

from __future__ import annotations

import asyncio
import json
import time

from couchbase.exceptions import DocumentNotFoundException

from tests.conftest import ROOT, paystream
from tests.e2e.test_monitoring import pay

PAYMENTS = 6


async def readable(api, receipts: list[dict], timeout: float) -> list[str]:
    """Poll until every payment's status and receipt is served; return what is still not."""
    deadline = time.monotonic() + timeout
    while True:
        missing = []
        for r in receipts:
            who = {"user_id": r["user_id"], "email_id": r["email_id"]}
            status = await api.payment(who, r["payment_id"])
            if status.status != 200 or status.body["status"] != "receipted":
                missing.append(f"{r['payment_id']}: {status.status}")
        if not missing or time.monotonic() > deadline:
            return missing
        await asyncio.sleep(1)


def in_couchbase(collection, receipts: list[dict]) -> list[str]:
    missing = []
    for r in receipts:
        for key in (f"payment::{r['payment_id']}", f"receipt::{r['receipt_id']}", f"txn::{r['transaction_id']}"):
            try:
                collection.get(key)
            except DocumentNotFoundException:
                missing.append(key)
    return missing


async def test_a_wiped_store_is_rebuilt_by_the_sinks_unprompted(api, settings):
    receipts = await pay(api, PAYMENTS)
    assert await readable(api, receipts, timeout=30) == []
    log = ROOT / settings.state_dir / "sinks" / "sinks.log"
    lines_before = len(log.read_text().splitlines())

    # The local cluster keeps its data in memory: a restart is a wipe.
    for args in (("stack", "down", "couchbase"), ("stack", "up", "couchbase")):
        result = await asyncio.to_thread(paystream, *args)
        assert result.returncode == 0, result.stdout + result.stderr

    assert await readable(api, receipts, timeout=90) == []

    def said() -> list[dict]:
        return [json.loads(line) for line in log.read_text().splitlines()[lines_before:] if "lost data" in line]

    # Logged when the whole replay is done, which may be after our payments' batch was written.
    deadline = time.monotonic() + 60
    while not said() and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
    assert said() and said()[0]["records"] >= PAYMENTS, said()


async def test_store_rebuild_brings_back_removed_documents(api, couchbase_collection):
    receipts = await pay(api, 3)
    assert await readable(api, receipts, timeout=30) == []
    deadline = time.monotonic() + 30  # the receipts are written by their own agent, a moment later
    while in_couchbase(couchbase_collection, receipts) and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
    assert in_couchbase(couchbase_collection, receipts) == []
    # Documents gone while the markers stay: the sinks see nothing amiss; the command puts them back.
    for r in receipts:
        for key in (f"payment::{r['payment_id']}", f"receipt::{r['receipt_id']}", f"txn::{r['transaction_id']}"):
            couchbase_collection.remove(key)
    assert len(in_couchbase(couchbase_collection, receipts)) == 9

    result = await asyncio.to_thread(paystream, "store", "rebuild")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["records"] > 0 and report["documents"] >= 9
    assert in_couchbase(couchbase_collection, receipts) == []
    assert await readable(api, receipts, timeout=10) == []
