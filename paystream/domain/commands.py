"""Commands: what a client asks paystream to do, already validated and typed.

They travel on the commands topic, encoded and decoded by `paystream.messages`.
Like every message, a command carries a `schema_version` and its reader
ignores fields it does not know, so a newer ingress never makes an older
worker drop a payment.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from paystream.domain.message import Message
from paystream.domain.money import WireMoney
from paystream.domain.records import PaymentView, Receipt, RefundView

PaymentType = Literal["credit", "debit"]


class StartPayment(Message):
    kind: Literal["start"] = "start"
    command_id: str
    payment_id: str
    account: str  # whose API key asked: every object is scoped to it
    user_id: str
    email: str  # sealed with the user's data key (paystream.domain.sealing), never plaintext
    requested_at: str  # ISO 8601, as the client sent it
    payment_type: PaymentType
    amount: WireMoney | None = None
    #: The provider the payment goes to (paystream/domain/routing.py), and the one it may start with
    #: instead when that one cannot be reached. Commands written before there was a choice: Stripe.
    provider: str = "stripe"
    fallback_provider: str | None = None
    #: The asking ingress's ephemeral public key: the client secret comes back sealed to it.
    reply_key: str | None = None


class PostPayment(Message):
    kind: Literal["post"] = "post"
    command_id: str
    payment_id: str
    account: str
    user_id: str
    email: str  # sealed, as on StartPayment
    requested_at: str
    payment_type: PaymentType
    transaction_id: str
    amount: WireMoney
    payment_method: str


class RefundPayment(Message):
    """Give back `amount` of a charged payment (None: the rest). Keyed by payment id like the payment's other
    commands, so the worker that owns the payment checks it against the payment's other refunds."""

    kind: Literal["refund"] = "refund"
    command_id: str
    payment_id: str
    refund_id: str
    account: str
    user_id: str
    requested_at: str
    #: A decimal string in the payment's currency, checked against it by the worker.
    amount: str | None = None
    reason: str | None = None


Command = Annotated[StartPayment | PostPayment | RefundPayment, Field(discriminator="kind")]


class ErrorBody(BaseModel):
    """A machine-readable error: what the API answers and what a reply carries."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    type: str
    code: str
    message: str
    field: str | None = None
    decline_code: str | None = None  # on card declines, the provider's reason


class CommandReply(Message):
    """The outcome of one command, for the ingress that waits on it (matched by correlation id)."""

    correlation_id: str | None = None
    payment_id: str
    command_id: str | None = None  # None when the command itself could not be read
    ok: bool
    error: ErrorBody | None = None
    payment: PaymentView | None = None
    receipt: Receipt | None = None
    #: The provider's client secret, sealed to the asking ingress's `reply_key`: unreadable on the topic.
    sealed_client_secret: str | None = None
    #: The refund a refund command asked for, as it stands.
    refund: RefundView | None = None
