"""Reconciliation: paystream's payments and receipts against the provider's own records.

Each payment is compared with the provider objects recorded in it (the session's
intent and every intent a post attempt confirmed), looked up by id: nothing
lists the provider's history. Four classes of difference:

- charged_not_receipted: the provider holds a charge, paystream no receipt;
- receipted_not_charged: paystream issued a receipt, the provider holds no charge;
- amount_mismatch: a charge's amount or currency is not the payment's (or its receipt's);
- charged_twice: more than one charge for one payment;

and for a payment with refunds, each refund synced by id and the payment's refunded total:

- refund_mismatch: a refund's status or amount at the provider is not paystream's (a refund paystream
  holds succeeded that the provider never made, or one it holds failed that the provider made);
- refund_pending: a refund still pending after the settle time (its sync has not settled it);
- refunded_amount_mismatch: the provider's refunded total for the payment is not the sum of paystream's
  succeeded refunds (a double refund, or an over-refund).

A payment changed within `settle_s` is still in flight (a charge is taken an
instant before its receipt is recorded) and is judged on a later run. The
pure part is here; the topics and the provider are behind ports.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from paystream.domain.errors import ProviderUnavailable
from paystream.domain.model import FINISHED, Payment, Status
from paystream.domain.provider import RefundStatus
from paystream.domain.records import Receipt
from paystream.domain.refunds import refunded
from paystream.ports import PaymentProvider, ProviderIntent, ProviderPayment, ProviderRefund
from paystream.providers import Providers

KINDS = ("charged_not_receipted", "receipted_not_charged", "amount_mismatch", "charged_twice",
         "refund_mismatch", "refund_pending", "refunded_amount_mismatch")
LOOK_UP_BATCH = 20


class PaymentHistory(Protocol):
    """What paystream recorded, read back from its topics (the source of truth)."""

    async def payments_since(self, since: datetime | None) -> list[Payment]:
        """The latest state of every payment that changed since `since` (all, with None)."""
        ...

    async def receipts_since(self, since: datetime | None) -> list[Receipt]: ...


@dataclass(frozen=True)
class Difference:
    kind: str
    payment_id: str
    detail: str


@dataclass(frozen=True)
class Case:
    """One payment as paystream knows it: its latest state and its receipt, either possibly missing."""

    payment_id: str
    payment: Payment | None = None
    receipt: Receipt | None = None

    @property
    def intent_ids(self) -> tuple[str, ...]:
        ids = []
        if self.payment is not None:
            ids += [self.payment.transaction_id, *self.payment.charge_intent_ids]
        if self.receipt is not None:
            ids.append(self.receipt.transaction_id)
        return tuple(dict.fromkeys(i for i in ids if i))

    def settled(self, now: datetime, settle_s: float) -> bool:
        if self.payment is None or (self.payment.status in FINISHED and not self.payment.refunds):
            return True
        # A refund is recorded an instant before the provider makes it, and settled an instant after.
        return _at(self.payment.updated_at) <= now - timedelta(seconds=settle_s)

    def merged_with(self, older: Case | None) -> Case:
        if older is None:
            return self
        return Case(self.payment_id, self.payment or older.payment, self.receipt or older.receipt)


@dataclass
class Report:
    at: str
    since: str | None
    payments: int = 0  # judged
    receipts: int = 0
    in_flight: int = 0  # changed within the settle time: judged later
    look_ups: int = 0
    differences: list[Difference] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        return {kind: sum(1 for d in self.differences if d.kind == kind) for kind in KINDS}

    def as_dict(self) -> dict:
        return {"at": self.at, "since": self.since, "payments": self.payments, "receipts": self.receipts,
                "in_flight": self.in_flight, "provider_look_ups": self.look_ups, "counts": self.counts,
                "differences": [asdict(d) for d in self.differences]}


def cases(payments: Iterable[Payment], receipts: Iterable[Receipt]) -> dict[str, Case]:
    found: dict[str, Case] = {}
    for payment in payments:
        found[payment.payment_id] = Case(payment.payment_id, payment)
    for receipt in receipts:
        known = found.get(receipt.payment_id, Case(receipt.payment_id))
        found[receipt.payment_id] = Case(receipt.payment_id, known.payment, receipt)
    return found


def judge(case: Case, records: Mapping[str, ProviderIntent]) -> list[Difference]:
    """The differences between one payment and the provider's records of its objects."""
    charges = [c for i in case.intent_ids if i in records for c in records[i].succeeded_charges]
    receipt = case.receipt
    if receipt is None and case.payment is not None and case.payment.status == Status.RECEIPTED:
        # Receipted in the events: the receipt went out with that very event.
        receipt = case.payment.receipt()
    found = []
    if len(charges) > 1:
        found.append(Difference("charged_twice", case.payment_id,
                                f"{len(charges)} charges: {', '.join(c.charge_id for c in charges)}"))
    if charges and receipt is None:
        status = case.payment.status.value if case.payment else "unknown"
        found.append(Difference("charged_not_receipted", case.payment_id,
                                f"charge {charges[0].charge_id} taken; the payment is {status}"))
    if receipt is not None and not charges:
        found.append(Difference("receipted_not_charged", case.payment_id,
                                f"receipt {receipt.receipt_id} issued; no charge on {', '.join(case.intent_ids)}"))
    expected = _expected_money(case, receipt)
    for charge in charges:
        if expected is not None and (charge.amount_minor, charge.currency) != expected:
            found.append(Difference("amount_mismatch", case.payment_id,
                                    f"charge {charge.charge_id} is {charge.amount_minor} {charge.currency}; "
                                    f"paystream has {expected[0]} {expected[1]}"))
    return found


