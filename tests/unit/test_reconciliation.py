"""Reconciliation's judgement, and its incremental runs, against in-memory history and provider records."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from monitor.reconciliation.differences import Case, Reconciler, cases, judge, reconcile
from paystream.domain.model import ChargeIntent, Payment
from paystream.ports import ChargeResult, ProviderCharge, ProviderIntent
from tests.unit.fakes import post_cmd, start_cmd

NOW = datetime(2024, 5, 1, 13, 0, tzinfo=UTC)
T = "2024-05-01T12:00:0{}Z"


def tokenized(pid: str = "pay-1") -> Payment:
    return Payment.start(start_cmd(payment_id=pid), T.format(0)).tokenized(f"pi_{pid}", T.format(1))


def payment(pid: str = "pay-1", *, receipted: bool = True, intents=("pi_1",)) -> Payment:
    """Posted, with these intents recorded (one per attempt), and receipted unless told otherwise."""
    p = tokenized(pid).posting(post_cmd(payment_id=pid, transaction_id=f"pi_{pid}"), T.format(2))
    p = p.model_copy(update={"charge_intents": tuple(ChargeIntent(attempt=f"cmd-{n}", intent_id=i)
                                                     for n, i in enumerate(intents))})
    return p.succeeded("ch_1", T.format(4)).receipted(T.format(5)) if receipted else p


def charged(intent_id: str, *charges: tuple[str, int, str]) -> ProviderIntent:
    return ProviderIntent(intent_id, True, ChargeResult("succeeded", charge_id=charges[0][0]), charges[0][1],
                          charges[0][2], tuple(ProviderCharge(c, m, cur, True) for c, m, cur in charges))


def open_(intent_id: str) -> ProviderIntent:
    return ProviderIntent(intent_id, True, ChargeResult("not_charged"), 1000, "EUR")


def kinds(case: Case, records: dict) -> list[str]:
    return [d.kind for d in judge(case, records)]


def test_a_receipted_payment_with_its_one_charge_is_clean():
    p = payment()
    assert kinds(Case(p.payment_id, p, p.receipt()), {"pi_1": charged("pi_1", ("ch_1", 1000, "EUR"))}) == []


def test_a_charge_without_a_receipt():
    p = tokenized()
    assert kinds(Case(p.payment_id, p), {"pi_pay-1": charged("pi_pay-1", ("ch_x", 1000, "EUR"))}) == \
        ["charged_not_receipted"]


def test_a_receipt_without_a_charge():
    p = tokenized()
    receipt = payment().receipt()
    assert kinds(Case(p.payment_id, p, receipt), {"pi_pay-1": open_("pi_pay-1"), "pi_1": open_("pi_1")}) == \
        ["receipted_not_charged"]
    # A receipt of a payment paystream never recorded is judged from the receipt's own transaction.
    assert kinds(Case("pay-1", None, receipt), {}) == ["receipted_not_charged"]


def test_a_charge_of_another_amount_or_currency():
    p = payment()
    for charge in (("ch_1", 999, "EUR"), ("ch_1", 1000, "USD")):
        assert kinds(Case(p.payment_id, p, p.receipt()), {"pi_1": charged("pi_1", charge)}) == ["amount_mismatch"]


def test_two_charges_for_one_payment():
    p = payment(intents=("pi_1", "pi_2"))
    records = {"pi_1": charged("pi_1", ("ch_1", 1000, "EUR")), "pi_2": charged("pi_2", ("ch_2", 1000, "EUR"))}
    assert kinds(Case(p.payment_id, p, p.receipt()), records) == ["charged_twice"]


def test_a_receipted_payment_counts_as_receipted_without_its_receipt_message():
    p = payment()
    assert kinds(Case(p.payment_id, p), {"pi_1": charged("pi_1", ("ch_1", 1000, "EUR"))}) == []


def test_every_recorded_object_is_looked_up_and_only_those():
    p = payment(intents=("pi_1", "pi_2"))
    assert Case(p.payment_id, p, p.receipt()).intent_ids == ("pi_pay-1", "pi_1", "pi_2")


class History:
    def __init__(self, payments=(), receipts=()) -> None:
        self.payments, self.receipts = list(payments), list(receipts)
        self.asked: list = []

    async def payments_since(self, since):
        self.asked.append(since)
        return [p for p in self.payments if since is None or datetime.fromisoformat(p.updated_at) >= since]

    async def receipts_since(self, since):
        return [r for r in self.receipts if since is None or datetime.fromisoformat(r.issued_at) >= since]


class Provider:
    def __init__(self, records: dict) -> None:
        self.records = records
        self.looked_up: list[str] = []

    async def look_up(self, ids):
        self.looked_up += ids
        return [self.records.get(i, ProviderIntent(i, False, ChargeResult("not_charged"))) for i in ids]


def test_a_run_reports_each_class_and_counts_what_it_judged():
    clean, stray = payment("pay-1"), tokenized("pay-2")
    provider = Provider({"pi_1": charged("pi_1", ("ch_1", 1000, "EUR")),
                         "pi_pay-2": charged("pi_pay-2", ("ch_9", 1000, "EUR"))})
    report = asyncio.run(reconcile(History([clean, stray], [clean.receipt()]), provider, NOW, settle_s=60))
    assert (report.payments, report.receipts, report.in_flight) == (2, 1, 0)
    assert report.counts == {"charged_not_receipted": 1, "receipted_not_charged": 0, "amount_mismatch": 0,
                             "charged_twice": 0, "refund_mismatch": 0, "refund_pending": 0,
                             "refunded_amount_mismatch": 0}
    assert [(d.kind, d.payment_id) for d in report.differences] == [("charged_not_receipted", "pay-2")]
    assert sorted(provider.looked_up) == ["pi_1", "pi_pay-1", "pi_pay-2"]


def test_a_payment_in_flight_is_judged_later():
    posting = payment(receipted=False)  # charged an instant ago, its receipt not yet recorded
    provider = Provider({"pi_1": charged("pi_1", ("ch_1", 1000, "EUR"))})
    just_after = datetime.fromisoformat(posting.updated_at) + timedelta(seconds=5)
    report = asyncio.run(reconcile(History([posting]), provider, just_after, settle_s=60))
    assert (report.in_flight, report.differences) == (1, [])
    later = asyncio.run(reconcile(History([posting]), provider, just_after + timedelta(minutes=5), settle_s=60))
    assert [d.kind for d in later.differences] == ["charged_not_receipted"]


def test_runs_read_what_changed_since_and_keep_a_difference_open_until_it_is_resolved():
    stray = tokenized("pay-2")
    records = {"pi_pay-2": charged("pi_pay-2", ("ch_9", 1000, "EUR"))}
    history, provider = History([stray]), Provider(records)
    reconciler = Reconciler(history, provider, settle_s=60, lookback_s=7200)
    first = asyncio.run(reconciler.run(NOW))
    assert history.asked[-1] == NOW - timedelta(seconds=7200 + 60)
    assert first.counts["charged_not_receipted"] == 1

    history.payments = []  # nothing changed since: the open difference is judged again all the same
    second = asyncio.run(reconciler.run(NOW + timedelta(minutes=1)))
    assert history.asked[-1] == NOW - timedelta(seconds=60)
    assert second.counts["charged_not_receipted"] == 1

    records["pi_pay-2"] = open_("pi_pay-2")  # refunded, say: the provider no longer holds the charge
    third = asyncio.run(reconciler.run(NOW + timedelta(minutes=2)))
    assert third.differences == [] and reconciler.open == {}


def test_cases_pair_each_receipt_with_its_payment():
    p = payment()
    found = cases([p], [p.receipt()])
    assert list(found) == [p.payment_id] and found[p.payment_id].receipt == p.receipt()


def test_judging_sooner_reads_no_less():
    """A run asked to judge payments at once still reads back to the previous run less the settle time,
    so what was in flight then is not skipped."""
    history = History([])
    reconciler = Reconciler(history, Provider({}), settle_s=60, lookback_s=600)
    asyncio.run(reconciler.run(NOW))
    asyncio.run(reconciler.run(NOW + timedelta(seconds=30), settle_s=0))
    assert history.asked[-1] == NOW - timedelta(seconds=60)
