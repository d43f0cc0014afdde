"""PayPal's rules as pure functions: money to and from decimal strings, states, and errors."""

from __future__ import annotations

import pytest

from connectors.paypal_rules import (
    approve_link,
    decline_code,
    from_paypal_money,
    issue_of,
    payment_status,
    refund_failure_reason,
    refund_refusal,
    refund_status,
    to_paypal_money,
)
from paystream.domain.errors import InvalidRequest
from paystream.domain.money import Money
from paystream.domain.provider import PaymentStatus, RefundStatus


@pytest.mark.parametrize(("money", "wire"), [
    (Money(1234, "EUR"), "12.34"),
    (Money(5, "USD"), "0.05"),
    (Money(1500, "JPY"), "1500"),          # no minor unit by ISO, none at PayPal
    (Money(123400, "HUF"), "1234"),        # two by ISO, none at PayPal
    (Money(10**15, "EUR"), "10000000000000.00"),
])
def test_money_goes_as_a_decimal_string_and_comes_back_exact(money, wire):
    assert to_paypal_money(money) == {"currency_code": money.currency, "value": wire}
    assert from_paypal_money({"currency_code": money.currency, "value": wire}) == money


def test_what_paypal_cannot_take_is_refused_with_the_field():
    with pytest.raises(InvalidRequest) as huf:
        to_paypal_money(Money(123450, "HUF"))
    assert (huf.value.code, huf.value.field) == ("amount_not_supported", "amount")
    with pytest.raises(InvalidRequest) as isk:
        to_paypal_money(Money(500, "ISK"))
    assert (isk.value.code, isk.value.field) == ("currency_not_supported", "currency")


def test_an_amount_finer_than_the_currency_is_not_rounded():
    with pytest.raises(ValueError):
        from_paypal_money({"currency_code": "EUR", "value": "1.005"})
    with pytest.raises(ValueError):
        from_paypal_money({"currency_code": "EUR", "value": "1e400000"})
    assert from_paypal_money({"currency_code": "EUR", "value": "0.10"}) == Money(10, "EUR")


def _order(status: str, *captures: str) -> dict:
    payments = {"captures": [{"id": f"C{i}", "status": s} for i, s in enumerate(captures)]} if captures else {}
    return {"id": "O1", "status": status, "purchase_units": [{"payments": payments}]}


@pytest.mark.parametrize(("order", "status"), [
    (_order("CREATED"), PaymentStatus.REQUIRES_ACTION),
    (_order("PAYER_ACTION_REQUIRED"), PaymentStatus.REQUIRES_ACTION),
    (_order("APPROVED"), PaymentStatus.PENDING),
    (_order("VOIDED"), PaymentStatus.CANCELED),
    # COMPLETED does not mean paid: the capture says.
    (_order("COMPLETED", "COMPLETED"), PaymentStatus.SUCCEEDED),
    (_order("COMPLETED", "REFUNDED"), PaymentStatus.SUCCEEDED),
    (_order("COMPLETED", "PENDING"), PaymentStatus.PROCESSING),
    (_order("COMPLETED", "DECLINED"), PaymentStatus.FAILED),
    (_order("COMPLETED", "SOMETHING_NEW"), PaymentStatus.UNKNOWN),
    (_order("SOMETHING_NEW"), PaymentStatus.UNKNOWN),
])
def test_an_orders_status_is_its_captures_then_its_own(order, status):
    assert payment_status(order) == status


def test_refund_states_and_unknown_ones():
    assert [refund_status(s) for s in ("PENDING", "COMPLETED", "FAILED", "CANCELLED", "NEW", None)] == [
        RefundStatus.PENDING, RefundStatus.SUCCEEDED, RefundStatus.FAILED, RefundStatus.CANCELED,
        RefundStatus.UNKNOWN, RefundStatus.UNKNOWN]


def test_the_approval_link_is_approve_or_payer_action():
    assert approve_link({"links": [{"rel": "self", "href": "s"}, {"rel": "approve", "href": "a"}]}) == "a"
    assert approve_link({"links": [{"rel": "payer-action", "href": "p"}]}) == "p"
    assert approve_link({"links": [{"rel": "self", "href": "s"}]}) is None


def test_paypals_error_shape_gives_its_issue():
    declined = {"name": "UNPROCESSABLE_ENTITY", "details": [{"issue": "INSTRUMENT_DECLINED"}]}
    assert issue_of(declined) == "INSTRUMENT_DECLINED"
    assert issue_of({"name": "RESOURCE_NOT_FOUND"}) == "RESOURCE_NOT_FOUND"
    assert issue_of("not json") is None
    assert decline_code(issue_of(declined)) == "instrument_declined"


def test_refund_refusals_are_the_refund_apis_errors_with_param():
    assert refund_failure_reason("REFUND_AMOUNT_EXCEEDED") == "amount_too_large"
    assert refund_failure_reason("CAPTURE_FULLY_REFUNDED") == "charge_already_refunded"
    assert refund_failure_reason("SOMETHING_ELSE") == "something_else"
    exceeded = refund_refusal("REFUND_AMOUNT_EXCEEDED")
    assert (type(exceeded), exceeded.code, exceeded.field) == (InvalidRequest, "amount_too_large", "amount")
    assert refund_refusal("CAPTURE_FULLY_REFUNDED").as_dict()["field"] == "amount"
