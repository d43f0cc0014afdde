"""The payment state machine.

    started -> tokenized -> posting -> succeeded -> receipted
                  ^            |
                  +- declined -+          (any unfinished state) -> failed

A declined card returns the provider session to "needs a payment method", so
a declined payment may be posted again with another card. Every transition
returns a new Payment; nothing here performs I/O.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from paystream.domain.commands import PaymentType, PostPayment, RefundPayment, StartPayment
from paystream.domain.errors import IllegalTransition, NotFound
from paystream.domain.ids import receipt_id_for
from paystream.domain.money import Money, WireMoney
from paystream.domain.provider import RefundStatus
from paystream.domain.records import PaymentView, Receipt
from paystream.domain.refunds import Refund, new_refund, refund_state, refunded


class Status(StrEnum):
    STARTED = "started"
    TOKENIZED = "tokenized"
    POSTING = "posting"
    SUCCEEDED = "succeeded"
    RECEIPTED = "receipted"
    DECLINED = "declined"
    FAILED = "failed"


FINISHED = frozenset({Status.RECEIPTED, Status.FAILED})
#: Nothing can follow: a failed start may still be started again by its client's retry.
FINAL = frozenset({Status.RECEIPTED})
CHARGED = frozenset({Status.SUCCEEDED, Status.RECEIPTED})


class ChargeIntent(BaseModel):
    """A provider object that can carry a charge of this payment, and the post attempt it belongs to.

    Recorded in the payment's state, and made durable, before any call that can
    charge it: recovery then looks each one up by id instead of searching the
    provider's history."""

    model_config = ConfigDict(frozen=True)

    attempt: str
    intent_id: str


