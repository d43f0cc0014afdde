"""What each payment event adds to the analysts' tables, and how a repeat is told apart."""

import pytest

from paystream.domain.commands import PostPayment, StartPayment
from paystream.domain.model import Payment
from paystream.domain.money import Money
from tables.aggregates import (
    DECLINE,
    LATENCY,
    STATUS,
    Delta,
    Dimension,
    add,
    add_to_user,
    deltas,
    latency_bucket,
    millis_between,
)


def payment(amount: str | None = "12.34", currency: str = "EUR", user: str = "u1", pid: str = "pay_1") -> Payment:
    start = StartPayment(command_id="c1", payment_id=pid, user_id=user, email="a@example.com", requested_at="2026-11-25T10:00:00Z",
                         payment_type="credit", amount=Money.parse(amount, currency) if amount else None)
    return Payment.start(start, "2026-11-25T10:00:00.000Z")


def posted(p: Payment, at: str, amount: str = "12.34", currency: str = "EUR") -> Payment:
    post = PostPayment(command_id="c2", payment_id=p.payment_id, user_id=p.user_id, email="a@example.com", requested_at=at,
                       payment_type="credit", transaction_id="pi_1", amount=Money.parse(amount, currency),
                       payment_method="pm_1")
    return p.tokenized("pi_1", "secret", at).posting(post, at)


def test_a_started_payment_counts_once_with_its_amount():
    assert deltas(payment(), 3) == [Delta(Dimension(3, STATUS, "started", "EUR", "credit"), 1, 1234)]


def test_a_payment_started_without_amount_has_no_currency():
    assert deltas(payment(amount=None), 0) == [Delta(Dimension(0, STATUS, "started", "", "credit"), 1, 0)]


def test_a_decline_counts_its_status_and_its_code():
    declined = posted(payment(), "2026-11-25T10:00:01.000Z").declined("insufficient_funds", "2026-11-25T10:00:02Z")
    assert deltas(declined, 1) == [Delta(Dimension(1, STATUS, "declined", "EUR", "credit"), 1, 1234),
                                   Delta(Dimension(1, DECLINE, "insufficient_funds", "EUR", "credit"), 1, 1234)]


def test_a_receipt_counts_its_latency_from_start_in_whole_milliseconds():
    done = posted(payment("500", "JPY"), "2026-11-25T10:00:01.000Z", "500", "JPY") \
        .succeeded("ch_1", "2026-11-25T10:00:01.500Z").receipted("2026-11-25T10:00:01.750Z")
    assert deltas(done, 2) == [Delta(Dimension(2, STATUS, "receipted", "JPY", "credit"), 1, 500),
                               Delta(Dimension(2, LATENCY, "2000", "JPY", "credit"), 1, 1750)]


@pytest.mark.parametrize(("ms", "bucket"), [(0, "250"), (250, "250"), (251, "500"), (3_600_000, "3600000"),
                                            (3_600_001, "+Inf")])
def test_latency_buckets_are_inclusive_upper_bounds(ms, bucket):
    assert latency_bucket(ms) == bucket


def test_millis_between_crosses_days():
    assert millis_between("2026-11-25T23:59:59.999Z", "2026-11-26T00:00:00.001Z") == 2


def test_dimension_keys_round_trip_even_with_a_bar_in_the_code():
    dimension = Dimension(5, DECLINE, "odd|code", "EUR", "debit")
    assert Dimension.parse(dimension.key) == dimension


def test_add_sums_and_ignores_an_offset_already_counted():
    tally = add({}, (1, 100, 7))
    tally = add(tally, (1, 50, 9))
    assert tally == {"count": 2, "total": 150, "offset": 9}
    assert add(tally, (1, 50, 9)) == tally  # the same event handed over again
    assert add(tally, (1, 50, 8)) == tally  # an earlier one


def test_per_user_totals_count_per_currency_and_skip_repeats():
    p = payment()
    record = add_to_user(None, p, "0", 10)
    done = posted(p, "2026-11-25T10:00:01Z").succeeded("ch", "2026-11-25T10:00:02Z").receipted("2026-11-25T10:00:03Z")
    record = add_to_user(record, done, "0", 14)
    assert add_to_user(record, done, "0", 14) == record
    other = add_to_user(record, payment("500", "JPY", pid="pay_2"), "4", 3)
    assert other["currencies"] == {
        "EUR": {"started": 1, "receipted": 1, "declined": 0, "failed": 0, "volume_minor": 1234},
        "JPY": {"started": 1, "receipted": 0, "declined": 0, "failed": 0, "volume_minor": 0},
    }
    assert other["sources"] == {"0": 14, "4": 3}


def test_per_user_totals_ignore_intermediate_states():
    tokenized = payment().tokenized("pi", "s", "2026-11-25T10:00:01Z")
    assert add_to_user(None, tokenized, "0", 1) == {"currencies": {}, "sources": {}}
