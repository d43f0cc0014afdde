"""Refunds end to end, on the real stack: POST /v1/refunds through Kafka and the worker that owns the
payment to the Stripe sandbox, and back; counted from the sandbox's own records, since the sandbox
itself enforces nothing (it accepts any over-refund and has no idempotency)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tests.api_client import identity
from tests.conftest import new_api_key, paystream
from tests.kafka_probe import end_offsets
from tests.waits import wait_for


async def payment_view(api, who: dict, payment_id: str, refunded_minor: int) -> dict:
    """The payment's view once it shows `refunded_minor` given back: a receipted payment is read from the
    store, which the sinks bring up to date a moment after the refund (the refund reads are live)."""
    async def shown():
        view = (await api.payment(who, payment_id)).body
        return view if view.get("amount_refunded_minor") == refunded_minor else None
    return await wait_for(shown, 15) or (await api.payment(who, payment_id)).body


async def paid(api, amount: str = "10.00") -> tuple[dict, dict]:
    """A receipted payment of `amount` EUR by a new user: (who, the payment as started)."""
    who = identity()
    started = await api.start(who, amount, "EUR")
    assert started.status == 201, started.body
    posted = await api.post(who, started.body["transaction_id"], await api.card(), amount, "EUR")
    assert posted.status == 201, posted.body
    return who, started.body


async def refund(api, who: dict, payment_id: str, amount: str | None = None, reason: str | None = None,
                 key: str | None = None):
    body = {"payment_id": payment_id, "user_id": who["user_id"]}
    if amount is not None:
        body["amount"] = amount
    if reason is not None:
        body["reason"] = reason
    return await api.call("POST", "/v1/refunds", body, idempotency_key=key or f"rf-{uuid.uuid4().hex}")


def provider_refunds(sandbox, transaction_id: str) -> list[dict]:
    """The refunds the sandbox made of this payment: its own records."""
    return sandbox.call("GET", "/v1/refunds", payment_intent=transaction_id, limit=100)["data"]


async def test_two_partial_refunds_then_the_rest(api, sandbox):
    who, payment = await paid(api, "10.00")
    first = await refund(api, who, payment["payment_id"], "2.50", reason="requested_by_customer")
    assert first.status == 201, first.body
    assert first.body["id"].startswith("rf_")
    assert {k: first.body[k] for k in ("payment_id", "amount", "currency", "status", "reason", "failure_reason")} == {
        "payment_id": payment["payment_id"], "amount": "2.50", "currency": "EUR", "status": "succeeded",
        "reason": "requested_by_customer", "failure_reason": None}
    assert first.body["created_at"]
    second = await refund(api, who, payment["payment_id"], "1.50")
    assert (second.status, second.body["amount"]) == (201, "1.50"), second.body
    view = await payment_view(api, who, payment["payment_id"], 400)
    assert (view["status"], view["amount_refunded"], view["refund_status"]) == ("receipted", "4.00",
                                                                               "partially_refunded")
    rest = await refund(api, who, payment["payment_id"])  # no amount: what is left
    assert (rest.status, rest.body["amount"], rest.body["amount_minor"]) == (201, "6.00", 600), rest.body
    view = await payment_view(api, who, payment["payment_id"], 1000)
    assert (view["amount_refunded_minor"], view["refund_status"], len(view["refunds"])) == (1000, "refunded", 3)

    made = provider_refunds(sandbox, payment["transaction_id"])
    assert sorted(r["amount"] for r in made) == [150, 250, 600]

    got = await api.call("GET", f"/v1/refunds/{first.body['id']}", params={"user_id": who["user_id"]})
    assert (got.status, got.body) == (200, first.body)
    page = await api.call("GET", f"/v1/payments/{payment['payment_id']}/refunds",
                          params={"user_id": who["user_id"], "limit": 2})
    assert page.status == 200 and page.body["has_more"] is True
    assert [r["id"] for r in page.body["data"]] == [rest.body["id"], second.body["id"]]
    after = await api.call("GET", f"/v1/payments/{payment['payment_id']}/refunds",
                           params={"user_id": who["user_id"], "limit": 2, "starting_after": second.body["id"]})
    assert [r["id"] for r in after.body["data"]] == [first.body["id"]] and after.body["has_more"] is False


@pytest.mark.parametrize(("amount", "status", "code"), [("10.01", 400, "amount_too_large"),
                                                        ("1.001", 422, "invalid_amount"),
                                                        ("0", 422, "invalid_amount")])
async def test_a_bad_or_over_refund_is_refused_with_param_and_writes_nothing(api, sandbox, stack, settings,
                                                                              amount, status, code):
    who, payment = await paid(api, "10.00")
    over = await refund(api, who, payment["payment_id"], amount)
    assert (over.status, over.body["error"]["code"], over.body["error"]["param"]) == (status, code, "amount")
    assert provider_refunds(sandbox, payment["transaction_id"]) == []
    view = (await api.payment(who, payment["payment_id"])).body
    assert view["refunds"] == [] and view["amount_refunded"] is None


async def test_a_refund_over_what_is_left_is_refused(api, sandbox):
    who, payment = await paid(api, "10.00")
    assert (await refund(api, who, payment["payment_id"], "7.00")).status == 201
    over = await refund(api, who, payment["payment_id"], "3.01")
    assert (over.status, over.body["error"]["code"], over.body["error"]["param"]) == (400, "amount_too_large", "amount")
    assert [r["amount"] for r in provider_refunds(sandbox, payment["transaction_id"])] == [700]


async def test_bad_reason_is_refused_before_anything_is_sent(api, stack, settings):
    who, payment = await paid(api)
    commands = end_offsets(stack["kafka"]["address"], settings.topics.commands)
    bad = await refund(api, who, payment["payment_id"], "1.00", reason="changed_my_mind")
    assert (bad.status, bad.body["error"]["param"]) == (422, "reason")
    assert end_offsets(stack["kafka"]["address"], settings.topics.commands) == commands


async def test_eight_simultaneous_refunds_of_the_rest_make_exactly_one(api, sandbox):
    who, payment = await paid(api, "10.00")
    assert (await refund(api, who, payment["payment_id"], "4.00")).status == 201
    answers = await asyncio.gather(*(refund(api, who, payment["payment_id"]) for _ in range(8)))
    made = [a for a in answers if a.status == 201]
    assert len(made) == 1, [(a.status, a.body) for a in answers]
    assert made[0].body["amount"] == "6.00"
    assert {(a.status, a.body["error"]["code"]) for a in answers if a.status != 201} == {
        (400, "charge_already_refunded")}
    assert sorted(r["amount"] for r in provider_refunds(sandbox, payment["transaction_id"])) == [400, 600]


async def test_a_replayed_refund_returns_the_first_and_refunds_once(api, sandbox):
    who, payment = await paid(api, "10.00")
    key = f"refund-{uuid.uuid4().hex}"
    first = await refund(api, who, payment["payment_id"], "3.00", key=key)
    again = await refund(api, who, payment["payment_id"], "3.00", key=key)
    assert first.status == again.status == 201
    assert again.body == first.body and again.headers.get("Idempotent-Replayed") == "true"
    assert [r["amount"] for r in provider_refunds(sandbox, payment["transaction_id"])] == [300]


async def test_another_accounts_or_users_refund_attempt_is_not_found(api, sandbox, stack, settings):
    who, payment = await paid(api, "10.00")
    other = api.with_key(new_api_key(f"acct-other-{uuid.uuid4().hex[:8]}"))
    commands = end_offsets(stack["kafka"]["address"], settings.topics.commands)
    for client, as_whom in ((other, who), (api, identity()), (other, identity())):
        tried = await refund(client, as_whom, payment["payment_id"], "1.00")
        assert (tried.status, tried.body["error"]["code"], tried.body["error"]["param"]) == (
            404, "payment_not_found", "payment_id")
    assert end_offsets(stack["kafka"]["address"], settings.topics.commands) == commands
    assert provider_refunds(sandbox, payment["transaction_id"]) == []
    made = await refund(api, who, payment["payment_id"], "1.00")
    assert made.status == 201
    for client, as_whom in ((other, who), (api, identity())):
        read = await client.call("GET", f"/v1/refunds/{made.body['id']}", params={"user_id": as_whom["user_id"]})
        assert (read.status, read.body["error"]["code"]) == (404, "refund_not_found")


async def test_a_payment_not_charged_cannot_be_refunded(api):
    who = identity()
    started = await api.start(who, "5.00", "EUR")
    tried = await refund(api, who, started.body["payment_id"])
    assert (tried.status, tried.body["error"]["code"]) == (409, "payment_not_refundable")


async def test_reconciliation_finds_refunds_clean_and_a_refund_made_behind_paystreams_back(api, sandbox):
    """`paystream reconcile` syncs each refund by id and the payment's refunded total at the sandbox."""
    import json
    from datetime import UTC, datetime, timedelta

    since = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    who, payment = await paid(api, "10.00")
    assert (await refund(api, who, payment["payment_id"], "4.00")).status == 201

    def differences() -> list[str]:
        run = paystream("reconcile", "--since", since, "--settle", "0", "--json")
        assert run.returncode in (0, 1), run.stdout + run.stderr
        return sorted(d["kind"] for d in json.loads(run.stdout)["differences"]
                      if d["payment_id"] == payment["payment_id"])
    assert differences() == []
    # Someone with the provider's dashboard refunds it again: paystream's refunds no longer add up.
    sandbox.call("POST", "/v1/refunds", payment_intent=payment["transaction_id"], amount=100)
    assert differences() == ["refunded_amount_mismatch"]


