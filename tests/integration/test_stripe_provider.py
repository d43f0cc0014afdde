"""The Stripe connector against the real sandbox (localstripe): sessions, charges, declines, recovery,
refunds, voids, syncs, and the sandbox's own signed webhooks."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from aiohttp import web

from connectors.stripe import StripeProvider
from paystream import bootstrap
from paystream.domain.money import Money
from paystream.domain.provider import InvalidWebhook, PaymentStatus, RefundStatus
from tests.api_client import DECLINING_CARD, GOOD_CARD

EUR_9 = Money(900, "EUR")


@pytest.fixture
async def provider(settings):
    stripe = bootstrap.provider(settings)
    yield stripe
    await stripe.close()


def card(sandbox, number: str) -> str:
    return sandbox.call("POST", "/v1/payment_methods", **{
        "type": "card", "card[number]": number, "card[exp_month]": "12", "card[exp_year]": "2030",
        "card[cvc]": "123"})["id"]


def payment_id() -> str:
    return f"pay_{uuid.uuid4().hex[:24]}"


async def charge(provider, pid: str, attempt: str, transaction_id: str, method: str, used=()):
    """As the handler does it: prepare (charging nothing), then confirm what was prepared."""
    prepared = await provider.prepare_charge(pid, attempt, transaction_id, EUR_9, method, used=used)
    if prepared.result is not None:
        return prepared, prepared.result
    return prepared, await provider.confirm(pid, attempt, prepared.intent_id)


async def test_a_session_then_a_charge(provider, sandbox):
    pid = payment_id()
    session = await provider.create_session(pid, EUR_9)
    assert session.transaction_id.startswith("pi_") and session.client_secret
    (before,) = await provider.look_up([session.transaction_id])
    assert (before.found, before.result.outcome, before.amount_minor, before.currency) == (True, "not_charged", 900, "EUR")

    prepared, result = await charge(provider, pid, "cmd-1", session.transaction_id, card(sandbox, GOOD_CARD))
    assert prepared.intent_id == session.transaction_id
    assert result.outcome == "succeeded" and result.charge_id.startswith("ch_")
    (after,) = await provider.look_up([session.transaction_id])
    assert after.result.charge_id == result.charge_id
    assert [(c.charge_id, c.amount_minor, c.currency) for c in after.succeeded_charges] == [(result.charge_id, 900, "EUR")]
    assert [(c["amount"], c["on"]) for c in sandbox.succeeded_charges(pid)] == [(900, session.transaction_id)]


async def test_prepare_charges_nothing_at_the_sandbox(provider, sandbox):
    pid = payment_id()
    session = await provider.create_session(pid, EUR_9)
    method = card(sandbox, GOOD_CARD)
    first = await provider.prepare_charge(pid, "cmd-1", session.transaction_id, EUR_9, method)
    fresh = await provider.prepare_charge(pid, "cmd-2", session.transaction_id, EUR_9, method,
                                          used=[session.transaction_id])
    assert first.intent_id == session.transaction_id and fresh.intent_id not in (None, session.transaction_id)
    records = await provider.look_up([first.intent_id, fresh.intent_id])
    assert [r.result.outcome for r in records] == ["not_charged", "not_charged"]
    found = sandbox.charges_of_payments([pid])
    assert found == {pid: []}


async def test_a_decline_then_another_card_charges_once(provider, sandbox):
    pid = payment_id()
    session = await provider.create_session(pid, EUR_9)
    first, declined = await charge(provider, pid, "cmd-1", session.transaction_id, card(sandbox, DECLINING_CARD))
    assert declined.outcome == "declined" and declined.decline_code
    assert (await provider.look_up([first.intent_id]))[0].result.outcome == "declined"

    second, paid = await charge(provider, pid, "cmd-2", session.transaction_id, card(sandbox, GOOD_CARD),
                                used=[first.intent_id])
    assert paid.outcome == "succeeded" and second.intent_id != first.intent_id
    records = await provider.look_up([first.intent_id, second.intent_id])
    assert [r.result.outcome for r in records] == ["declined", "succeeded"]
    assert [len(r.succeeded_charges) for r in records] == [0, 1]
    assert [c["on"] for c in sandbox.succeeded_charges(pid)] == [second.intent_id]


async def test_a_charge_repeated_after_success_charges_nothing_more(provider, sandbox):
    pid = payment_id()
    session = await provider.create_session(pid, EUR_9)
    method = card(sandbox, GOOD_CARD)
    _, first = await charge(provider, pid, "cmd-1", session.transaction_id, method)
    again = await provider.confirm(pid, "cmd-1", session.transaction_id)
    assert again.outcome == "succeeded" and again.charge_id == first.charge_id
    prepared_again, result = await charge(provider, pid, "cmd-1", session.transaction_id, method)
    assert prepared_again.result is not None and result.charge_id == first.charge_id
    assert len(sandbox.succeeded_charges(pid)) == 1


async def test_an_unknown_intent_is_found_not_charged(provider):
    (record,) = await provider.look_up(["pi_paystream_never_made"])
    assert (record.found, record.result.outcome) == (False, "not_charged")


@pytest.mark.parametrize("amount", [EUR_9, None], ids=["payment-intent", "setup-intent"])
async def test_a_sessions_client_secret_is_asked_of_the_provider_again(provider, amount):
    """paystream keeps no client secret; a replayed start gets it back from the provider."""
    session = await provider.create_session(payment_id(), amount)
    assert await provider.session_secret(session.transaction_id) == session.client_secret
    assert await provider.session_secret("pi_doesnotexist") is None


async def test_partial_refunds_then_the_rest_each_found_by_a_sync(provider, sandbox):
    """localstripe refunds by payment_intent; its refunds are always succeeded (the note), and it
    refuses Stripe's `reason`, so none is sent here."""
    pid = payment_id()
    session = await provider.create_session(pid, EUR_9)
    _, paid = await charge(provider, pid, "cmd-1", session.transaction_id, card(sandbox, GOOD_CARD))
    assert paid.outcome == "succeeded"

    first = await provider.refund(f"rf_{pid}_1", pid, session.transaction_id, Money(300, "EUR"))
    assert (first.status, first.amount) == (RefundStatus.SUCCEEDED, Money(300, "EUR"))
    assert first.provider_refund_id.startswith("re_")
    # Always an amount (paystream computes the rest): with none, the sandbox refunds the whole charge.
    rest = await provider.refund(f"rf_{pid}_2", pid, session.transaction_id, Money(600, "EUR"))
    assert (rest.status, rest.amount) == (RefundStatus.SUCCEEDED, Money(600, "EUR"))

    by_stripe_id = await provider.sync_refund(first.refund_id, session.transaction_id, first.provider_refund_id)
    by_our_id = await provider.sync_refund(rest.refund_id, session.transaction_id)
    assert (by_stripe_id.status, by_stripe_id.amount) == (RefundStatus.SUCCEEDED, Money(300, "EUR"))
    assert (by_our_id.provider_refund_id, by_our_id.amount) == (rest.provider_refund_id, Money(600, "EUR"))
    never = await provider.sync_refund(f"rf_{pid}_never", session.transaction_id)
    assert (never.found, never.status) == (False, RefundStatus.UNKNOWN)

    synced = await provider.sync_payment(session.transaction_id)
    assert (synced.status, synced.amount, synced.amount_refunded) == \
        (PaymentStatus.SUCCEEDED, EUR_9, Money(900, "EUR"))
    assert [c["amount_refunded"] for c in sandbox.charges_for(session.transaction_id)] == [900]