@dataclass(frozen=True)
class RefundRecords:
    """The provider's records of one payment's refunds: the payment (its refunded total) and each refund."""

    payment: ProviderPayment | None
    refunds: Mapping[str, ProviderRefund]


def judge_refunds(payment: Payment, records: RefundRecords) -> list[Difference]:
    """The differences between a payment's refunds and the provider's records of them."""
    found = []
    for refund in payment.refunds:
        held = records.refunds.get(refund.refund_id)
        if refund.status == "pending":
            found.append(Difference("refund_pending", payment.payment_id,
                                    f"refund {refund.refund_id} still pending since {refund.created_at}"))
            continue
        if held is None or held.status is RefundStatus.UNKNOWN and held.found:
            continue  # the provider could not say: judged on a later run
        made = held.found and held.status is RefundStatus.SUCCEEDED
        if made != (refund.status == "succeeded") or (made and held.amount is not None
                                                      and held.amount != refund.amount):
            at_provider = f"{held.status.value} {held.amount.minor if held.amount else ''}" if held.found else "none"
            found.append(Difference("refund_mismatch", payment.payment_id,
                                    f"refund {refund.refund_id} is {refund.status} {refund.amount.minor} in "
                                    f"paystream; at the provider: {at_provider}"))
    given = records.payment.amount_refunded if records.payment is not None else None
    if records.payment is not None and records.payment.found and payment.amount is not None:
        provider_minor = given.minor if given is not None else 0
        if provider_minor != refunded(payment.refunds):
            found.append(Difference("refunded_amount_mismatch", payment.payment_id,
                                    f"the provider refunded {provider_minor}; paystream's succeeded refunds "
                                    f"add up to {refunded(payment.refunds)} {payment.amount.currency}"))
    return found


async def refund_records(provider: PaymentProvider, payment: Payment) -> RefundRecords:
    """Each refund synced by id, and the payment's refunded total; what the provider cannot say is left out."""
    try:
        synced = await provider.sync_payment(payment.transaction_id)
    except ProviderUnavailable:
        synced = None
    refunds = {}
    for refund in payment.refunds:
        if refund.status == "pending":
            continue
        try:
            refunds[refund.refund_id] = await provider.sync_refund(refund.refund_id, payment.transaction_id,
                                                                   refund.provider_refund_id)
        except ProviderUnavailable:
            continue
    return RefundRecords(synced, refunds)