async def test_store_rebuild_and_query_include_refunds(api, couchbase_collection, stack):
    """The refunds are in the store from the events alone: `paystream store rebuild` writes back the payment with
    its refunds and the refund ids' index entries exactly as the sinks wrote them; `paystream query summary` shows
    them."""
    import json
    import time

    import redis
    from couchbase.exceptions import DocumentNotFoundException

    from connectors.couchbase_store import payment_key, transaction_key
    from connectors.redis_cache import transaction_key as cached_transaction_key

    who, payment = await paid(api, "10.00")
    made = [(await refund(api, who, payment["payment_id"], amount)).body for amount in ("1.00", "2.00")]
    keys = [payment_key(payment["payment_id"]), *(transaction_key(r["id"]) for r in made)]

    def docs() -> dict:
        found = {}
        for key in keys:
            try:
                found[key] = couchbase_collection.get(key).content_as[dict]
            except DocumentNotFoundException:
                found[key] = None
        return found

    deadline = time.monotonic() + 30
    while (None in docs().values() or len(docs()[keys[0]]["refunds"]) < 2
           or {r["status"] for r in docs()[keys[0]]["refunds"]} != {"succeeded"}) and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
    before = docs()
    assert [r["refund_id"] for r in before[keys[0]]["refunds"]] == [r["id"] for r in made]
    assert {before[k]["payment_id"] for k in keys[1:]} == {payment["payment_id"]}

    cache = redis.Redis.from_url(stack["redis"]["address"])
    try:
        for key in keys:
            couchbase_collection.remove(key)
        for r in made:
            cache.delete(cached_transaction_key(r["id"]))
    finally:
        cache.close()
    assert set(docs().values()) == {None}

    result = await asyncio.to_thread(paystream, "store", "rebuild")
    assert result.returncode == 0, result.stderr
    assert docs() == before
    read = await api.call("GET", f"/v1/refunds/{made[0]['id']}", params={"user_id": who["user_id"]})
    assert (read.status, read.body["amount"], read.body["status"]) == (200, "1.00", "succeeded")

    summary = await asyncio.to_thread(paystream, "query", "summary")
    assert summary.returncode == 0, summary.stderr
    shown = json.loads(summary.stdout)
    assert shown["refunds_by_status"].get("succeeded", 0) >= 2 and "EUR" in shown["refunded_totals"]
    assert shown["net_totals"]["EUR"] != shown["receipted_totals"]["EUR"]


