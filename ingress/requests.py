"""Request bodies and queries, validated with pydantic, and their translation into commands.

Bodies are parsed from raw JSON in strict mode: a number where the API wants
a decimal string, an unknown field or a missing one is refused, never coerced.
The same models are what /openapi.json documents (ingress/openapi.py), so the
contract and the validation cannot drift apart.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, EmailStr, Field, StringConstraints, model_validator

from paystream.domain.errors import InvalidRequest
from paystream.domain.ids import ID_PATTERN
from paystream.domain.money import Money

Id = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=ID_PATTERN),
               Field(description="1 to 128 letters, digits, `_` or `-`.", examples=["user_123"])]


def _upper(value):
    return value.upper() if isinstance(value, str) else value


#: ISO 4217, in either case as Stripe accepts it ("eur", "EUR"); paystream answers in upper case.
Currency = Annotated[str, BeforeValidator(_upper), StringConstraints(pattern=r"^[A-Za-z]{3}$"),
                     Field(description="ISO 4217 code, either case (`eur`, `EUR`); answers use upper case.",
                           examples=["EUR"])]
# Checked by Money.parse (invalid_amount, with the currency's digits), not by a pattern here.
Amount = Annotated[str, Field(description='A decimal string in the currency\'s digits: "12.34" EUR, "500" JPY. '
                                     "Never a JSON number.", examples=["12.34"])]
PaymentTypeField = Literal["credit", "debit"]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class _Identity(_Request):
    user_id: Id
    email_id: EmailStr
    timestamp: datetime = Field(description="When the client made the request (RFC 3339).")
    payment_type: PaymentTypeField


class StartPaymentRequest(_Identity):
    """startPayment: a payment session with the provider; amount and currency together, or neither."""

    amount: Amount | None = None
    currency: Currency | None = None
    provider: Literal["stripe", "paypal"] | None = Field(
        None, description="Where the payment is made (default: the account's provider, else the installation's). "
                          "A PayPal payment needs its amount and currency here; its `client_secret` is the "
                          "order's approval link, where the payer approves it before postPayment.")

    @model_validator(mode="after")
    def _amount_with_currency(self):
        if (self.amount is None) != (self.currency is None):
            missing = "currency" if self.currency is None else "amount"
            raise InvalidRequest("missing_field", "amount and currency go together", missing)
        return self

    def money(self) -> Money | None:
        return None if self.amount is None else Money.parse(self.amount, self.currency)


class PostPaymentRequest(_Identity):
    """postPayment: charge the payment method the provider gave the client for this transaction."""

    transaction_id: Id
    amount: Amount
    currency: Currency
    payment_method: Id

    def money(self) -> Money:
        return Money.parse(self.amount, self.currency)


class ReceiptRequest(_Request):
    """getReceipt: receipt_id and user_id decide; the design's other fields are accepted."""

    receipt_id: Id
    user_id: Id
    email_id: EmailStr | None = None
    timestamp: datetime | None = None
    payment_type: PaymentTypeField | None = None


class PaymentQuery(_Request):
    user_id: Id


class PaymentPath(_Request):
    payment_id: Id


class UserTokenRequest(_Request):
    """A token for one user of your account, for a client app to call the API with directly."""

    user_id: Id
    ttl_s: int = Field(300, ge=60, le=900, description="Seconds it lives, 60 to 900 (default 300).")


class ListQuery(_Request):
    """Stripe's cursor pagination: newest first, `limit` 1 to 100, after the id `starting_after`."""

    user_id: Id
    limit: int = Field(10, ge=1, le=100, description="How many objects, 1 to 100 (default 10).")
    starting_after: Id | None = Field(None, description="The last id of the previous page.")


class RefundRequest(_Request):
    """createRefund: give back `amount` of a succeeded payment (no amount: what is left to refund)."""

    payment_id: Id
    user_id: Id
    amount: Amount | None = Field(None, description="In the payment's currency; none: the rest.")
    reason: Literal["duplicate", "fraudulent", "requested_by_customer"] | None = None


class RefundPath(_Request):
    refund_id: Id


class RefundListQuery(ListQuery):
    """A payment's refunds, newest first."""
