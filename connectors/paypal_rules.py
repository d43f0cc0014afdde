"""PayPal's own rules, as pure functions: money to and from PayPal's decimal strings, PayPal's states,
and PayPal's error shape (`name`, `details[].issue`) as paystream's errors. Nothing here does I/O.

paystream's amounts are integer minor units by ISO 4217; PayPal's are `{currency_code, value}` with a
decimal string, read and written with Decimal (never a float). PayPal takes a fixed set of currencies,
and three of them without decimals although ISO 4217 gives them two (HUF, TWD) or none (JPY): HUF 1234.00
(123400 minor units) is sent as "1234", and HUF 1234.50 cannot be sent at all.
"""

from __future__ import annotations

import re
from decimal import Context, Decimal

from paystream.domain.errors import InvalidRequest, PaymentError
from paystream.domain.money import MAX_MINOR_UNITS, Money, currency_exponent
from paystream.domain.provider import PaymentStatus, RefundStatus
from paystream.domain.routing import PAYPAL_CURRENCIES, PAYPAL_WHOLE_UNITS

#: The currencies PayPal takes, and those in whole units only: the core's table (the API checks it first).
NO_DECIMALS_AT_PAYPAL = PAYPAL_WHOLE_UNITS
_VALUE = re.compile(r"[0-9]+(\.[0-9]+)?")


def _paypal_places(currency: str) -> int:
    return 0 if currency in NO_DECIMALS_AT_PAYPAL else currency_exponent(currency)


def to_paypal_money(money: Money, field: str = "amount") -> dict:
    """PayPal's `{currency_code, value}` for `money`, or a structured refusal when PayPal cannot take it."""
    if money.currency not in PAYPAL_CURRENCIES:
        raise InvalidRequest("currency_not_supported", f"PayPal does not take {money.currency}", "currency")
    exponent = currency_exponent(money.currency)
    places = _paypal_places(money.currency)
    value = Decimal(money.minor).scaleb(-exponent)
    if value != value.quantize(Decimal(1).scaleb(-places)):
        raise InvalidRequest("amount_not_supported",
                             f"PayPal takes {money.currency} in whole units only", field)
    return {"currency_code": money.currency, "value": str(value.quantize(Decimal(1).scaleb(-places)))}


def from_paypal_money(amount: dict) -> Money:
    """PayPal's `{currency_code, value}` as paystream's minor units; exact or a ValueError."""
    currency = str(amount["currency_code"]).upper()
    text = str(amount["value"])
    if not _VALUE.fullmatch(text):  # PayPal's own pattern for `value`: no exponent, no sign
        raise ValueError(f"PayPal amount {text!r} is not a decimal string")
    minor = Decimal(text).scaleb(currency_exponent(currency), Context(prec=len(text) + 4))
    if minor != minor.to_integral_value():
        raise ValueError(f"PayPal amount {text} {currency} is not a whole {currency} minor unit")
    if minor > MAX_MINOR_UNITS:
        raise ValueError(f"PayPal amount {text} {currency} is beyond any payment")
    return Money(int(minor), currency)


# --- states ----------------------------------------------------------------------------------------
#: A capture that moved money (refunded later or not).
CAPTURED = frozenset({"COMPLETED", "PARTIALLY_REFUNDED", "REFUNDED"})

_ORDER_STATUSES = {
    "CREATED": PaymentStatus.REQUIRES_ACTION,   # waiting for the payer's approval
    "SAVED": PaymentStatus.REQUIRES_ACTION,
    "PAYER_ACTION_REQUIRED": PaymentStatus.REQUIRES_ACTION,
    "APPROVED": PaymentStatus.PENDING,          # approved, to be captured
    "VOIDED": PaymentStatus.CANCELED,
}
_CAPTURE_STATUSES = {
    "COMPLETED": PaymentStatus.SUCCEEDED,
    "PARTIALLY_REFUNDED": PaymentStatus.SUCCEEDED,
    "REFUNDED": PaymentStatus.SUCCEEDED,
    "PENDING": PaymentStatus.PROCESSING,
    "DECLINED": PaymentStatus.FAILED,
    "FAILED": PaymentStatus.FAILED,
}
_REFUND_STATUSES = {
    "PENDING": RefundStatus.PENDING,
    "COMPLETED": RefundStatus.SUCCEEDED,
    "FAILED": RefundStatus.FAILED,
    "CANCELLED": RefundStatus.CANCELED,
}


