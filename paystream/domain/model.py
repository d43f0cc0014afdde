"""The payment state machine.

    started -> tokenized -> posting -> succeeded -> receipted
                  ^            |
                  +- declined -+          (any unfinished state) -> failed

A declined card returns the provider session to "needs a payment method", so
a declined payment may be posted again with another card. Every transition
returns a new Payment; nothing here performs I/O.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum

from paystream.domain.commands import PostPayment, StartPayment
from paystream.domain.errors import IllegalTransition, NotFound
from paystream.domain.money import Money


class Status(StrEnum):
    STARTED = "started"
    TOKENIZED = "tokenized"
    POSTING = "posting"
    SUCCEEDED = "succeeded"
    RECEIPTED = "receipted"
    DECLINED = "declined"
    FAILED = "failed"


FINISHED = frozenset({Status.RECEIPTED, Status.FAILED})
CHARGED = frozenset({Status.SUCCEEDED, Status.RECEIPTED})


def receipt_id_for(payment_id: str) -> str:
    """Derived, not random, so a replayed step can only ever produce the same receipt."""
    return "rcpt_" + hashlib.sha256(f"receipt:{payment_id}".encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Payment:
    payment_id: str
    user_id: str
    email: str
    payment_type: str
    status: Status
    created_at: str
    updated_at: str
    start_command_id: str
    amount: Money | None = None
    transaction_id: str | None = None
    client_secret: str | None = None
    payment_method: str | None = None
    post_command_id: str | None = None
    charge_id: str | None = None
    receipt_id: str | None = None
    decline_code: str | None = None
    failure_reason: str | None = None
    version: int = 1
    history: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    # --- transitions ------------------------------------------------------
    @classmethod
    def start(cls, command: StartPayment, now: str) -> Payment:
        return cls(
            payment_id=command.payment_id, user_id=command.user_id, email=command.email,
            payment_type=command.payment_type, status=Status.STARTED, created_at=now,
            updated_at=now, start_command_id=command.command_id, amount=command.amount,
            history=((Status.STARTED.value, now),),
        )

    def tokenized(self, transaction_id: str, client_secret: str | None, now: str) -> Payment:
        self._require({Status.STARTED}, "tokenize")
        return self._to(Status.TOKENIZED, now, transaction_id=transaction_id, client_secret=client_secret)

    def posting(self, command: PostPayment, now: str) -> Payment:
        self._require({Status.TOKENIZED, Status.DECLINED}, "post")
        if self.amount is not None and self.amount != command.amount:
            raise IllegalTransition(
                "amount_mismatch",
                f"this payment was started for {self.amount.decimal} {self.amount.currency}; "
                f"it cannot be posted for {command.amount.decimal} {command.amount.currency}",
                "amount",
            )
        return self._to(
            Status.POSTING, now, amount=command.amount, payment_method=command.payment_method,
            post_command_id=command.command_id, decline_code=None,
        )

    def succeeded(self, charge_id: str | None, now: str) -> Payment:
        self._require({Status.POSTING}, "record a charge for")
        return self._to(Status.SUCCEEDED, now, charge_id=charge_id)

    def declined(self, decline_code: str, now: str) -> Payment:
        self._require({Status.POSTING}, "decline")
        return self._to(Status.DECLINED, now, decline_code=decline_code)

    def receipted(self, now: str) -> Payment:
        self._require({Status.SUCCEEDED}, "issue a receipt for")
        return self._to(Status.RECEIPTED, now, receipt_id=receipt_id_for(self.payment_id))

    def failed(self, reason: str, now: str) -> Payment:
        if self.status in FINISHED or self.status == Status.SUCCEEDED:
            raise IllegalTransition("payment_finished", f"payment is already {self.status}")
        return self._to(Status.FAILED, now, failure_reason=reason)

    def _require(self, allowed: set[Status], action: str) -> None:
        if self.status not in allowed:
            raise IllegalTransition(
                f"payment_{self.status.value}", f"cannot {action} a payment that is {self.status.value}"
            )

    def _to(self, status: Status, now: str, **changes) -> Payment:
        return replace(
            self, status=status, updated_at=now, version=self.version + 1,
            history=(*self.history, (status.value, now)), **changes,
        )

    # --- reading ------------------------------------------------------------
    def receipt(self) -> dict:
        """The receipt of a receipted payment: what getReceipt returns and the receipts topic carries."""
        if self.status != Status.RECEIPTED or self.amount is None:
            raise IllegalTransition("no_receipt", f"a {self.status.value} payment has no receipt")
        paid_at = next(at for status, at in self.history if status == Status.SUCCEEDED.value)
        return {
            "receipt_id": self.receipt_id, "payment_id": self.payment_id,
            "transaction_id": self.transaction_id, "user_id": self.user_id, "email_id": self.email,
            "payment_type": self.payment_type, **self.amount.as_dict(), "status": "succeeded",
            "charge_id": self.charge_id, "created_at": self.created_at, "paid_at": paid_at,
            "issued_at": self.updated_at,
        }

    def as_dict(self) -> dict:
        data = asdict(self)
        data["status"] = self.status.value
        data["amount"] = self.amount.as_dict() if self.amount else None
        data["history"] = [list(h) for h in self.history]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> Payment:
        data = dict(data)
        data["status"] = Status(data["status"])
        data["amount"] = Money.from_dict(data["amount"]) if data.get("amount") else None
        data["history"] = tuple(tuple(h) for h in data.get("history", ()))
        return cls(**data)

    def public_view(self) -> dict:
        """What the payment's owner may see of it (no card or provider secrets beyond the session's)."""
        return {
            "payment_id": self.payment_id, "status": self.status.value,
            "transaction_id": self.transaction_id, "payment_type": self.payment_type,
            **(self.amount.as_dict() if self.amount else {}),
            "receipt_id": self.receipt_id, "decline_code": self.decline_code,
            "failure_reason": self.failure_reason, "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


def check_owner(payment: Payment | None, user_id: str, transaction_id: str | None = None) -> Payment:
    """The payment, if it exists and is this user's; otherwise the same 404 either way."""
    if (
        payment is None or payment.user_id != user_id
        or (transaction_id is not None and payment.transaction_id != transaction_id)
    ):
        raise NotFound("payment_not_found", "no such payment for this user", "transaction_id")
    return payment


def validate_post_target(payment: Payment, command: PostPayment) -> None:
    """Reject posts that can never succeed before anything reaches the provider."""
    if payment.status in CHARGED:
        raise IllegalTransition(
            "payment_already_posted",
            f"this transaction was already posted (receipt {receipt_id_for(payment.payment_id)}); "
            "repeat the original request with its Idempotency-Key to get its receipt",
        )
    if payment.status == Status.POSTING:
        raise IllegalTransition("payment_in_progress", "this transaction is being posted right now")
    if payment.status == Status.FAILED:
        raise IllegalTransition("payment_failed", f"this payment failed: {payment.failure_reason}")
    if payment.status == Status.STARTED:
        raise IllegalTransition("payment_not_ready", "the provider session for this payment is not ready yet")
