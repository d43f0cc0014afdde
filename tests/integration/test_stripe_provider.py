"""The Stripe connector against the real sandbox (localstripe): sessions, charges, declines, recovery."""

from __future__ import annotations

import uuid

import pytest

from paystream import bootstrap
from paystream.domain.money import Money
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
