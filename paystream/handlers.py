"""The service layer: carries one command through the state machine.

Every handler is safe to run again for the same command (Kafka redelivers
after a crash): a step already taken is not taken twice, and a payment left
mid-charge is settled from the provider's own record before anything is
sent to the provider again. That record is found by id: every provider
object that can carry a charge of a payment is recorded in the payment, and
made durable, before any call that can charge it, so recovery costs the same
whatever the size of the provider's history.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from paystream.domain.commands import Command, CommandReply, ErrorBody, PostPayment, RefundPayment, StartPayment
from paystream.domain.errors import (
    CardDeclined,
    InvalidRequest,
    PaymentError,
    ProviderUnavailable,
    ProviderUnreachable,
)
from paystream.domain.model import CHARGED, Payment, Status, check_owner, payment_for_post, validate_post_target
from paystream.domain.money import Money
from paystream.domain.provider import RefundStatus
from paystream.domain.records import Receipt
from paystream.domain.sealing import seal_to
from paystream.ports import (
    ChargeResult,
    PaymentProvider,
    PaymentStore,
    PreparedCharge,
    ProviderIntent,
    ProviderRefund,
)
from paystream.providers import Providers

Clock = Callable[[], str]


@dataclass
class Outcome:
    """What one command did: the payment after it, each state it went through, and the answer."""

    payment: Payment | None
    changes: list[Payment] = field(default_factory=list)
    error: PaymentError | None = None
    #: The provider's client secret, held only until the reply seals it to the asking ingress.
    client_secret: str | None = None
    #: how many of `changes` were already made durable while the command ran
    flushed: int = 0
    #: The refund a refund command is about, when the payment has it.
    refund_id: str | None = None

    @property
    def unflushed(self) -> list[Payment]:
        """The changes still to be made durable (with their events) before the reply."""
        return self.changes[self.flushed:]

    @property
    def receipt(self) -> Receipt | None:
        return self.payment.receipt() if self.payment and self.payment.status == Status.RECEIPTED else None

    def reply(self, command: Command, correlation_id: str | None) -> CommandReply:
        ids = {"correlation_id": correlation_id, "payment_id": command.payment_id, "command_id": command.command_id}
        view = self.payment.public_view() if self.payment else None
        if self.error is not None:
            return CommandReply(**ids, ok=False, error=ErrorBody(**self.error.as_dict()), payment=view)
        reply_key = getattr(command, "reply_key", None)
        sealed = seal_to(reply_key, self.client_secret) if reply_key and self.client_secret else None
        refund = self.payment.refund(self.refund_id) if self.payment and self.refund_id else None
        return CommandReply(**ids, ok=True, payment=view, receipt=self.receipt, sealed_client_secret=sealed,
                            refund=refund.view() if refund else None)


class _Recorder:
    """Saves each new state of a payment to the store and remembers it as a change."""

    def __init__(self, store: PaymentStore) -> None:
        self.store = store
        self.changes: list[Payment] = []
        self.flushed = 0

    def save(self, payment: Payment) -> Payment:
        self.store.put(payment)
        self.changes.append(payment)
        return payment

    async def make_durable(self) -> None:
        """Every state saved so far in the table's changelog and on the events topic."""
        await self.store.flush(self.changes[self.flushed:])
        self.flushed = len(self.changes)

    def outcome(self, payment: Payment | None, error: PaymentError | None = None,
                client_secret: str | None = None, refund_id: str | None = None) -> Outcome:
        return Outcome(payment=payment, changes=self.changes, error=error, client_secret=client_secret,
                       flushed=self.flushed, refund_id=refund_id)


