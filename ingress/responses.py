"""What the API answers, as pydantic models: the routes build their bodies from these, and
/openapi.json documents the same models (with the core's PaymentView and Receipt)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from paystream.domain.records import PaymentView, Receipt, RefundView


class ErrorObject(BaseModel):
    """Stripe-shaped: `param` names the offending parameter (`field` is the same, kept for older clients)."""

    type: str = Field(examples=["invalid_request_error"])
    code: str = Field(examples=["invalid_amount"])
    message: str
    param: str | None = None
    field: str | None = None
    decline_code: str | None = Field(None, description="On a declined card (HTTP 402), the provider's reason.")

    @classmethod
    def of(cls, type_: str, code: str, message: str, field: str | None = None,
           decline_code: str | None = None) -> ErrorObject:
        return cls(type=type_, code=code, message=message, param=field, field=field, decline_code=decline_code)


class ApiError(BaseModel):
    error: ErrorObject


class StartedPayment(PaymentView):
    """startPayment's answer: the payment, and the provider's client secret, handed over once and never kept."""

    client_secret: str | None = None


class Accepted(BaseModel):
    """A write whose outcome did not come within the wait: poll `Location`, after `Retry-After` seconds."""

    model_config = ConfigDict(frozen=True)

    payment_id: str
    status: Literal["processing"] = "processing"
    message: str = "the payment is being processed; poll its Location for the outcome"
    #: On a refund: the refund being made.
    refund_id: str | None = None


class PaymentList(BaseModel):
    object: Literal["list"] = "list"
    url: str
    has_more: bool
    data: list[PaymentView]


class ReceiptList(BaseModel):
    object: Literal["list"] = "list"
    url: str
    has_more: bool
    data: list[Receipt]


class RefundList(BaseModel):
    object: Literal["list"] = "list"
    url: str
    has_more: bool
    data: list[RefundView]


class UserTokenIssued(BaseModel):
    """Send it as `Authorization: Bearer <token>`: it sees and acts for `user_id` only, until `expires_at`."""

    object: Literal["user_token"] = "user_token"
    token: str
    user_id: str
    expires_at: int = Field(description="Unix time.")


class Health(BaseModel):
    status: Literal["ok"] = "ok"