class Payment(BaseModel):
    """One payment and everything that happened to it; every transition returns a new one."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    payment_id: str
    account: str
    user_id: str
    email: str  # sealed with the user's data key
    payment_type: PaymentType
    status: Status
    created_at: str
    updated_at: str
    start_command_id: str
    amount: WireMoney | None = None
    transaction_id: str | None = None
    #: The provider this payment goes to, for every step, refund and sync (payments stored before there
    #: was a choice were Stripe's); and the one its start may still fall back to, None once anything
    #: may exist at `provider` (paystream/domain/routing.py).
    provider: str = "stripe"
    fallback_provider: str | None = None
    # No client secret: it goes to the client once, sealed in the reply, and is never kept.
    payment_method: str | None = None
    post_command_id: str | None = None
    charge_intents: tuple[ChargeIntent, ...] = ()
    charge_id: str | None = None
    receipt_id: str | None = None
    decline_code: str | None = None
    failure_reason: str | None = None
    version: int = 1
    history: tuple[tuple[str, str], ...] = ()
    #: Refunds of the charge, oldest first (paystream/domain/refunds.py); the status stays what it is.
    refunds: tuple[Refund, ...] = ()

    # --- transitions ------------------------------------------------------
    @classmethod
    def start(cls, command: StartPayment, now: str) -> Payment:
        return cls(
            payment_id=command.payment_id, account=command.account, user_id=command.user_id, email=command.email,
            payment_type=command.payment_type, status=Status.STARTED, created_at=now,
            updated_at=now, start_command_id=command.command_id, amount=command.amount,
            history=((Status.STARTED.value, now),), provider=command.provider,
            fallback_provider=command.fallback_provider,
        )

    def tokenized(self, transaction_id: str, now: str) -> Payment:
        self._require({Status.STARTED}, "tokenize")
        return self._to(Status.TOKENIZED, now, transaction_id=transaction_id, fallback_provider=None)

    def falling_back(self) -> Payment:
        """Its start goes to the fallback provider: the chosen one could not be reached, nothing was made
        there. For good (no way back: something may be made at the fallback from now on); recorded by the
        transition that follows (tokenized, or failed)."""
        self._require({Status.STARTED}, "fall back to another provider for")
        if self.fallback_provider is None or self.transaction_id is not None:
            raise IllegalTransition("no_fallback", "this payment cannot go to another provider")
        return self.model_copy(update={"provider": self.fallback_provider, "fallback_provider": None})

    def provider_reached(self) -> Payment:
        """Its provider was reached (an answer lost may have made something there): no fallback from now on."""
        return self if self.fallback_provider is None else self.model_copy(update={"fallback_provider": None})

    def check_post(self, command: PostPayment) -> None:
        """Raise unless `command` may post this payment (before anything is asked of the provider)."""
        self._require({Status.TOKENIZED, Status.DECLINED}, "post")
        if self.amount is not None and self.amount != command.amount:
            raise IllegalTransition(
                "amount_mismatch",
                f"this payment was started for {self.amount.decimal} {self.amount.currency}; "
                f"it cannot be posted for {command.amount.decimal} {command.amount.currency}",
                "amount",
            )

    def posting(self, command: PostPayment, now: str, intent_id: str | None = None) -> Payment:
        """Posting with `command`; `intent_id` is the provider object this attempt will confirm."""
        self.check_post(command)
        intents = self.charge_intents
        if intent_id is not None:
            intents = (*intents, ChargeIntent(attempt=command.command_id, intent_id=intent_id))
        return self._to(
            Status.POSTING, now, amount=command.amount, payment_method=command.payment_method,
            post_command_id=command.command_id, decline_code=None, charge_intents=intents,
        )

    def charging(self, intent_id: str, now: str) -> Payment:
        """Record the provider object the current post attempt confirms (no change of state)."""
        self._require({Status.POSTING}, "record a charge target for")
        recorded = ChargeIntent(attempt=self.post_command_id, intent_id=intent_id)
        if recorded in self.charge_intents:
            return self
        return self._record(now, charge_intents=(*self.charge_intents, recorded))

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

    def started_again(self, now: str) -> Payment:
        """A start that failed for want of the provider, asked for again.

        Only a payment that never got a transaction can be: nothing was created at the provider
        under it that a new session could duplicate (every session call carries the payment's
        idempotency key, so one half-made before the failure is the one handed back)."""
        self._require({Status.FAILED}, "start again")
        if self.transaction_id is not None:
            raise IllegalTransition("payment_failed", f"this payment failed: {self.failure_reason}")
        return self._to(Status.STARTED, now, failure_reason=None)

    # --- refunds: recorded in the payment, the status unchanged -------------------------
    def refunding(self, command: RefundPayment, now: str) -> Payment:
        """A new pending refund, or the error saying why it may not be made (nothing recorded)."""
        if self.status not in CHARGED or self.amount is None:
            raise IllegalTransition("payment_not_refundable",
                                    f"only a succeeded payment can be refunded; this one is {self.status.value}",
                                    "payment_id")
        refund = new_refund(self.amount, self.refunds, command.refund_id, self.payment_id, command.command_id,
                            command.amount, command.reason, now)
        return self._record(now, refunds=(*self.refunds, refund))

    def refund_settled(self, refund_id: str, status: RefundStatus, now: str, provider_refund_id: str | None = None,
                       failure_reason: str | None = None) -> Payment:
        """The provider's answer about one refund recorded (no change when it changes nothing)."""
        refunds = tuple(r.settled(status, now, provider_refund_id, failure_reason) if r.refund_id == refund_id else r
                        for r in self.refunds)
        return self if refunds == self.refunds else self._record(now, refunds=refunds)

    def refund(self, refund_id: str) -> Refund | None:
        return next((r for r in self.refunds if r.refund_id == refund_id), None)

    @property
    def amount_refunded(self) -> Money | None:
        given = refunded(self.refunds)
        return Money(given, self.amount.currency) if given and self.amount is not None else None

    @property
    def refund_status(self) -> str | None:
        return refund_state(self.amount, self.refunds)

    def _refund_fields(self) -> dict:
        given = self.amount_refunded
        return {"amount_refunded": given.decimal if given else None,
                "amount_refunded_minor": given.minor if given else None, "refund_status": self.refund_status}

    def _record(self, now: str, **changes) -> Payment:
        """A change within the current status (a new version, no new history entry)."""
        return self.model_copy(update={"updated_at": now, "version": self.version + 1, **changes})

    def _require(self, allowed: set[Status], action: str) -> None:
        if self.status not in allowed:
            raise IllegalTransition(
                f"payment_{self.status.value}", f"cannot {action} a payment that is {self.status.value}"
            )

    def _to(self, status: Status, now: str, **changes) -> Payment:
        return self.model_copy(update={
            "status": status, "updated_at": now, "version": self.version + 1,
            "history": (*self.history, (status.value, now)), **changes,
        })

    # --- reading ------------------------------------------------------------
    @property
    def charge_intent_ids(self) -> tuple[str, ...]:
        """Every provider object recorded as able to carry a charge of this payment, oldest first."""
        return tuple(dict.fromkeys(i.intent_id for i in self.charge_intents))

    @property
    def current_intent(self) -> str | None:
        """The provider object the current post attempt confirms, once recorded."""
        return next((i.intent_id for i in reversed(self.charge_intents) if i.attempt == self.post_command_id), None)

    @property
    def changed_refunds(self) -> tuple[Refund, ...]:
        """The refunds this version changed (made, or settled)."""
        return tuple(r for r in self.refunds if r.updated_at == self.updated_at)

    @property
    def entered_status(self) -> bool:
        """Whether this version is the one that entered its status (not a later record within it)."""
        return self.history[-1] == (self.status.value, self.updated_at)

    def receipt(self) -> Receipt:
        """The receipt of a receipted payment: what getReceipt returns and the receipts topic carries."""
        if self.status != Status.RECEIPTED or self.amount is None:
            raise IllegalTransition("no_receipt", f"a {self.status.value} payment has no receipt")
        paid_at = next(at for status, at in self.history if status == Status.SUCCEEDED.value)
        # Issued when receipted (a refund later makes a newer version of the payment, not of its receipt).
        issued_at = next(at for status, at in self.history if status == Status.RECEIPTED.value)
        return Receipt(
            receipt_id=self.receipt_id, payment_id=self.payment_id, transaction_id=self.transaction_id,
            account=self.account, user_id=self.user_id, email_id=self.email, payment_type=self.payment_type, **self.amount.as_dict(),
            charge_id=self.charge_id, created_at=self.created_at, paid_at=paid_at, issued_at=issued_at,
        )

    def as_dict(self) -> dict:
        """JSON-ready: how the payment is kept in the worker's table and carried in events."""
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, data: dict) -> Payment:
        return cls.model_validate(data)

    def public_view(self) -> PaymentView:
        """What the payment's owner may see of it (no card or provider secrets)."""
        return PaymentView(
            payment_id=self.payment_id, user_id=self.user_id, status=self.status.value, transaction_id=self.transaction_id,
            provider=self.provider, payment_type=self.payment_type, **(self.amount.as_dict() if self.amount else {}),
            receipt_id=self.receipt_id, decline_code=self.decline_code, failure_reason=self.failure_reason,
            created_at=self.created_at, updated_at=self.updated_at, **self._refund_fields(),
            refunds=[r.view() for r in self.refunds],
        )


Owner = tuple[str, str]  # (account, user_id)


def check_owner(owner: Owner | None, account: str, user_id: str | None, what: str = "payment",
                field: str | None = None) -> None:
    """The one ownership rule: another account's or another user's object is answered exactly as a
    missing one. `owner` is None when the object does not exist; either way the caller learns nothing
    about ids that are not theirs. `user_id` None: any user of the account (the account's own view)."""
    if owner is None or owner[0] != account or (user_id is not None and owner[1] != user_id):
        raise NotFound(f"{what}_not_found", f"no such {what} for this user", field)


def payment_for_post(payment: Payment | None, command: PostPayment) -> Payment:
    """The payment a post names, if it is the poster's and the transaction is that payment's."""
    mismatch = payment is not None and payment.transaction_id != command.transaction_id
    check_owner(None if payment is None or mismatch else (payment.account, payment.user_id), command.account,
                command.user_id, "payment", "transaction_id")
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
