"""The Stripe sandbox speaks the real PaymentIntent flow, declines included."""

import pytest

from tests.stripe_client import StripeError


def test_payment_intent_confirmed_with_test_card_succeeds(sandbox):
    intent = sandbox.create_intent(1234, "eur", payment_id="test-ok")
    assert intent["status"] == "requires_payment_method"
    assert intent["metadata"] == {"payment_id": "test-ok"}
    confirmed = sandbox.attach_and_confirm(intent["id"], "pm_card_visa")
    assert confirmed["status"] == "succeeded"
    charges = sandbox.charges_for(intent["id"])
    assert [(c["amount"], c["status"]) for c in charges] == [(1234, "succeeded")]


def test_declining_test_card_is_declined(sandbox):
    intent = sandbox.create_intent(500, "usd")
    with pytest.raises(StripeError) as declined:
        sandbox.attach_and_confirm(intent["id"], "pm_card_chargeCustomerFail")
    assert declined.value.status == 402
    assert declined.value.error.get("code") == "card_declined"
    after = sandbox.call("GET", f"/v1/payment_intents/{intent['id']}")
    assert after["status"] == "requires_payment_method"