async def test_a_payment_not_charged_is_voided(provider):
    session = await provider.create_session(payment_id(), EUR_9)
    voided = await provider.void("pay_void", session.transaction_id)
    assert voided.status is PaymentStatus.CANCELED
    assert (await provider.sync_payment(session.transaction_id)).status is PaymentStatus.CANCELED
    gone = await provider.sync_payment("pi_paystream_never_made")
    assert (gone.found, gone.status) == (False, PaymentStatus.UNKNOWN)


@pytest.fixture
async def webhook_receiver(sandbox):
    """A local endpoint the sandbox sends its signed events to; unregistered (sent none) afterwards."""
    received: list[tuple[dict, bytes]] = []

    async def receive(request: web.Request) -> web.Response:
        received.append((dict(request.headers), await request.read()))
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    hook_id, secret = f"paystream-port-{uuid.uuid4().hex[:8]}", f"whsec_{uuid.uuid4().hex}"
    url = f"http://127.0.0.1:{port}/hook"
    sandbox.call("POST", f"/_config/webhooks/{hook_id}", json_body={
        "url": url, "secret": secret, "events": ["payment_intent.succeeded"]})
    yield secret, received
    # The sandbox cannot forget a webhook: this one is left listening to no event at all.
    sandbox.call("POST", f"/_config/webhooks/{hook_id}", json_body={"url": url, "secret": secret, "events": []})
    await runner.cleanup()


async def test_the_sandboxs_signed_webhook_verifies_and_parses(settings, sandbox, webhook_receiver):
    secret, received = webhook_receiver
    provider = StripeProvider(settings.stripe_api_base, settings.stripe_api_key.get_secret_value(),
                              webhook_secret=secret)
    try:
        pid = payment_id()
        session = await provider.create_session(pid, EUR_9)
        _, paid = await charge(provider, pid, "cmd-1", session.transaction_id, card(sandbox, GOOD_CARD))
        assert paid.outcome == "succeeded"

        def ours() -> list[tuple[dict, bytes]]:
            return [(h, b) for h, b in received if session.transaction_id.encode() in b]
        deadline = time.monotonic() + 20
        while not ours() and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        ((headers, body),) = ours()
        event = provider.parse_webhook(headers, body)
        assert (event.type, event.object_id, event.payment_id, event.payment_status) == \
            ("payment_intent.succeeded", session.transaction_id, pid, PaymentStatus.SUCCEEDED)
        with pytest.raises(InvalidWebhook):
            provider.parse_webhook(headers, body.replace(b"succeeded", b"canceled"))
    finally:
        await provider.close()
