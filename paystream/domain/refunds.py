"""Refunds: money given back from a charged payment, and the rules that keep it within the charge.

A refund lives inside its payment (at most `MAX_REFUNDS` of them), so the worker that owns the
payment, which handles its commands one at a time, checks every invariant against the payment's
own record before anything reaches the provider:

- only a charged payment is refunded;
- the refunds not failed or canceled add up to at most the payment's amount;
- at most `MAX_REFUNDS` refunds a payment;
- no amount asks for the rest; a reason is one of `RefundReason`.

The provider's answer then moves a refund from `pending` to a terminal status; a lost answer keeps
it pending until a sync by id says what became of it. Pure logic, no I/O.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from paystream.domain.errors import IllegalTransition, InvalidRequest
from paystream.domain.money import Money, WireMoney
from paystream.domain.provider import RefundReason, RefundStatus
from paystream.domain.records import RefundView

MAX_REFUNDS = 10
#: The statuses paystream records (the provider's `unknown` is never recorded: the refund stays pending).
Status = Literal["pending", "succeeded", "failed", "canceled"]
#: What a payment's refunds came to: none yet, part of its amount, all of it.
RefundState = Literal["partially_refunded", "refunded"]
TERMINAL = frozenset({"succeeded", "failed", "canceled"})
#: Refunds that hold on to their amount: those not failed or canceled.
HOLDING = frozenset({"pending", "succeeded"})


class Refund(BaseModel):
    """One refund of a payment; every change returns a new one."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    refund_id: str
    payment_id: str
    command_id: str
    amount: WireMoney
    status: Status = "pending"
    reason: RefundReason | None = None
    failure_reason: str | None = None
    provider_refund_id: str | None = None
    created_at: str
    updated_at: str

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def settled(self, status: RefundStatus, now: str, provider_refund_id: str | None = None,
                failure_reason: str | None = None) -> Refund:
        """The provider's answer recorded: `unknown` changes only what it names (the provider's id)."""
        if self.terminal:
            return self
        new_status = self.status if status is RefundStatus.UNKNOWN else status.value
        return self.model_copy(update={
            "status": new_status, "updated_at": now,
            "provider_refund_id": provider_refund_id or self.provider_refund_id,
            "failure_reason": failure_reason if new_status in ("failed", "canceled") else None,
        })

    def view(self) -> RefundView:
        return RefundView(id=self.refund_id, payment_id=self.payment_id, **self.amount.as_dict(), status=self.status,
                          reason=self.reason.value if self.reason else None, failure_reason=self.failure_reason,
                          created_at=self.created_at, updated_at=self.updated_at)


def held(refunds: tuple[Refund, ...]) -> int:
    """Minor units the refunds hold on to (pending or succeeded): what no further refund may take."""
    return sum(r.amount.minor for r in refunds if r.status in HOLDING)


def refunded(refunds: tuple[Refund, ...]) -> int:
    """Minor units given back: the succeeded refunds."""
    return sum(r.amount.minor for r in refunds if r.status == "succeeded")


def refund_state(charged: Money | None, refunds: tuple[Refund, ...]) -> RefundState | None:
    given = refunded(refunds)
    if charged is None or given == 0:
        return None
    return "refunded" if given >= charged.minor else "partially_refunded"


def new_refund(charged: Money, refunds: tuple[Refund, ...], refund_id: str, payment_id: str, command_id: str,
               amount: str | None, reason: str | None, now: str) -> Refund:
    """A pending refund of `amount` (a decimal string in the payment's currency; None: the rest), or the
    error that says which rule it breaks (with the parameter at fault). Nothing is recorded on error."""
    reason_value = _reason(reason)
    if len(refunds) >= MAX_REFUNDS:
        raise IllegalTransition("too_many_refunds", f"a payment can have at most {MAX_REFUNDS} refunds", "payment_id")
    left = charged.minor - held(refunds)
    if left <= 0:
        raise InvalidRequest("charge_already_refunded", "this payment was refunded in full already", "amount")
    money = Money(left, charged.currency) if amount is None else Money.parse(amount, charged.currency)
    if money.minor > left:
        raise InvalidRequest(
            "amount_too_large",
            f"the refund ({money.decimal} {money.currency}) is more than what is left to refund "
            f"({Money(left, charged.currency).decimal} {charged.currency})", "amount")
    return Refund(refund_id=refund_id, payment_id=payment_id, command_id=command_id, amount=money,
                  reason=reason_value, created_at=now, updated_at=now)


def _reason(reason: str | None) -> RefundReason | None:
    if reason is None:
        return None
    try:
        return RefundReason(reason)
    except ValueError:
        allowed = ", ".join(r.value for r in RefundReason)
        raise InvalidRequest("invalid_reason", f"reason must be one of {allowed}", "reason") from None
