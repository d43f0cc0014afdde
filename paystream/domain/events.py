"""Events: what happened to a payment, one per state it enters, on the events topic.

The events topic is kept forever and is the source of truth the stores are
derived from; each event carries the whole payment as it stands after the change.
"""

from __future__ import annotations

from paystream.domain.message import Message
from paystream.domain.model import Payment
from paystream.domain.records import RefundView


class PaymentChanged(Message):
    at: str
    payment: Payment

    @classmethod
    def of(cls, payment: Payment) -> PaymentChanged:
        return cls(at=payment.updated_at, payment=payment)


class RefundChanged(Message):
    """A refund entered a status: the refunds topic's value, keyed by refund id, for downstream consumers."""

    at: str
    account: str
    user_id: str
    refund: RefundView
