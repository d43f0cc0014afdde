"""Stripe's amount rules and states, as paystream reads them (connectors/stripe_rules.py, pure)."""

from __future__ import annotations

import pytest

from connectors.stripe_rules import from_stripe_amount, payment_status, refund_status, to_stripe_amount
from paystream.domain.errors import InvalidRequest
from paystream.domain.money import Money
from paystream.domain.provider import PaymentStatus, RefundStatus


@pytest.mark.parametrize(("money", "sent"), [
    (Money(1234, "EUR"), 1234),      # two decimals both sides
    (Money(500, "JPY"), 500),        # zero-decimal both sides
    (Money(500, "ISK"), 50000),      # no minor unit by ISO, two-decimal at Stripe
    (Money(7, "UGX"), 700),
    (Money(123456, "HUF"), 123456),  # two decimals by ISO already
    (Money(9900, "TWD"), 9900),
    (Money(12340, "KWD"), 12340),    # three decimals, ending in 0
])
def test_amounts_sent_to_stripe(money, sent):
    assert to_stripe_amount(money) == sent
    assert from_stripe_amount(sent, money.currency.lower()) == money


def test_a_three_decimal_amount_stripe_cannot_take_is_refused_with_its_field():
    with pytest.raises(InvalidRequest) as info:
        to_stripe_amount(Money(12345, "BHD"), field="refund.amount")
    assert (info.value.code, info.value.field) == ("amount_not_supported", "refund.amount")


def test_a_stripe_amount_that_is_no_whole_minor_unit_is_an_error_not_a_rounding():
    with pytest.raises(ValueError):
        from_stripe_amount(50050, "isk")


@pytest.mark.parametrize(("stripe", "error", "ours"), [
    ("requires_payment_method", None, PaymentStatus.PENDING),
    ("requires_payment_method", {"code": "card_declined"}, PaymentStatus.FAILED),
    ("requires_confirmation", None, PaymentStatus.PENDING),
    ("requires_action", None, PaymentStatus.REQUIRES_ACTION),
    ("processing", None, PaymentStatus.PROCESSING),
    ("requires_capture", None, PaymentStatus.AUTHORIZED),
    ("succeeded", None, PaymentStatus.SUCCEEDED),
    ("canceled", None, PaymentStatus.CANCELED),
    ("some_future_state", None, PaymentStatus.UNKNOWN),
    (None, None, PaymentStatus.UNKNOWN),
])
def test_payment_states(stripe, error, ours):
    assert payment_status(stripe, error) is ours


@pytest.mark.parametrize(("stripe", "ours"), [
    ("pending", RefundStatus.PENDING), ("requires_action", RefundStatus.PENDING),
    ("succeeded", RefundStatus.SUCCEEDED), ("failed", RefundStatus.FAILED), ("canceled", RefundStatus.CANCELED),
    ("new_state", RefundStatus.UNKNOWN), (None, RefundStatus.UNKNOWN),
])
def test_refund_states(stripe, ours):
    assert refund_status(stripe) is ours


def test_unknown_is_never_terminal():
    assert not PaymentStatus.UNKNOWN.terminal and not RefundStatus.UNKNOWN.terminal
    assert PaymentStatus.SUCCEEDED.terminal and RefundStatus.FAILED.terminal
