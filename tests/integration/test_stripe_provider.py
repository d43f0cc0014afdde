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


async def test_a_session_then_a_charge(provider, sandbox):
    pid = payment_id()
    session = await provider.create_session(pid, EUR_9)
    assert session.transaction_id.startswith("pi_") and session.client_secret
    assert (await provider.charge_state(pid, session.transaction_id)).outcome == "not_charged"

    result = await provider.charge(pid, "cmd-1", session.transaction_id, EUR_9, card(sandbox, GOOD_CARD))
    assert result.outcome == "succeeded" and result.charge_id.startswith("ch_")
    assert (await provider.charge_state(pid, session.transaction_id)).charge_id == result.charge_id
    assert [c["amount"] for c in sandbox.charges_for(session.transaction_id)] == [900]


async def test_a_decline_then_another_card_charges_once(provider, sandbox):
    pid = payment_id()
    session = await provider.create_session(pid, EUR_9)
    declined = await provider.charge(pid, "cmd-1", session.transaction_id, EUR_9, card(sandbox, DECLINING_CARD))
    assert declined.outcome == "declined" and declined.decline_code
    assert (await provider.charge_state(pid, session.transaction_id)).outcome == "declined"

    paid = await provider.charge(pid, "cmd-2", session.transaction_id, EUR_9, card(sandbox, GOOD_CARD))
    assert paid.outcome == "succeeded"
    assert (await provider.charge_state(pid, session.transaction_id)).outcome == "succeeded"


async def test_a_charge_repeated_after_success_charges_nothing_more(provider, sandbox):
    pid = payment_id()
    session = await provider.create_session(pid, EUR_9)
    method = card(sandbox, GOOD_CARD)
    first = await provider.charge(pid, "cmd-1", session.transaction_id, EUR_9, method)
    again = await provider.charge(pid, "cmd-1", session.transaction_id, EUR_9, method)
    assert again.outcome == "succeeded" and again.charge_id == first.charge_id
    assert len(sandbox.charges_for(session.transaction_id)) == 1


@pytest.mark.parametrize("amount", [EUR_9, None], ids=["payment-intent", "setup-intent"])
async def test_a_sessions_client_secret_is_asked_of_the_provider_again(provider, amount):
    """paystream keeps no client secret; a replayed start gets it back from the provider."""
    session = await provider.create_session(payment_id(), amount)
    assert await provider.session_secret(session.transaction_id) == session.client_secret
    assert await provider.session_secret("pi_doesnotexist") is None
