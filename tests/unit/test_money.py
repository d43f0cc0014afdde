"""Money: exact decimal strings <-> integer minor units of an ISO 4217 currency."""

from __future__ import annotations

from decimal import Decimal

import pytest

from paystream.domain.errors import InvalidRequest
from paystream.domain.money import MAX_MINOR_UNITS, Money, currency_exponent


def refused(amount, currency, field="amount") -> InvalidRequest:
    with pytest.raises(InvalidRequest) as info:
        Money.parse(amount, currency, field)
    return info.value


# --- parsing and formatting -------------------------------------------------
@pytest.mark.parametrize(
    ("amount", "currency", "minor", "decimal"),
    [
        ("12.34", "EUR", 1234, "12.34"),
        ("0.10", "EUR", 10, "0.10"),
        ("0.01", "EUR", 1, "0.01"),
        ("12.3", "EUR", 1230, "12.30"),
        ("12", "EUR", 1200, "12.00"),
        ("1", "JPY", 1, "1"),
        ("1500", "JPY", 1500, "1500"),
        ("1.234", "BHD", 1234, "1.234"),
        ("0.001", "BHD", 1, "0.001"),
        ("7.5", "BHD", 7500, "7.500"),
    ],
)
def test_parse_and_format(amount, currency, minor, decimal):
    money = Money.parse(amount, currency)
    assert money == Money(minor, currency)
    assert isinstance(money.minor, int)
    assert money.decimal == decimal


def test_ten_cents_is_ten_minor_units():
    assert Money.parse("0.10", "EUR").minor == 10


@pytest.mark.parametrize(("currency", "exponent"), [("EUR", 2), ("USD", 2), ("JPY", 0), ("BHD", 3)])
def test_currency_exponent(currency, exponent):
    assert currency_exponent(currency) == exponent


@pytest.mark.parametrize(
    "money", [Money(1, "EUR"), Money(1234, "EUR"), Money(99, "JPY"), Money(1, "BHD"), Money(10**15, "EUR")]
)
def test_round_trip_through_decimal_string(money):
    assert Money.parse(money.decimal, money.currency) == money


@pytest.mark.parametrize("money", [Money(1234, "EUR"), Money(500, "JPY"), Money(1234, "BHD")])
def test_dict_round_trip(money):
    data = money.as_dict()
    assert data == {"amount": money.decimal, "amount_minor": money.minor, "currency": money.currency}
    assert Money.from_dict(data) == money


def test_largest_amount_is_accepted_and_one_more_unit_is_not():
    assert Money.parse("10000000000000.00", "EUR").minor == MAX_MINOR_UNITS
    err = refused("10000000000000.01", "EUR")
    assert (err.code, err.field) == ("invalid_amount", "amount")


@pytest.mark.parametrize("amount", ["1" + "0" * 30, "9" * 40, "123456789012345678901234567890.5"])
def test_huge_amount_is_refused(amount):
    err = refused(amount, "EUR")
    assert (err.code, err.field) == ("invalid_amount", "amount")


# --- refusals ----------------------------------------------------------------
@pytest.mark.parametrize("amount", [12.34, 0.1, 12, 1, Decimal("12.34"), None, b"12.34", ["12.34"]])
def test_non_string_amounts_are_refused(amount):
    err = refused(amount, "EUR")
    assert (err.code, err.field) == ("invalid_amount", "amount")
    assert err.type == "invalid_request_error"


@pytest.mark.parametrize("amount", ["-1", "-0.01", "-12.34"])
def test_negative_amounts_are_refused(amount):
    err = refused(amount, "EUR")
    assert (err.code, err.field) == ("invalid_amount", "amount")


@pytest.mark.parametrize(("amount", "currency"), [("0", "EUR"), ("0.00", "EUR"), ("0.0", "EUR"), ("0", "JPY"), ("0.000", "BHD")])
def test_zero_is_refused(amount, currency):
    err = refused(amount, currency)
    assert (err.code, err.field) == ("invalid_amount", "amount")


@pytest.mark.parametrize(
    ("amount", "currency"),
    [
        ("12.345", "EUR"),
        ("0.001", "EUR"),
        ("1.5", "JPY"),
        ("1.01", "JPY"),
        ("1.2345", "BHD"),
        ("0.0001", "BHD"),
        # More significant digits than the default decimal context keeps (28):
        # must not be rounded to 1.00 and accepted.
        ("1.00000000000000000000000000001", "EUR"),
        ("12.340000000000000000000000000001", "EUR"),
    ],
)
def test_too_many_decimal_places_are_refused(amount, currency):
    err = refused(amount, currency)
    assert (err.code, err.field) == ("invalid_amount", "amount")


@pytest.mark.parametrize(
    "amount",
    ["", " ", "01", "00.10", "007", ".5", "5.", "1e3", "1E2", "+1", " 1", "1 ", "1\n", "1,00", "1_000",
     "1.2.3", "abc", "NaN", "Infinity", "0x10", "１２", "12.34 EUR"],
)
def test_odd_formats_are_refused(amount):
    err = refused(amount, "EUR")
    assert (err.code, err.field) == ("invalid_amount", "amount")


@pytest.mark.parametrize(
    "currency",
    ["eur", "Eur", "EU", "EURO", "", " EUR", "ABC", "ZZZ", "XAU", "XXX", None, 978],
)
def test_unknown_lowercase_and_non_payable_currencies_are_refused(currency):
    err = refused("12.34", currency)
    assert (err.code, err.field) == ("invalid_currency", "currency")
    assert err.type == "invalid_request_error"


def test_field_name_is_carried_on_amount_errors():
    err = refused("-1", "EUR", field="refund_amount")
    assert (err.code, err.field) == ("invalid_amount", "refund_amount")


def test_error_as_dict():
    err = refused("12.345", "EUR")
    assert err.as_dict() == {
        "type": "invalid_request_error", "code": "invalid_amount", "message": err.message, "field": "amount",
        "decline_code": None,
    }
    assert "12.345" in err.message
