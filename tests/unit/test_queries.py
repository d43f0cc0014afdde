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
                                      "stuck": 1, "stuck_sample": ["e"]}