async def handle_start(
    command: StartPayment, store: PaymentStore, provider: PaymentProvider | Mapping[str, PaymentProvider],
    now: Clock
) -> Outcome:
    """`provider`: every connector by name (a lone one is Stripe's); the payment's own is asked."""
    providers = Providers.of(provider)
    rec = _Recorder(store)
    payment = store.get(command.payment_id)
    if payment is None:
        payment = rec.save(Payment.start(command, now()))
    else:
        try:
            # Payment ids are derived from the client's key; never hand one user another's session.
            check_owner((payment.account, payment.user_id), command.account, command.user_id)
        except PaymentError as exc:
            return rec.outcome(None, exc)
        if payment.status == Status.FAILED:
            # The provider was unavailable when this start was first tried: the client's retry (or
            # Kafka's redelivery) tries it again rather than replaying that failure for ever.
            try:
                payment = rec.save(payment.started_again(now()))
            except PaymentError as exc:
                return rec.outcome(payment, exc)
        elif payment.status != Status.STARTED:
            # A replay of a start already done: the same answer, nothing new. The client secret was
            # never kept, so it is asked of the provider again.
            return rec.outcome(payment, client_secret=await _session_secret(providers.of_payment(payment), payment))

    try:
        try:
            session = await providers.of_payment(payment).create_session(payment.payment_id, payment.amount)
        except ProviderUnreachable:
            if payment.fallback_provider not in providers:
                raise
            # Not reached, so nothing was made there: the account's other provider takes the start, and
            # keeps it unless it could not be reached either (then nothing was made anywhere).
            fallen = payment.falling_back()
            try:
                session = await providers.of_payment(fallen).create_session(payment.payment_id, payment.amount)
            except ProviderUnreachable:
                raise
            except PaymentError:
                payment = fallen
                raise
            payment = fallen
    except ProviderUnreachable as exc:
        return rec.outcome(rec.save(payment.failed(f"provider unavailable: {exc.message}", now())), exc)
    except ProviderUnavailable as exc:
        # Reached, its answer lost: a session may exist there now, so this payment stays with it.
        payment = payment.provider_reached()
        return rec.outcome(rec.save(payment.failed(f"provider unavailable: {exc.message}", now())), exc)
    except InvalidRequest as exc:
        # Refused by the provider (a currency it does not take, say): nothing was made.
        return rec.outcome(rec.save(payment.failed(f"provider refused: {exc.message}", now())), exc)
    payment = rec.save(payment.tokenized(session.transaction_id, now()))
    return rec.outcome(payment, client_secret=session.client_secret)


async def _session_secret(provider: PaymentProvider, payment: Payment) -> str | None:
    if payment.transaction_id is None or payment.status not in (Status.TOKENIZED, Status.DECLINED):
        return None
    try:
        return await provider.session_secret(payment.transaction_id)
    except ProviderUnavailable:
        return None  # the payment is still the client's; only its secret must be asked for again


async def handle_post(
    command: PostPayment, store: PaymentStore, provider: PaymentProvider, now: Clock
) -> Outcome:
    rec = _Recorder(store)
    try:
        payment = payment_for_post(store.get(command.payment_id), command)
    except PaymentError as exc:
        return rec.outcome(None, exc)

    if payment.post_command_id == command.command_id:
        if payment.status in CHARGED:
            return _finish(rec, payment, now)
        if payment.status == Status.DECLINED:
            return rec.outcome(payment, _declined(payment.decline_code))
        if payment.status == Status.POSTING:
            return await _recover(rec, payment, provider, now)

    try:
        validate_post_target(payment, command)
        payment.check_post(command)
    except PaymentError as exc:
        return rec.outcome(payment, exc)
    try:
        prepared = await _prepare(provider, payment, command.command_id, command.amount, command.payment_method)
    except ProviderUnavailable as exc:
        # Nothing can have been charged: the payment stays as it was and the request may be repeated.
        return rec.outcome(payment, exc)
    payment = rec.save(payment.posting(command, now(), prepared.intent_id))
    return await _charge(rec, payment, prepared, provider, now)


async def _prepare(provider: PaymentProvider, payment: Payment, attempt: str, amount: Money, payment_method: str
                   ) -> PreparedCharge:
    return await provider.prepare_charge(payment.payment_id, attempt, payment.transaction_id, amount,
                                         payment_method, used=payment.charge_intent_ids)


async def _charge(rec: _Recorder, payment: Payment, prepared: PreparedCharge,
                  provider: PaymentProvider, now: Clock) -> Outcome:
    if prepared.result is not None:
        return _apply(rec, payment, prepared.result, now)
    # What is about to be charged is on record, durably, before the call that charges it.
    await rec.make_durable()
    try:
        result = await provider.confirm(payment.payment_id, payment.post_command_id, prepared.intent_id)
    except ProviderUnavailable as exc:
        # The outcome is unknown: the payment stays "posting" and the same
        # request, repeated with its Idempotency-Key, settles it.
        return rec.outcome(payment, exc)
    return _apply(rec, payment, result, now)


