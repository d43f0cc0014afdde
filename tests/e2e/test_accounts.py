"""Accounts: every key belongs to one, and no account or user can read or touch another's objects, even
under the same user id; keys are stored hashed, revoked at once, and rate-limited in Redis."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import pytest
import redis

from paystream import tuning
from tests.api_client import identity
from tests.conftest import new_api_key, paystream
from tests.kafka_probe import end_offsets
from tests.waits import wait_listed


@pytest.fixture
async def world(api):
    """Account A's user u1 with a receipted payment; A's u2, and account B with a user of the very same id."""
    suffix = uuid.uuid4().hex[:8]
    a, b = api.with_key(new_api_key(f"acct-a-{suffix}")), api.with_key(new_api_key(f"acct-b-{suffix}"))
    owner = identity(f"u1-{suffix}")
    key = f"order-{suffix}"
    started = await a.start(owner, "8.00", "EUR", idempotency_key=key)
    assert started.status == 201, started.body
    posted = await a.post(owner, started.body["transaction_id"], await a.card(), "8.00", "EUR")
    assert posted.status == 201, posted.body
    await wait_listed(a, "/v1/receipts", owner, 1)
    return {"a": a, "b": b, "owner": owner, "other_user": identity(f"u2-{suffix}"), "key": key,
            "payment": started.body, "receipt": posted.body}


def strangers(w: dict):
    """(who asks, as whom): another user of the same account, and the same user id in another account."""
    return [("a", w["other_user"]), ("b", w["owner"]), ("b", w["other_user"])]


async def test_no_object_is_readable_or_writable_across_accounts_or_users(world, stack, settings):
    w = world
    payment, receipt = w["payment"], w["receipt"]
    commands = end_offsets(stack["kafka"]["address"], settings.topics.commands)
    matrix = []
    for caller, who in strangers(w):
        client = w[caller]
        tries = {
            "read payment": await client.payment(who, payment["payment_id"]),
            "read receipt": await client.receipt(who, receipt["receipt_id"]),
            "read receipt by body": await client.call("POST", "/v1/getReceipt",
                                                      {"receipt_id": receipt["receipt_id"], "user_id": who["user_id"]}),
            "post to the transaction": await client.post(who, payment["transaction_id"], "pm_card_visa", "8.00", "EUR"),
            "design path: read receipt": await client.call("GET", "/getReceipt", params={
                "receipt_id": receipt["receipt_id"], "user_id": who["user_id"]}),
            "design path: read payment": await client.call("GET", f"/payments/{payment['payment_id']}",
                                                           params={"user_id": who["user_id"]}),
        }
        for what, answer in tries.items():
            matrix.append((caller, who["user_id"], what, answer.status, answer.body["error"]["code"]))
        for path in ("/v1/payments", "/v1/receipts"):
            listed = await client.call("GET", path, params={"user_id": who["user_id"]})
            matrix.append((caller, who["user_id"], f"list {path}", listed.status, len(listed.body["data"])))
    expected_codes = {"read payment": "payment_not_found", "read receipt": "receipt_not_found",
                      "read receipt by body": "receipt_not_found", "post to the transaction": "payment_not_found",
                      "design path: read receipt": "receipt_not_found", "design path: read payment": "payment_not_found"}
    for caller, user, what, status, detail in matrix:
        if what.startswith("list"):
            assert (status, detail) == (200, 0), (caller, user, what)
        else:
            assert (status, detail) == (404, expected_codes[what]), (caller, user, what, status, detail)
    # Refused, so nothing reached the worker.
    assert end_offsets(stack["kafka"]["address"], settings.topics.commands) == commands

    # The owner, through the same calls, sees everything; nothing of theirs was changed.
    a, owner = w["a"], w["owner"]
    assert (await a.payment(owner, payment["payment_id"])).body["status"] == "receipted"
    assert (await a.receipt(owner, receipt["receipt_id"])).body == receipt
    listed = await wait_listed(a, "/v1/payments", owner, 1)
    assert [p["payment_id"] for p in listed["data"]] == [payment["payment_id"]]


async def test_the_same_idempotency_key_in_two_accounts_names_two_payments(world):
    w = world
    mine = await w["a"].start(w["owner"], "8.00", "EUR", idempotency_key=w["key"])
    theirs = await w["b"].start(w["owner"], "8.00", "EUR", idempotency_key=w["key"])
    assert mine.status == theirs.status == 201, (mine.body, theirs.body)
    assert mine.body["payment_id"] == w["payment"]["payment_id"]  # A's repeat: A's own payment
    assert mine.headers.get("Idempotent-Replayed") == "true"
    assert theirs.body["payment_id"] != mine.body["payment_id"]
    assert theirs.body["transaction_id"] != mine.body["transaction_id"]
    assert "Idempotent-Replayed" not in theirs.headers


def test_keys_are_stored_as_hashes_listed_without_them_and_cache_keys_are_scoped(world, stack):
    listed = paystream("apikey", "list", "--json")
    assert listed.returncode == 0
    records = json.loads(listed.stdout)
    accounts = {r["account"] for r in records}
    assert any(a.startswith("acct-a-") for a in accounts) and "dev" in accounts
    assert all("key_hash" not in r for r in records)
    client = redis.Redis.from_url(stack["redis"]["address"])
    stored = client.hgetall("paystream:apikeys")
    for api in (world["a"], world["b"]):
        assert api.api_key not in listed.stdout
        assert not any(api.api_key.encode() in k or api.api_key.encode() in v for k, v in stored.items())
    receipt = world["receipt"]
    assert client.exists(f"receipt:{receipt['account']}:{receipt['user_id']}:{receipt['receipt_id']}")


async def test_a_revoked_key_is_refused_within_the_key_memory(api, settings):
    key = new_api_key("acct-revoked")
    client = api.with_key(key)
    assert (await client.call("GET", "/v1/payments", params={"user_id": "u1"})).status == 200
    key_id = next(r["key_id"] for r in json.loads(paystream("apikey", "list", "--json").stdout)
                  if r["account"] == "acct-revoked" and key.startswith(r["prefix"]))
    assert paystream("apikey", "revoke", key_id).returncode == 0
    # Refused once the ingress's memory of the key (PAYSTREAM_KEY_CACHE_S) has lapsed: asked until then.
    deadline = time.monotonic() + settings.key_cache_s + 15
    while (refused := await client.call("GET", "/v1/payments", params={"user_id": "u1"})).status == 200:
        assert time.monotonic() < deadline, "a revoked key is still admitted"
        await asyncio.sleep(0.2)
    assert (refused.status, refused.body["error"]["code"]) == (401, "invalid_api_key")


async def test_a_burst_is_limited_with_429_and_retry_after_and_the_next_window_is_admitted(api, stack, settings):
    client = api.with_key(new_api_key(f"acct-limited-{uuid.uuid4().hex[:6]}", "5/second"), polite=False)
    commands = end_offsets(stack["kafka"]["address"], settings.topics.commands)
    burst = await asyncio.gather(*(client.start(identity(), "1.00", "EUR") for _ in range(12)))
    statuses = sorted(r.status for r in burst)
    assert statuses.count(201) == 5 and statuses.count(429) == 7, statuses
    limited = next(r for r in burst if r.status == 429)
    assert limited.body["error"]["type"] == "rate_limit_error"
    assert limited.body["error"]["code"] == "rate_limit_exceeded"
    retry_after = int(limited.headers["Retry-After"])
    assert retry_after == 1  # the oldest of the five leaves the one-second window within it
    # Only the admitted five became commands.
    produced = sum(end_offsets(stack["kafka"]["address"], settings.topics.commands).values()) - sum(commands.values())
    assert produced == 5
    # Another key of another account is not held back by this one's burst.
    assert (await api.call("GET", "/v1/payments", params={"user_id": "u1"})).status == 200
    await asyncio.sleep(retry_after + 0.1)
    again = await client.call("GET", "/v1/payments", params={"user_id": "u1"})
    assert again.status == 200


async def test_a_key_past_a_limit_its_ingress_leases_gets_429_with_retry_after(api, settings):
    """A limit large enough for leases (connectors/rate_limits.py): never more admitted than it, the rest
    refused with when to retry, and at most the tokens the ingress processes may hold unspent refused early."""
    from connectors.rate_leases import lease_ceiling

    amount, period_s = 200, 10
    ceiling = lease_ceiling(amount, tuning.RATE_LIMIT_LEASE_FRACTION, tuning.RATE_LIMIT_LEASE_MAX)
    assert ceiling > 1
    client = api.with_key(new_api_key(f"acct-leased-{uuid.uuid4().hex[:6]}", f"{amount}/{period_s} seconds"),
                          polite=False)
    answers = []
    for _ in range(4):  # in waves, under the ingress's bound on reads in flight
        answers += await asyncio.gather(*(client.call("GET", "/v1/payments", params={"user_id": "u1"})
                                          for _ in range(65)))
    ok = sum(1 for r in answers if r.status == 200)
    limited = [r for r in answers if r.status == 429]
    assert ok + len(limited) == len(answers), sorted({r.status for r in answers})
    assert amount - 4 * (ceiling - 1) <= ok <= amount  # up to four ingress processes hold a lease each
    assert all(r.body["error"]["code"] == "rate_limit_exceeded" for r in limited)
    assert all(1 <= int(r.headers["Retry-After"]) <= period_s for r in limited)


async def test_a_user_token_sees_and_acts_for_its_own_user_only(world):
    w = world
    a, owner, other = w["a"], w["owner"], w["other_user"]
    minted = await a.call("POST", "/v1/user_tokens", {"user_id": owner["user_id"], "ttl_s": 60})
    assert minted.status == 201, minted.body
    assert minted.body["user_id"] == owner["user_id"] and minted.body["expires_at"] > time.time()
    app = a.with_key(minted.body["token"])

    # Its own user's objects, like the account's key...
    assert (await app.receipt(owner, w["receipt"]["receipt_id"])).body == w["receipt"]
    assert (await app.payment(owner, w["payment"]["payment_id"])).status == 200
    assert (await app.start(owner, "1.50", "EUR")).status == 201
    # ...and nothing of another user of the same account: 404, as for what does not exist.
    theirs = await a.start(other, "2.50", "EUR")
    assert theirs.status == 201
    for answer, code in ((await app.payment(other, theirs.body["payment_id"]), "payment_not_found"),
                         (await app.call("GET", "/v1/payments", params={"user_id": other["user_id"]}), "user_not_found"),
                         (await app.start(other, "1.00", "EUR"), "user_not_found"),
                         (await app.post(other, theirs.body["transaction_id"], "pm_card_visa", "2.50", "EUR"),
                          "payment_not_found")):
        assert (answer.status, answer.body["error"]["code"]) == (404, code)
    # A token mints nothing, and a tampered one is no key at all.
    again = await app.call("POST", "/v1/user_tokens", {"user_id": other["user_id"]})
    assert (again.status, again.body["error"]["type"]) == (403, "permission_error")
    tampered = a.with_key(minted.body["token"][:-3] + "abc")
    assert (await tampered.receipt(owner, w["receipt"]["receipt_id"])).status == 401
    # Another account's token, for a user of the very same id, sees nothing of this one.
    foreign = await w["b"].call("POST", "/v1/user_tokens", {"user_id": owner["user_id"]})
    stranger = a.with_key(foreign.body["token"])
    assert (await stranger.receipt(owner, w["receipt"]["receipt_id"])).status == 404
