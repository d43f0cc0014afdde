"""Stripe's conventions on the live API: currencies in either case, idempotent replays that never touch
the pipeline, Request-Id on every answer, the design's paths beside /v1, and cursor-paginated lists."""

from __future__ import annotations

import asyncio
import uuid

from tests.api_client import identity
from tests.kafka_probe import end_offsets, read_raw_headers_since
from tests.waits import wait_listed


async def test_a_lowercase_currency_is_taken_and_answered_in_upper_case(api):
    who = identity()
    started = await api.start(who, "12.50", "eur")
    assert started.status == 201, started.body
    assert (started.body["currency"], started.body["amount_minor"]) == ("EUR", 1250)
    posted = await api.post(who, started.body["transaction_id"], await api.card(), "12.50", "eur")
    assert posted.status == 201, posted.body
    assert posted.body["currency"] == "EUR"


async def test_a_replayed_request_gets_the_first_answer_without_reaching_kafka(api, stack, settings):
    bootstrap = stack["kafka"]["address"]
    who, key = identity(), uuid.uuid4().hex
    first = await api.start(who, "3.10", "EUR", idempotency_key=key)
    assert first.status == 201 and first.body["client_secret"], first.body
    method = await api.card()
    post_key = uuid.uuid4().hex
    posted = await api.post(who, first.body["transaction_id"], method, "3.10", "EUR", idempotency_key=post_key)
    assert posted.status == 201

    before = end_offsets(bootstrap, settings.topics.commands)
    again = await api.start(who, "3.10", "EUR", idempotency_key=key)
    posted_again = await api.post(who, first.body["transaction_id"], method, "3.10", "EUR", idempotency_key=post_key)
    assert (again.status, again.body) == (first.status, first.body)  # the client secret too, replayed
    assert (posted_again.status, posted_again.body) == (posted.status, posted.body)
    assert again.headers["Idempotent-Replayed"] == posted_again.headers["Idempotent-Replayed"] == "true"
    assert end_offsets(bootstrap, settings.topics.commands) == before


async def test_every_answer_names_its_request_and_the_command_carries_the_same_id(api, stack, settings):
    before = end_offsets(stack["kafka"]["address"], settings.topics.commands)
    started = await api.start(identity(), "2.00", "EUR")
    refused = await api.call("GET", "/v1/getReceipt", params={"receipt_id": "rcpt_x"})
    assert started.headers["Request-Id"].startswith("req_") and refused.headers["Request-Id"].startswith("req_")
    produced = read_raw_headers_since(stack["kafka"]["address"], settings.topics.commands, before)
    assert f"req_{produced[-1]['correlation_id']}" == started.headers["Request-Id"]


async def test_the_design_paths_are_aliases_of_v1(api):
    who = identity()
    started = await api.call("POST", "/startPayment", {**who, "amount": "4.00", "currency": "EUR"})
    assert started.status == 201, started.body
    await wait_listed(api, "/v1/payments", who, 1)  # the payment's document is the sinks' to write
    via_v1 = await api.call("GET", f"/v1/payments/{started.body['payment_id']}", params={"user_id": who["user_id"]})
    via_design = await api.call("GET", f"/payments/{started.body['payment_id']}", params={"user_id": who["user_id"]})
    assert via_v1.status == via_design.status == 200 and via_v1.body == via_design.body


async def test_lists_go_newest_first_a_page_at_a_time(api):
    who = identity()
    made = []
    for amount in ("1.00", "2.00", "3.00"):
        started = await api.start(who, amount, "EUR")
        assert started.status == 201
        made.append(started.body["payment_id"])
        newest_session = started.body["transaction_id"]
        await asyncio.sleep(0.01)  # distinct creation times
    await wait_listed(api, "/v1/payments", who, 3)
    first = await api.call("GET", "/v1/payments", params={"user_id": who["user_id"], "limit": 2})
    assert (first.status, first.body["object"], first.body["has_more"]) == (200, "list", True)
    assert [p["payment_id"] for p in first.body["data"]] == made[::-1][:2]
    rest = await api.call("GET", "/v1/payments", params={"user_id": who["user_id"], "limit": 2,
                                                          "starting_after": first.body["data"][-1]["payment_id"]})
    assert [p["payment_id"] for p in rest.body["data"]] == [made[0]] and rest.body["has_more"] is False

    # The session the start answered with: the list is the store's, which may still hold the payment's
    # first version for a moment (the sinks write each version as it comes; eventual consistency).
    posted = await api.post(who, newest_session, await api.card(), "3.00", "EUR")
    assert posted.status == 201
    receipts = await wait_listed(api, "/v1/receipts", who, 1)
    assert receipts["data"] == [posted.body]  # e-mail opened for the owner, as getReceipt answers

    too_many = await api.call("GET", "/v1/receipts", params={"user_id": who["user_id"], "limit": 101})
    assert (too_many.status, too_many.body["error"]["param"]) == (422, "limit")
