"""What the outside sees of a payment: its receipt and the view its owner may read."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from paystream.domain.message import Message


class Receipt(Message):
    """The proof of a payment: getReceipt's answer and the receipts topic's value."""

    receipt_id: str
    payment_id: str
    transaction_id: str
    account: str
    user_id: str
    #: Sealed with the user's data key on topics and in stores; plaintext in API answers,
    #: null once the user was forgotten.
    email_id: str | None
    payment_type: Literal["credit", "debit"]
    amount: str
    amount_minor: int
    currency: str
    status: Literal["succeeded"] = "succeeded"
    charge_id: str | None = None
    created_at: str
    paid_at: str
    issued_at: str


class RefundView(Message):
    """A refund as its payment's owner sees it: the refund API's answer and the refunds topic's value."""

    object: Literal["refund"] = "refund"
    id: str
    payment_id: str
    amount: str
    amount_minor: int
    currency: str
    status: Literal["pending", "succeeded", "failed", "canceled"]
    reason: Literal["duplicate", "fraudulent", "requested_by_customer"] | None = None
    failure_reason: str | None = None
    created_at: str
    updated_at: str


class PaymentView(BaseModel):
    """A payment as its owner sees it: no card, no provider secret."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    payment_id: str
    user_id: str
    status: str
    transaction_id: str | None = None
    #: Where the payment is made: "stripe" or "paypal" (its transaction id is that provider's).
    provider: str = "stripe"
    payment_type: Literal["credit", "debit"]
    amount: str | None = None
    amount_minor: int | None = None
    currency: str | None = None
    receipt_id: str | None = None
    decline_code: str | None = None
    failure_reason: str | None = None
    created_at: str
    updated_at: str
    #: Given back so far (succeeded refunds), once there is any; and whether that is part or all of it.
    amount_refunded: str | None = None
    amount_refunded_minor: int | None = None
    refund_status: Literal["partially_refunded", "refunded"] | None = None
    #: Its refunds, oldest first (at most 10).
    refunds: list[RefundView] = []
