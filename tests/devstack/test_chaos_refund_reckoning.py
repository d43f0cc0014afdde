"""The chaos run's reckoning of refunds (devstack/chaos/run.py `reckon_refunds`) against the providers' own
records: each bad figure counts what it names, so a double, an over-, a lost, a pending, a misreported or
an untold refund cannot pass for a clean run."""

from __future__ import annotations

from collections import Counter

from devstack.chaos.client import RefundOutcome
from devstack.chaos.ledgers import Ledger, ProviderRefund
from devstack.chaos.run import Report, reckon_refunds


def reckon(refunds: list[RefundOutcome], statuses: dict, ledgers: dict) -> tuple[Report, Counter]:
    report, figures = Report(), Counter()

    def bad(figure: str, refund: RefundOutcome, why: str = "") -> None:
        figures[figure] += 1

    reckon_refunds(report, bad, refunds, statuses, ledgers)
    return report, figures


def told(refund_id: str, payment_id: str = "pay_1", minor: int = 300, status: str = "succeeded") -> RefundOutcome:
    return RefundOutcome(payment_id, "u", "3.00", refund_id=refund_id, amount_minor=minor, status=status)


def test_a_clean_run_of_a_part_the_rest_and_a_refused_one_counts_nothing_bad():
    refunds = [told("rf_1"), told("rf_2", minor=700),
               RefundOutcome("pay_1", "u", None, status="refused")]
    ledger = Ledger(1, 1000, [ProviderRefund("rf_1", 300, "succeeded"), ProviderRefund("rf_2", 700, "succeeded")])
    report, figures = reckon(refunds, {"rf_1": "succeeded", "rf_2": "succeeded"}, {"pay_1": ledger})
    assert figures == Counter()
    assert (report.refunds, report.refunds_succeeded, report.refunds_refused, report.payments_refunded_at_once) == (
        3, 2, 1, 1)


def test_each_bad_refund_is_counted_under_its_figure():
    refunds = [told("rf_double"), told("rf_lost"), told("rf_missing"), told("rf_pending"), told("rf_failed", status="failed"),
               RefundOutcome("pay_1", "u", None), RefundOutcome("pay_1", "u", None, status="rejected")]
    ledger = Ledger(1, 1000, [ProviderRefund("rf_double", 300, "succeeded"), ProviderRefund("rf_double", 300,
                                                                                            "succeeded"),
                              ProviderRefund("rf_lost", 200, "succeeded"),  # another amount than told
                              ProviderRefund("rf_failed", 300, "succeeded"), ProviderRefund(None, 100, "pending")])
    statuses = {"rf_double": "succeeded", "rf_lost": "succeeded", "rf_missing": "succeeded", "rf_pending": "pending", "rf_failed": "failed"}
    _, figures = reckon(refunds, statuses, {"pay_1": ledger})
    assert figures == Counter({"double_refunds": 1, "lost_refunds": 2, "refunds_not_terminal": 1,
                               "refunds_misreported": 1, "refunds_untold": 1, "over_refunds": 1,
                               "refunds_unresolved": 1, "refunds_rejected": 1})


def test_a_refund_failed_at_the_provider_and_told_failed_is_not_lost():
    _, figures = reckon([told("rf_1", status="failed")], {"rf_1": "failed"},
                        {"pay_1": Ledger(1, 1000, [ProviderRefund("rf_1", 300, "failed")])})
    assert figures == Counter()