async def test_a_worker_killed_mid_refund_settles_it_by_a_sync_never_a_second_refund(api, sandbox, settings):
    """The sandbox makes the refund but its answer is held; the worker is killed. Kafka hands the command to
    the restarted worker, which finds the refund pending, syncs it by id and records it succeeded: one refund
    at the provider (the sandbox has no idempotency: a second call would have made a second one)."""
    import os
    import signal

    from tests.kafka_probe import uncommitted
    from tests.pipeline_procs import wait_gone, wait_restarted, worker_pid

    who, payment = await paid(api, "10.00")
    assert await wait_for(lambda: asyncio.to_thread(
        lambda: uncommitted(settings.kafka_bootstrap, settings.worker_id, settings.topics.commands) == 0), 30)
    key = f"refund-{uuid.uuid4().hex}"
    sandbox.hold_answers("/v1/refunds", hold_s=60)
    asking = asyncio.create_task(refund(api, who, payment["payment_id"], "3.00", key=key))
    try:
        assert await wait_for(lambda: asyncio.to_thread(provider_refunds, sandbox, payment["transaction_id"]), 30)
        pid = worker_pid()
        os.kill(pid, signal.SIGKILL)
        wait_gone(pid)
    finally:
        sandbox.clear_faults()
    await asyncio.to_thread(wait_restarted, "worker", pid)
    first = await asking
    assert first.status in (201, 202), first.body
    refund_id = first.body.get("id") or first.body["refund_id"]

    async def settled():
        read = await api.call("GET", f"/v1/refunds/{refund_id}", params={"user_id": who["user_id"]})
        return read.body if read.status == 200 and read.body["status"] == "succeeded" else None
    assert (await wait_for(settled, 60) or {}).get("amount") == "3.00"
    assert [r["amount"] for r in provider_refunds(sandbox, payment["transaction_id"])] == [300]
    again = await refund(api, who, payment["payment_id"], "3.00", key=key)
    assert (again.status, again.body["id"], again.body["status"]) == (201, refund_id, "succeeded")
    assert [r["amount"] for r in provider_refunds(sandbox, payment["transaction_id"])] == [300]
