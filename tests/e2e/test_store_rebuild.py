"""The store is derived from the topics: wiped, it comes back by itself (the sinks) or on command
(`paystream store rebuild`), every payment and receipt is readable again, and every document is the
one the sinks had written (the payment with its account, the transaction id, the receipt with its
e-mail sealed, both user indexes, the cached receipt)."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import redis
from couchbase.exceptions import DocumentNotFoundException

from connectors.couchbase_store import data_key_key, payment_key, receipt_key, transaction_key, user_index_key
from connectors.redis_cache import receipt_key as cached_receipt_key
from devstack.dev_key import DEV_ACCOUNT
from paystream.domain.sealing import is_sealed
from tests.api_client import pay
from tests.conftest import ROOT, paystream

PAYMENTS = 6


@pytest.fixture
def cache(stack):
    client = redis.Redis.from_url(stack["redis"]["address"])
    yield client
    client.close()


async def readable(api, receipts: list[dict], timeout: float) -> list[str]:
    """Poll until every payment's status and receipt is served, the receipt with the e-mail its client
    gave (opened with the user's data key); return what is still not."""
    deadline = time.monotonic() + timeout
    while True:
        missing = []
        for r in receipts:
            who = {"user_id": r["user_id"], "email_id": r["email_id"]}
            status = await api.payment(who, r["payment_id"])
            if status.status != 200 or status.body["status"] != "receipted":
                missing.append(f"{r['payment_id']}: {status.status}")
            receipt = await api.receipt(who, r["receipt_id"])
            if receipt.status != 200 or receipt.body.get("email_id") != r["email_id"]:
                missing.append(f"{r['receipt_id']}: {receipt.status} {receipt.body.get('email_id')}")
        if not missing or time.monotonic() > deadline:
            return missing
        await asyncio.sleep(1)


def couchbase_keys(r: dict) -> list[str]:
    """What Couchbase holds for one receipted payment of the dev account: what the sinks write, and the
    user's data key (the ingress's, kept on the data-keys topic) without which the e-mail is lost."""
    return [payment_key(r["payment_id"]), receipt_key(r["receipt_id"]), transaction_key(r["transaction_id"]),
            user_index_key("payments", DEV_ACCOUNT, r["user_id"]), user_index_key("receipts", DEV_ACCOUNT, r["user_id"]),
            data_key_key(DEV_ACCOUNT, r["user_id"])]


def cache_key(r: dict) -> str:
    return cached_receipt_key(DEV_ACCOUNT, r["user_id"], r["receipt_id"])


def documents(collection, cache, receipts: list[dict]) -> dict[str, dict | None]:
    """Every document the sinks write for these payments, by key (None where missing)."""
    docs: dict[str, dict | None] = {}
    for r in receipts:
        for key in couchbase_keys(r):
            try:
                docs[key] = collection.get(key).content_as[dict]
            except DocumentNotFoundException:
                docs[key] = None
        cached = cache.get(cache_key(r))
        docs[f"redis {cache_key(r)}"] = json.loads(cached) if cached else None
    return docs


async def written(collection, cache, receipts: list[dict], timeout: float = 30) -> dict[str, dict | None]:
    """The documents, once the sinks wrote every one (the receipts' agent writes a moment later), each
    payment's in its last version (the sinks write each version in turn: an earlier one read here would
    differ from what a rebuild writes back)."""
    deadline = time.monotonic() + timeout

    def done(docs: dict[str, dict | None]) -> bool:
        return None not in docs.values() and all(doc["status"] == "receipted" for key, doc in docs.items()
                                                 if key.startswith("payment::"))

    while not done(docs := documents(collection, cache, receipts)) and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
    assert None not in docs.values(), [k for k, v in docs.items() if v is None]
    assert done(docs), {k: v["status"] for k, v in docs.items() if k.startswith("payment::")}
    return docs


def as_the_sinks_write_them(docs: dict[str, dict | None]) -> None:
    """Nothing the sinks no longer write: no client secret anywhere, e-mails sealed."""
    assert "client_secret" not in json.dumps(docs)
    for key, doc in docs.items():
        if key.startswith(("payment::", "receipt::", "redis ")):
            email = doc.get("email") or doc.get("email_id")
            assert is_sealed(email), (key, email)
        if key.startswith(("payment::", "txn::")):
            assert doc["account"] == DEV_ACCOUNT, (key, doc)


async def test_a_wiped_store_is_rebuilt_by_the_sinks_unprompted(api, settings, couchbase_collection, cache):
    receipts = await pay(api, PAYMENTS)
    assert await readable(api, receipts, timeout=30) == []
    before = await written(couchbase_collection, cache, receipts)
    as_the_sinks_write_them(before)
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
    # The replay wrote exactly what the sinks had (Redis kept its copy; Couchbase lost all of it).
    assert documents(couchbase_collection, cache, receipts) == before


async def test_store_rebuild_writes_back_exactly_what_the_sinks_wrote(api, couchbase_collection, cache):
    receipts = await pay(api, 3)
    assert await readable(api, receipts, timeout=30) == []
    before = await written(couchbase_collection, cache, receipts)
    as_the_sinks_write_them(before)
    # Documents gone while the markers stay: the sinks see nothing amiss; the command puts them back.
    for r in receipts:
        for key in couchbase_keys(r):
            couchbase_collection.remove(key)
        cache.delete(cache_key(r))
    assert set(documents(couchbase_collection, cache, receipts).values()) == {None}

    result = await asyncio.to_thread(paystream, "store", "rebuild")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["records"] > 0 and report["documents"] >= 9 and report["index_entries"] >= 6, report
    assert documents(couchbase_collection, cache, receipts) == before
    assert await readable(api, receipts, timeout=10) == []