async def _recover(rec: _Recorder, payment: Payment, provider: PaymentProvider, now: Clock) -> Outcome:
    """We crashed (or the provider timed out) mid-charge: ask the provider what happened to each
    object this payment recorded, by id, instead of charging again."""
    try:
        records = await provider.look_up(payment.charge_intent_ids) if payment.charge_intent_ids else []
    except ProviderUnavailable as exc:
        return rec.outcome(payment, exc)
    settled = settle(records, payment.current_intent)
    if settled is not None:
        return _apply(rec, payment, settled, now)
    if payment.current_intent is not None:
        # Recorded and not charged: confirming it now is the charge that did not happen.
        return await _charge(rec, payment, PreparedCharge(payment.current_intent), provider, now)
    # Posting was recorded but not yet what it would confirm, so nothing was confirmed for it.
    try:
        prepared = await _prepare(provider, payment, payment.post_command_id, payment.amount,
                                  payment.payment_method)
    except ProviderUnavailable as exc:
        return rec.outcome(payment, exc)
    if prepared.intent_id is not None:
        payment = rec.save(payment.charging(prepared.intent_id, now()))
    return await _charge(rec, payment, prepared, provider, now)


def settle(records: Sequence[ProviderIntent], current_intent: str | None) -> ChargeResult | None:
    """What the provider's records say became of a payment left posting: charged if any of its
    objects carries a charge; declined if the current attempt's object was declined; else None."""
    for record in records:
        if record.result.outcome == "succeeded":
            return record.result
    for record in records:
        if record.intent_id == current_intent and record.result.outcome == "declined":
            return record.result
    return None


def _apply(rec: _Recorder, payment: Payment, result: ChargeResult, now: Clock) -> Outcome:
    if result.outcome == "declined":
        payment = rec.save(payment.declined(result.decline_code or "card_declined", now()))
        return rec.outcome(payment, _declined(payment.decline_code, result.message))
    if result.outcome == "not_charged":
        return rec.outcome(payment, ProviderUnavailable("charge_not_confirmed", "the provider did not confirm the charge"))
    return _finish(rec, rec.save(payment.succeeded(result.charge_id, now())), now)


def _finish(rec: _Recorder, payment: Payment, now: Clock) -> Outcome:
    if payment.status == Status.SUCCEEDED:
        payment = rec.save(payment.receipted(now()))
    return rec.outcome(payment)


def _declined(decline_code: str | None, message: str | None = None) -> CardDeclined:
    # Stripe's shape: the code says a card was declined, decline_code says why.
    return CardDeclined("card_declined", message or "the card was declined", "payment_method",
                        decline_code=decline_code or "generic_decline")


async def handle_refund(
    command: RefundPayment, store: PaymentStore, provider: PaymentProvider, now: Clock
) -> Outcome:
    """A refund: checked against the payment's own record, recorded pending and made durable, then asked
    of the provider with a key derived from the refund id. A replay (the client's, or Kafka's after a
    crash) of a refund still pending asks the provider what became of it, by id, before anything else."""
    rec = _Recorder(store)
    payment = store.get(command.payment_id)
    try:
        check_owner((payment.account, payment.user_id) if payment else None, command.account, command.user_id,
                    "payment", "payment_id")
    except PaymentError as exc:
        return rec.outcome(None, exc)
    known = payment.refund(command.refund_id)
    if known is not None:
        if known.terminal:
            return rec.outcome(payment, refund_id=known.refund_id)
        return await sync_refund(rec, payment, command.refund_id, provider, now)
    try:
        payment = rec.save(payment.refunding(command, now()))
    except PaymentError as exc:
        return rec.outcome(payment, exc)
    # The refund is on record, durably, before the call that makes it: a crash is settled by a sync.
    await rec.make_durable()
    return await _refund(rec, payment, command.refund_id, provider, now)


