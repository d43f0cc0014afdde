"""Exact money: integer minor units of an ISO 4217 currency, parsed from decimal strings."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Context, Decimal, InvalidOperation
from typing import Annotated, Any

from iso4217 import Currency
from pydantic import PlainSerializer, PlainValidator
from typing_extensions import TypedDict  # pydantic needs this one on Python 3.11

from paystream.domain.errors import InvalidRequest

_DECIMAL = re.compile(r"^(0|[1-9][0-9]*)(\.[0-9]+)?$")
# Far above any card payment, far below what a 64-bit minor-unit integer holds.
MAX_MINOR_UNITS = 10**15


def currency_exponent(code: str, field: str = "currency") -> int:
    """Digits after the decimal point for an ISO 4217 code, e.g. 2 for EUR, 0 for JPY."""
    if not isinstance(code, str) or not re.fullmatch(r"[A-Z]{3}", code):
        raise InvalidRequest("invalid_currency", "currency must be an ISO 4217 code such as EUR", field)
    try:
        exponent = Currency(code).exponent
    except ValueError:
        raise InvalidRequest("invalid_currency", f"{code} is not an ISO 4217 currency", field) from None
    if exponent is None:
        raise InvalidRequest("invalid_currency", f"{code} is not a currency payments can be made in", field)
    return exponent


@dataclass(frozen=True, slots=True)
class Money:
    minor: int
    currency: str

    @classmethod
    def parse(cls, amount: str, currency: str, field: str = "amount") -> Money:
        """'12.34', 'EUR' -> Money(1234, 'EUR'). Floats, negatives, zero and extra digits are refused."""
        exponent = currency_exponent(currency)
        if not isinstance(amount, str):
            raise InvalidRequest(
                "invalid_amount", 'amount must be a decimal string such as "12.34", not a number', field
            )
        if not _DECIMAL.fullmatch(amount):
            raise InvalidRequest(
                "invalid_amount", 'amount must be a positive decimal string such as "12.34"', field
            )
        try:
            value = Decimal(amount)
        except InvalidOperation:  # pragma: no cover - the pattern already rules this out
            raise InvalidRequest("invalid_amount", "amount is not a number", field) from None
        # Exact: the default context (28 digits) would round away excess digits and
        # let '1.00000000000000000000000000001' through as 1.00.
        minor = value.scaleb(exponent, Context(prec=len(amount)))
        if minor != minor.to_integral_value():
            raise InvalidRequest(
                "invalid_amount", f"{currency} has {exponent} decimal places; {amount} has more", field
            )
        if minor <= 0:
            raise InvalidRequest("invalid_amount", "amount must be greater than zero", field)
        if minor > MAX_MINOR_UNITS:
            raise InvalidRequest("invalid_amount", "amount is too large", field)
        return cls(int(minor), currency)

    @property
    def decimal(self) -> str:
        """The amount as a decimal string with the currency's digits: Money(1234, 'EUR') -> '12.34'."""
        exponent = currency_exponent(self.currency)
        return str(Decimal(self.minor).scaleb(-exponent).quantize(Decimal(1).scaleb(-exponent)))

    def as_dict(self) -> dict:
        return {"amount": self.decimal, "amount_minor": self.minor, "currency": self.currency}

    @classmethod
    def from_dict(cls, data: dict) -> Money:
        """From the wire form; the minor units decide, the decimal string is for people."""
        minor, currency = data["amount_minor"], data["currency"]
        if not isinstance(minor, int) or isinstance(minor, bool) or not 0 < minor <= MAX_MINOR_UNITS:
            raise InvalidRequest("invalid_amount", "amount_minor must be a positive integer", "amount_minor")
        currency_exponent(currency)
        return cls(minor, currency)


class MoneyFields(TypedDict):
    """Money on the wire: the decimal string people read and the minor units programs add up."""

    amount: str
    amount_minor: int
    currency: str


def _money_from_wire(value: Any) -> Money:
    if isinstance(value, Money):
        return value
    if not isinstance(value, dict):
        raise ValueError("money must be an object with amount_minor and currency")
    try:
        return Money.from_dict(value)
    except (KeyError, InvalidRequest) as exc:
        raise ValueError(f"invalid money: {exc}") from None


#: Money as a field of a typed message: validated from and serialised to `MoneyFields`.
WireMoney = Annotated[
    Money,
    PlainValidator(_money_from_wire, json_schema_input_type=MoneyFields),
    PlainSerializer(Money.as_dict, return_type=MoneyFields),
]