def captures_of(order: dict) -> list[dict]:
    """The order's captures, oldest first (one purchase unit: paystream makes no other)."""
    return [c for unit in order.get("purchase_units") or [] for c in ((unit.get("payments") or {}).get("captures")
                                                                      or [])]


def refunds_of(order: dict) -> list[dict]:
    return [r for unit in order.get("purchase_units") or [] for r in ((unit.get("payments") or {}).get("refunds")
                                                                      or [])]


def order_amount(order: dict) -> Money | None:
    units = order.get("purchase_units") or []
    return from_paypal_money(units[0]["amount"]) if units and units[0].get("amount") else None


def payment_status(order: dict) -> PaymentStatus:
    """An order's status as paystream's. A COMPLETED order does not mean paid: its capture says.
    A state paystream does not know is `unknown`, not guessed."""
    captures = captures_of(order)
    if any(c.get("status") in CAPTURED for c in captures):
        return PaymentStatus.SUCCEEDED
    if captures:
        return _CAPTURE_STATUSES.get(captures[-1].get("status") or "", PaymentStatus.UNKNOWN)
    return _ORDER_STATUSES.get(order.get("status") or "", PaymentStatus.UNKNOWN)


def refund_status(status: str | None) -> RefundStatus:
    return _REFUND_STATUSES.get(status or "", RefundStatus.UNKNOWN)


def approve_link(order: dict) -> str | None:
    """Where the payer approves the order (`approve`, or `payer-action` when PayPal asks more of them)."""
    return next((link["href"] for link in order.get("links") or []
                 if link.get("rel") in ("approve", "payer-action")), None)


# --- errors ----------------------------------------------------------------------------------------
def issue_of(body: dict | None) -> str | None:
    """The issue of PayPal's error shape (`details[0].issue`), else its `name`."""
    if not isinstance(body, dict):
        return None
    details = body.get("details") or []
    if details and isinstance(details[0], dict) and details[0].get("issue"):
        return str(details[0]["issue"])
    return body.get("name")


#: Capture issues that are the payer's or their instrument's: a decline (402), the payment may be
#: posted again once the payer approves again or chooses another instrument.
DECLINES = frozenset({"INSTRUMENT_DECLINED", "TRANSACTION_REFUSED", "PAYER_ACTION_REQUIRED", "ORDER_NOT_APPROVED",
                      "PAYER_CANNOT_PAY", "PAYEE_BLOCKED_TRANSACTION", "COMPLIANCE_VIOLATION",
                      "MAX_NUMBER_OF_PAYMENT_ATTEMPTS_EXCEEDED", "ORDER_EXPIRED"})


def decline_code(issue: str | None) -> str:
    """A PayPal issue as a `decline_code` (PayPal's issue, in paystream's lower case)."""
    return (issue or "generic_decline").lower()


#: Refund refusals, as the refunds API words the same rule (the parameter at fault: `amount`).
_REFUND_REFUSALS = {
    "REFUND_AMOUNT_EXCEEDED": ("amount_too_large", "the refund is more than what is left to refund"),
    "CAPTURE_FULLY_REFUNDED": ("charge_already_refunded", "this payment was refunded in full already"),
    "PARTIAL_REFUND_NOT_ALLOWED": ("partial_refund_not_allowed", "PayPal refunds this payment in full only"),
    "REFUND_CURRENCY_MISMATCH": ("currency_mismatch", "the refund must be in the payment's currency"),
    "MAX_NUMBER_OF_REFUNDS_EXCEEDED": ("too_many_refunds", "PayPal takes no more refunds of this payment"),
}


def refund_failure_reason(issue: str | None) -> str:
    """Why PayPal refused a refund, as paystream's code (a `failed` refund's `failure_reason`)."""
    known = _REFUND_REFUSALS.get(issue or "")
    return known[0] if known else decline_code(issue or "refund_refused")


def refund_refusal(issue: str | None) -> PaymentError:
    """A refund refusal as the error a client is told: invalid, with the parameter at fault."""
    code, message = _REFUND_REFUSALS.get(issue or "", (decline_code(issue or "refund_refused"),
                                                        "PayPal refused the refund"))
    return InvalidRequest(code, message, "amount")