def _expected_money(case: Case, receipt: Receipt | None) -> tuple[int, str] | None:
    if receipt is not None:
        return receipt.amount_minor, receipt.currency
    if case.payment is not None and case.payment.amount is not None:
        return case.payment.amount.minor, case.payment.amount.currency
    return None


async def reconcile_cases(found: Mapping[str, Case], provider: PaymentProvider | Providers, now: datetime, settle_s: float,
                          since: datetime | None = None) -> Report:
    report = Report(at=_iso(now), since=_iso(since) if since else None)
    judged = [c for c in found.values() if c.settled(now, settle_s)]
    report.in_flight = len(found) - len(judged)
    report.payments = sum(1 for c in judged if c.payment is not None)
    report.receipts = sum(1 for c in judged if c.receipt is not None)
    providers = Providers.of(provider)
    by_provider: dict[str, list[str]] = {}
    for case in judged:  # each payment's objects are looked up at its own provider
        by_provider.setdefault(case.payment.provider if case.payment else "stripe", []).extend(case.intent_ids)
    records = {}
    for name, ids in by_provider.items():
        ids = list(dict.fromkeys(ids))
        records.update({r.intent_id: r for r in await _look_up(providers.named(name), ids)})
        report.look_ups += len(ids)
    for case in sorted(judged, key=lambda c: c.payment_id):
        report.differences += judge(case, records)
        if case.payment is not None and case.payment.refunds and case.payment.transaction_id:
            provider_side = await refund_records(providers.of_payment(case.payment), case.payment)
            report.look_ups += 1 + len(provider_side.refunds)
            report.differences += judge_refunds(case.payment, provider_side)
    return report


async def reconcile(history: PaymentHistory, provider: PaymentProvider, now: datetime, settle_s: float,
                    since: datetime | None = None) -> Report:
    """One run over everything that changed since `since` (all of history with None)."""
    found = cases(await history.payments_since(since), await history.receipts_since(since))
    return await reconcile_cases(found, provider, now, settle_s, since)


class Reconciler:
    """Runs again and again over what changed since the run before, keeping open differences open.

    Each run reads from the previous run's time less the settle time, so a
    payment still in flight at one run is read again at the next; a payment
    found different is judged again at every run until it is not."""

    def __init__(self, history: PaymentHistory, provider: PaymentProvider, settle_s: float,
                 lookback_s: float) -> None:
        self.history = history
        self.provider = provider
        self.settle_s = settle_s
        self.lookback_s = lookback_s
        self.last_run: datetime | None = None
        self.open: dict[str, Case] = {}

    async def run(self, now: datetime, settle_s: float | None = None) -> Report:
        """One run; `settle_s` judges this run's payments sooner than the setting (what it reads is the same)."""
        start = self.last_run or now - timedelta(seconds=self.lookback_s)
        since = start - timedelta(seconds=self.settle_s)
        settle_s = self.settle_s if settle_s is None else settle_s
        fresh = cases(await self.history.payments_since(since), await self.history.receipts_since(since))
        found = {**self.open, **{pid: case.merged_with(self.open.get(pid)) for pid, case in fresh.items()}}
        report = await reconcile_cases(found, self.provider, now, settle_s, since)
        self.open = {d.payment_id: found[d.payment_id] for d in report.differences}
        self.last_run = now
        return report


async def _look_up(provider: PaymentProvider, ids: Sequence[str]) -> list[ProviderIntent]:
    records = []
    for first in range(0, len(ids), LOOK_UP_BATCH):
        records += await provider.look_up(ids[first:first + LOOK_UP_BATCH])
    return records


def _at(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")

