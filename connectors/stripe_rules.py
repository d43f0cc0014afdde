"""Stripe's own rules, as pure functions: amounts to and from Stripe's units, and Stripe's states.

paystream's amounts are integer minor units by ISO 4217. Stripe mostly agrees, with exceptions
(stripe.com/docs/currencies): ISK and UGX (no minor unit by ISO) and HUF and TWD are sent as
two-decimal amounts, so ISK 500 is `50000`; three-decimal currencies (BHD, JOD, KWD, OMR, TND) are
sent in thousandths but must end in 0. Nothing here does I/O.
"""

from __future__ import annotations

from paystream.domain.errors import InvalidRequest
from paystream.domain.money import Money, currency_exponent
from paystream.domain.provider import PaymentStatus, RefundStatus

#: Stripe takes these as two-decimal whatever ISO 4217 says (ISK and UGX have no minor unit there).
TWO_DECIMAL_AT_STRIPE = frozenset({"ISK", "HUF", "TWD", "UGX"})
#: Sent in thousandths, but Stripe accepts only amounts that end in 0.
THREE_DECIMAL = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})


def _stripe_exponent(currency: str) -> int:
    return 2 if currency in TWO_DECIMAL_AT_STRIPE else currency_exponent(currency)


def to_stripe_amount(money: Money, field: str = "amount") -> int:
    """The amount Stripe is sent for `money`, or a structured refusal when Stripe cannot take it."""
    scale = _stripe_exponent(money.currency) - currency_exponent(money.currency)
    amount = money.minor * 10 ** scale
    if money.currency in THREE_DECIMAL and amount % 10:
        raise InvalidRequest("amount_not_supported",
                             f"{money.currency} amounts must be whole hundredths at the provider", field)
    return amount


def from_stripe_amount(amount: int | str, currency: str) -> Money:
    """Stripe's amount in `currency` (any case) as paystream's minor units; exact or a ValueError."""
    code = currency.upper()
    scale = _stripe_exponent(code) - currency_exponent(code)
    minor, rest = divmod(int(amount), 10 ** scale)
    if rest:
        raise ValueError(f"Stripe amount {amount} {code} is not a whole {code} minor unit")
    return Money(minor, code)


_PAYMENT_STATUSES = {
    "requires_payment_method": PaymentStatus.PENDING,
    "requires_confirmation": PaymentStatus.PENDING,
    "requires_action": PaymentStatus.REQUIRES_ACTION,
    "processing": PaymentStatus.PROCESSING,
    "requires_capture": PaymentStatus.AUTHORIZED,
    "succeeded": PaymentStatus.SUCCEEDED,
    "canceled": PaymentStatus.CANCELED,
}

_REFUND_STATUSES = {
    "pending": RefundStatus.PENDING,
    "requires_action": RefundStatus.PENDING,
    "succeeded": RefundStatus.SUCCEEDED,
    "failed": RefundStatus.FAILED,
    "canceled": RefundStatus.CANCELED,
}


def payment_status(intent_status: str | None, last_payment_error: dict | None = None) -> PaymentStatus:
    """A PaymentIntent's status as paystream's; a state paystream does not know is `unknown`, not guessed."""
    if intent_status == "requires_payment_method" and last_payment_error:
        return PaymentStatus.FAILED  # declined: the intent went back to asking for a card
    return _PAYMENT_STATUSES.get(intent_status or "", PaymentStatus.UNKNOWN)


def refund_status(status: str | None) -> RefundStatus:
    return _REFUND_STATUSES.get(status or "", RefundStatus.UNKNOWN)
