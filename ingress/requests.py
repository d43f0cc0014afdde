"""Request bodies, validated with pydantic, and their translation into commands.

Bodies are parsed from raw JSON in strict mode: a number where the API wants
a decimal string, an unknown field or a missing one is refused, never coerced.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, StringConstraints, model_validator

from paystream.domain.errors import InvalidRequest
from paystream.domain.money import Money

Id = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:@-]+$")]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class _Identity(_Request):
    user_id: Id
    email_id: EmailStr
    timestamp: datetime
    payment_type: Literal["credit", "debit"]


class StartPaymentRequest(_Identity):
    amount: str | None = None
    currency: str | None = None

    @model_validator(mode="after")
    def _amount_with_currency(self):
        if (self.amount is None) != (self.currency is None):
            missing = "currency" if self.currency is None else "amount"
            raise InvalidRequest("missing_field", "amount and currency go together", missing)
        return self

    def money(self) -> Money | None:
        return None if self.amount is None else Money.parse(self.amount, self.currency)


class PostPaymentRequest(_Identity):
    transaction_id: Id
    amount: str
    currency: str
    payment_method: Id

    def money(self) -> Money:
        return Money.parse(self.amount, self.currency)


class ReceiptRequest(_Request):
    """getReceipt: receipt_id and user_id decide; the design's other fields are accepted."""

    receipt_id: Id
    user_id: Id
    email_id: EmailStr | None = None
    timestamp: datetime | None = None
    payment_type: Literal["credit", "debit"] | None = None


class PaymentQuery(_Request):
    user_id: Id
