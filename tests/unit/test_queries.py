"""The analysts' read-side queries, over plain payment records."""

from datetime import UTC, datetime

from tables.queries import receipted_totals, status_counts, stuck, summary


def record(pid: str, status: str, minor: int = 1000, currency: str = "EUR", at: str = "2026-11-25T10:00:00.000Z"):
    return {"payment_id": pid, "status": status, "updated_at": at,
            "amount": {"amount": "x", "amount_minor": minor, "currency": currency}}


PAYMENTS = [
    record("a", "receipted", 1050), record("b", "receipted", 1), record("c", "receipted", 500, "JPY"),
    record("d", "declined"), record("e", "tokenized", at="2026-11-25T09:00:00.000Z"),
    record("f", "posting", at="2026-11-25T11:59:30.000Z"),
]
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def test_status_counts():
    assert status_counts(PAYMENTS) == {"receipted": 3, "declined": 1, "tokenized": 1, "posting": 1}


def test_receipted_totals_are_exact_per_currency():
    assert receipted_totals(PAYMENTS) == {"EUR": "10.51", "JPY": "500"}


def test_stuck_lists_only_old_in_flight_payments():
    assert stuck(PAYMENTS, NOW, older_than_s=3600) == ["e"]
    assert stuck(PAYMENTS, NOW, older_than_s=10) == ["e", "f"]


def test_summary():
    assert summary(PAYMENTS, NOW) == {"payments": 6, "by_status": status_counts(PAYMENTS),
                                      "receipted_totals": {"EUR": "10.51", "JPY": "500"},
                                      "refunds_by_status": {}, "refunded_totals": {},
                                      "net_totals": {"EUR": "10.51", "JPY": "500"},
                                      "stuck": 1, "stuck_sample": ["e"]}


def test_summary_shows_refunds_and_the_net():
    from paystream.domain.provider import RefundStatus
    from tests.unit.fakes import RECEIPTED, refund_cmd

    refunded = (RECEIPTED.refunding(refund_cmd("rf_1", "2.34"), "2026-11-25T10:00:00.000Z")
                .refund_settled("rf_1", RefundStatus.SUCCEEDED, "2026-11-25T10:00:01.000Z")
                .refunding(refund_cmd("rf_2", "1.00"), "2026-11-25T10:00:02.000Z"))
    got = summary([*PAYMENTS, refunded.as_dict()], NOW)
    assert got["receipted_totals"] == {"EUR": "22.85", "JPY": "500"}
    assert (got["refunds_by_status"], got["refunded_totals"]) == ({"pending": 1, "succeeded": 1}, {"EUR": "2.34"})
    assert got["net_totals"] == {"EUR": "20.51", "JPY": "500"}
