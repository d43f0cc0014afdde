"""startPayment -> postPayment -> getReceipt through real ingress, Kafka, worker, sinks and stores."""

from __future__ import annotations

import asyncio
import time
import uuid
from decimal import Decimal

import redis

from tests.api_client import DECLINING_CARD, identity
from tests.kafka_probe import end_offsets, read_since


def wait_for_doc(collection, key: str, timeout: float = 15.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return collection.get(key).content_as[dict]
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


async def test_happy_path_start_post_receipt(api, stack, settings, couchbase_collection, sandbox):
    receipts_before = end_offsets(stack["kafka"]["address"], settings.topics.receipts)
    who = identity()

    started = await api.start(who, "12.34", "EUR", idempotency_key=uuid.uuid4().hex)
    assert started.status == 201, started.body
    assert started.body["status"] == "tokenized"
    assert started.body["transaction_id"].startswith("pi_")
    assert started.body["client_secret"].startswith(started.body["transaction_id"])
    assert (started.body["amount"], started.body["amount_minor"], started.body["currency"]) == ("12.34", 1234, "EUR")

    method = await api.card()
    posted = await api.post(who, started.body["transaction_id"], method, "12.34", "EUR",
                            idempotency_key=uuid.uuid4().hex)
    assert posted.status == 201, posted.body
    receipt = posted.body
    assert receipt["status"] == "succeeded"
    assert receipt["payment_id"] == started.body["payment_id"]
    assert (receipt["amount"], receipt["amount_minor"], receipt["currency"]) == ("12.34", 1234, "EUR")
    assert receipt["receipt_id"].startswith("rcpt_")

    # Force the first read past the cache: it must come from a Couchbase replica. The store keeps the
    # e-mail sealed with the user's key, the answer has it in plaintext.
    receipt_doc = wait_for_doc(couchbase_collection, f"receipt::{receipt['receipt_id']}")
    assert receipt_doc == receipt | {"email_id": receipt_doc["email_id"]}
    assert receipt["email_id"] == who["email_id"] and receipt_doc["email_id"].startswith("sealed1.")
    # The cache sink may write the same receipt again after it is deleted: deleted until a read misses.
    cache = redis.Redis.from_url(stack["redis"]["address"])
    deadline = time.monotonic() + 15
    while True:
        cache.delete(f"receipt:{receipt['account']}:{who['user_id']}:{receipt['receipt_id']}")
        first = await api.receipt(who, receipt["receipt_id"])
        if first.headers.get("X-Cache") != "hit" or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    second = await api.receipt(who, receipt["receipt_id"])
    assert (first.status, first.headers["X-Cache"]) == (200, "miss")
    assert (second.status, second.headers["X-Cache"]) == (200, "hit")
    assert first.body == second.body == receipt

    payment_doc = wait_for_doc(couchbase_collection, f"payment::{receipt['payment_id']}")
    deadline = time.monotonic() + 10
    while payment_doc["status"] != "receipted" and time.monotonic() < deadline:
        time.sleep(0.1)
        payment_doc = wait_for_doc(couchbase_collection, f"payment::{receipt['payment_id']}")
    assert payment_doc["status"] == "receipted"
    assert [s for s, _ in payment_doc["history"]] == ["started", "tokenized", "posting", "succeeded", "receipted"]

    status = await api.payment(who, receipt["payment_id"])
    assert status.status == 200 and status.body["status"] == "receipted"

    on_topic = [r for r in read_since(stack["kafka"]["address"], settings.topics.receipts, receipts_before)
                if r["receipt_id"] == receipt["receipt_id"]]
    assert on_topic == [receipt | {"email_id": receipt_doc["email_id"]}]

    charges = sandbox.succeeded_charges(receipt["payment_id"])
    assert [(c["amount"], c["currency"], c["on"]) for c in charges] == [(1234, "eur", receipt["transaction_id"])]


async def test_start_without_amount_then_post_charges_once(api, sandbox):
    who = identity()
    started = await api.start(who, amount=None, currency=None)
    assert started.status == 201, started.body
    assert started.body["transaction_id"].startswith("seti_")
    posted = await api.post(who, started.body["transaction_id"], await api.card(), "7.50", "USD")
    assert posted.status == 201, posted.body
    assert (posted.body["amount_minor"], posted.body["currency"]) == (750, "USD")


async def test_repeated_post_with_same_key_returns_same_receipt_and_charges_once(api, sandbox):
    who = identity()
    started = await api.start(who, "99.99", "USD")
    method = await api.card()
    key = uuid.uuid4().hex
    first = await api.post(who, started.body["transaction_id"], method, "99.99", "USD", idempotency_key=key)
    again = await api.post(who, started.body["transaction_id"], method, "99.99", "USD", idempotency_key=key)
    assert first.status == again.status == 201
    assert first.body == again.body
    assert "Idempotent-Replayed" not in first.headers and again.headers["Idempotent-Replayed"] == "true"

    other_key = await api.post(who, started.body["transaction_id"], method, "99.99", "USD",
                               idempotency_key=uuid.uuid4().hex)
    assert other_key.status == 409
    assert other_key.body["error"]["code"] == "payment_already_posted"

    charges = sandbox.succeeded_charges(started.body["payment_id"])
    assert [c["amount"] for c in charges] == [9999]


async def test_repeated_start_with_same_key_is_the_same_payment(api, sandbox):
    who = identity()
    key = uuid.uuid4().hex
    first = await api.start(who, "5.00", "EUR", idempotency_key=key)
    again = await api.start(who, "5.00", "EUR", idempotency_key=key)
    assert first.status == again.status == 201
    assert first.body == again.body
    changed = await api.start(who, "6.00", "EUR", idempotency_key=key)
    assert changed.status == 409
    assert changed.body["error"] == {
        "type": "idempotency_error", "code": "idempotency_key_reused",
        "message": "this Idempotency-Key was used with a different request body", "param": "Idempotency-Key",
        "field": "Idempotency-Key", "decline_code": None,
    }


async def test_declining_card_gives_402_and_no_receipt(api, couchbase_collection):
    who = identity()
    started = await api.start(who, "20.00", "EUR")
    declined = await api.post(who, started.body["transaction_id"], await api.card(DECLINING_CARD), "20.00", "EUR")
    assert declined.status == 402, declined.body
    assert declined.body["error"]["type"] == "card_error"
    assert declined.body["error"]["code"] == "card_declined"
    assert declined.body["error"]["decline_code"]  # Stripe's reason, e.g. generic_decline
    assert declined.body["error"]["param"] == declined.body["error"]["field"] == "payment_method"

    status = await api.payment(who, started.body["payment_id"])
    deadline = time.monotonic() + 10
    # The payment document is written by the sinks: eventually consistent.
    while status.body.get("status") != "declined" and time.monotonic() < deadline:
        time.sleep(0.1)
        status = await api.payment(who, started.body["payment_id"])
    assert status.body["status"] == "declined"
    assert status.body["receipt_id"] is None

    # Declined is not final: another card may pay.
    retry = await api.post(who, started.body["transaction_id"], await api.card(), "20.00", "EUR")
    assert retry.status == 201, retry.body


async def test_amount_other_than_started_is_refused(api, sandbox):
    who = identity()
    started = await api.start(who, "10.00", "EUR")
    wrong = await api.post(who, started.body["transaction_id"], await api.card(), "10.01", "EUR")
    assert wrong.status == 422
    assert (wrong.body["error"]["code"], wrong.body["error"]["field"]) == ("amount_mismatch", "amount")
    assert sandbox.charges_of_payments([started.body["payment_id"]]) == {started.body["payment_id"]: []}


async def test_another_users_payment_is_404(api):
    owner, stranger = identity(), identity()
    started = await api.start(owner, "3.00", "EUR")
    method = await api.card()
    stolen = await api.post(stranger, started.body["transaction_id"], method, "3.00", "EUR")
    assert stolen.status == 404
    assert stolen.body["error"]["code"] == "payment_not_found"
    unknown = await api.post(owner, "pi_doesnotexist", method, "3.00", "EUR")
    assert unknown.status == 404
    assert unknown.body == stolen.body | {"error": {**stolen.body["error"], "message": unknown.body["error"]["message"]}}

    posted = await api.post(owner, started.body["transaction_id"], method, "3.00", "EUR")
    assert posted.status == 201
    assert (await api.receipt(stranger, posted.body["receipt_id"])).status == 404
    assert (await api.payment(stranger, started.body["payment_id"])).status == 404


async def test_analysts_summary_of_the_payments_table_counts_a_new_payment(api, pipeline, settings):
    url = f"{pipeline['worker']['address']}/tables/payments/summary/"
    token = {"Authorization": f"Bearer {settings.internal_token.get_secret_value()}"}

    async def summary() -> dict:
        async with api.session.get(url, headers=token) as resp:
            assert resp.status == 200
            return await resp.json()

    # Table contents are internal: without the token, or on Faust's own table pages, nothing.
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        async with api.session.get(url, headers=headers) as resp:
            assert resp.status == 401
    async with api.session.get(f"{pipeline['worker']['address']}/table/payments/") as resp:
        assert resp.status == 404

    before = await summary()
    who = identity()
    started = await api.start(who, "1.25", "CHF")
    posted = await api.post(who, started.body["transaction_id"], await api.card(), "1.25", "CHF")
    assert posted.status == 201
    after = await summary()
    assert after["payments"] == before["payments"] + 1
    assert after["by_status"]["receipted"] == before["by_status"].get("receipted", 0) + 1
    taken = Decimal(after["receipted_totals"]["CHF"]) - Decimal(before["receipted_totals"].get("CHF", "0"))
    assert taken == Decimal("1.25")
