"""Request bodies: strict parsing, so nothing is coerced and nothing invalid becomes a command."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from ingress.requests import PaymentQuery, PostPaymentRequest, ReceiptRequest, StartPaymentRequest
from paystream.domain.errors import InvalidRequest
from paystream.domain.money import Money

IDENTITY = {"user_id": "u-1", "email_id": "jane@example.com", "timestamp": "2026-11-25T10:00:00Z",
            "payment_type": "credit"}
POST = {**IDENTITY, "transaction_id": "pi_1", "amount": "12.34", "currency": "EUR", "payment_method": "pm_1"}


def start(**change) -> StartPaymentRequest:
    return StartPaymentRequest.model_validate_json(json.dumps({**IDENTITY, **change}))


def errors(model, body: dict) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as info:
        model.model_validate_json(json.dumps(body))
    return [(".".join(map(str, e["loc"])), e["type"]) for e in info.value.errors()]


def test_a_start_with_and_without_an_amount():
    assert start().money() is None
    assert start(amount="12.34", currency="EUR").money() == Money(1234, "EUR")
    assert start(amount="500", currency="JPY").money() == Money(500, "JPY")


@pytest.mark.parametrize("missing", ["amount", "currency"])
def test_amount_and_currency_go_together(missing):
    body = {"amount": "1.00", "currency": "EUR"}
    body.pop(missing)
    with pytest.raises(InvalidRequest) as info:
        start(**body)
    assert (info.value.code, info.value.field) == ("missing_field", missing)


@pytest.mark.parametrize(
    ("change", "field", "kind"),
    [({"amount": 12.34, "currency": "EUR"}, "amount", "string_type"),
     ({"user_id": 7}, "user_id", "string_type"),
     ({"user_id": "a b"}, "user_id", "string_pattern_mismatch"),
     ({"user_id": "x" * 129}, "user_id", "string_too_long"),
     ({"user_id": "acct:u1"}, "user_id", "string_pattern_mismatch"),
     ({"user_id": "u1@example.com"}, "user_id", "string_pattern_mismatch"),
     ({"email_id": "not-an-email"}, "email_id", "value_error"),
     ({"timestamp": "yesterday"}, "timestamp", "datetime_parsing"),
     ({"payment_type": "cash"}, "payment_type", "literal_error"),
     ({"loyalty": 1}, "loyalty", "extra_forbidden")],
    ids=["float-amount", "number-id", "space-in-id", "long-id", "separator-in-id", "at-in-id", "bad-email", "bad-time", "bad-type", "unknown-field"],
)
def test_a_bad_field_is_refused_not_coerced(change, field, kind):
    assert (field, kind) in errors(StartPaymentRequest, {**IDENTITY, **change})


@pytest.mark.parametrize("field", ["transaction_id", "amount", "currency", "payment_method", "user_id"])
def test_a_post_needs_every_field(field):
    body = dict(POST)
    body.pop(field)
    assert (field, "missing") in errors(PostPaymentRequest, body)


@pytest.mark.parametrize("currency", ["eur", "EUR", "Eur"])
def test_currency_codes_in_either_case_are_answered_in_upper_case(currency):
    """Stripe writes "eur"; paystream takes either case and answers "EUR"."""
    assert PostPaymentRequest.model_validate_json(json.dumps({**POST, "currency": currency})).money() == \
        Money(1234, "EUR")


def test_a_post_parses_its_money_exactly():
    assert PostPaymentRequest.model_validate_json(json.dumps(POST)).money() == Money(1234, "EUR")
    body = PostPaymentRequest.model_validate_json(json.dumps({**POST, "amount": "12.345"}))
    with pytest.raises(InvalidRequest) as info:
        body.money()
    assert info.value.code == "invalid_amount"


def test_receipt_and_payment_queries_take_query_strings():
    query = ReceiptRequest.model_validate({"receipt_id": "rcpt_1", "user_id": "u-1"}, strict=False)
    assert (query.receipt_id, query.user_id) == ("rcpt_1", "u-1")
    assert PaymentQuery.model_validate({"user_id": "u-1"}, strict=False).user_id == "u-1"
    with pytest.raises(ValidationError):
        PaymentQuery.model_validate({}, strict=False)