async def _refund(rec: _Recorder, payment: Payment, refund_id: str, provider: PaymentProvider,
                  now: Clock) -> Outcome:
    refund = payment.refund(refund_id)
    # No reason goes to the provider: paystream keeps its own (the Stripe sandbox refuses the field).
    answer = await provider.refund(refund_id, payment.payment_id, payment.transaction_id, refund.amount)
    return _settle_refund(rec, payment, answer, now)


async def sync_refund(rec: _Recorder, payment: Payment, refund_id: str, provider: PaymentProvider,
                      now: Clock) -> Outcome:
    """What became of a pending refund, from the provider's record by id; made now only if the provider
    never made it. The provider not answering leaves it pending (a later replay or sync settles it)."""
    refund = payment.refund(refund_id)
    try:
        answer = await provider.sync_refund(refund_id, payment.transaction_id, refund.provider_refund_id)
    except ProviderUnavailable:
        return rec.outcome(payment, refund_id=refund_id)
    if not answer.found:
        return await _refund(rec, payment, refund_id, provider, now)
    return _settle_refund(rec, payment, answer, now)


def _settle_refund(rec: _Recorder, payment: Payment, answer: ProviderRefund, now: Clock) -> Outcome:
    settled = payment.refund_settled(answer.refund_id, answer.status, now(), answer.provider_refund_id,
                                     answer.failure_reason or (None if answer.status is not RefundStatus.FAILED
                                                               else "refused by the provider"))
    if settled is not payment:
        payment = rec.save(settled)
    return rec.outcome(payment, refund_id=answer.refund_id)


def refund_sync_command(payment: Payment, refund_id: str, now: str) -> RefundPayment:
    """The refund command asked again, as a client's retry would be: its handler syncs the refund."""
    refund = payment.refund(refund_id)
    return RefundPayment(command_id=refund.command_id, payment_id=payment.payment_id, refund_id=refund_id,
                         account=payment.account, user_id=payment.user_id, requested_at=now,
                         amount=refund.amount.decimal, reason=refund.reason.value if refund.reason else None)


class CommandHandler:
    """Runs commands through the handlers, one at a time per payment however many run at once.

    The worker's agent handles many commands concurrently (provider calls take
    hundreds of milliseconds). Two commands of one payment, e.g. a post the
    client repeated while the first was being charged, must never interleave:
    the second would find the payment "posting" and charge it again. Commands
    of one payment reach the worker in order on one partition, and
    asyncio.Lock wakes waiters in the order they came, so the order holds.
    """

    def __init__(self, store: PaymentStore, providers: PaymentProvider | Mapping[str, PaymentProvider],
                 now: Clock) -> None:
        self.store = store
        #: Every provider's connector by name: each command goes to its payment's (paystream/providers.py).
        self.providers = Providers.of(providers)
        self.now = now
        # A lock lives only while some command of its payment holds or awaits it.
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        #: Refunds this process left pending (the provider said pending, or could not say), by payment id:
        #: what the worker asks again until they are terminal.
        self.pending_refunds: dict[str, set[str]] = {}

    async def __call__(self, command: Command) -> Outcome:
        lock = self._locks.setdefault(command.payment_id, asyncio.Lock())
        async with lock:
            if isinstance(command, StartPayment):
                return await handle_start(command, self.store, self.providers, self.now)
            if isinstance(command, RefundPayment):
                outcome = await handle_refund(command, self.store, self._provider_of(command), self.now)
                self._note_pending(outcome.payment)
                return outcome
            return await handle_post(command, self.store, self._provider_of(command), self.now)

    def _provider_of(self, command: Command) -> PaymentProvider:
        """The connector of the provider the command's payment went to (Stripe's for one not found:
        the handler answers that it is not found before asking any provider)."""
        payment = self.store.get(command.payment_id)
        return self.providers.of_payment(payment) if payment is not None else self.providers.named("stripe")

    def _note_pending(self, payment: Payment | None) -> None:
        if payment is None:
            return
        pending = {r.refund_id for r in payment.refunds if not r.terminal}
        if pending:
            self.pending_refunds[payment.payment_id] = pending
        else:
            self.pending_refunds.pop(payment.payment_id, None)

    @property
    def in_flight(self) -> int:
        """Payments being handled right now: those whose lock is held."""
        return sum(1 for lock in list(self._locks.values()) if lock.locked())
