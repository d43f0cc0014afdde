"""What a payment provider's answers mean to paystream, whichever provider it is.

The statuses every connector maps its provider's own states onto (Stripe's intent and refund
states, PayPal's order, capture and refund states). `UNKNOWN` is an answer in its own right: a
mutating call whose outcome was lost (a timeout, a 5xx after its retries) or a state paystream
does not know. It is never guessed into another status; only a later sync by id resolves it.
"""

from __future__ import annotations

from enum import StrEnum


class PaymentStatus(StrEnum):
    """A payment as its provider holds it."""

    PENDING = "pending"                  # made, waiting for a payment method or a confirm
    REQUIRES_ACTION = "requires_action"  # the payer must act (3-D Secure, an approval)
    PROCESSING = "processing"            # the provider is still deciding
    AUTHORIZED = "authorized"            # held, to be captured or voided
    SUCCEEDED = "succeeded"              # captured: money moved
    FAILED = "failed"                    # declined, nothing charged
    CANCELED = "canceled"                # voided, nothing charged
    UNKNOWN = "unknown"                  # only a sync may say

    @property
    def terminal(self) -> bool:
        return self in (PaymentStatus.SUCCEEDED, PaymentStatus.FAILED, PaymentStatus.CANCELED)


class RefundStatus(StrEnum):
    """A refund as its provider holds it (the refund object's own statuses, plus unknown)."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    UNKNOWN = "unknown"

    @property
    def terminal(self) -> bool:
        return self in (RefundStatus.SUCCEEDED, RefundStatus.FAILED, RefundStatus.CANCELED)


class RefundReason(StrEnum):
    DUPLICATE = "duplicate"
    FRAUDULENT = "fraudulent"
    REQUESTED_BY_CUSTOMER = "requested_by_customer"


class InvalidWebhook(Exception):
    """A webhook whose signature does not verify (wrong secret, altered body, too old) or that does not parse."""
