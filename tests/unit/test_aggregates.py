"""What each payment event adds to the analysts' tables, and how a repeat is told apart."""

import pytest

from paystream.domain.commands import PostPayment, StartPayment
from paystream.domain.model import Payment
from paystream.domain.money import Money
from tables.analytics.counts import (
    Group,
    add,
    add_to_user,
    contribution,
    counted,
    latency_bucket,
    millis_between,
    split_tally_key,
    split_user_key,
    user_key,
)


def payment(amount: str | None = "12.34", currency: str = "EUR", user: str = "u1", pid: str = "pay_1") -> Payment:
    start = StartPayment(command_id="c1", payment_id=pid, account="acct_test", user_id=user, email="a@example.com", requested_at="2026-11-25T10:00:00Z",
                         payment_type="credit", amount=Money.parse(amount, currency) if amount else None)
    return Payment.start(start, "2026-11-25T10:00:00.000Z")


def posted(p: Payment, at: str, amount: str = "12.34", currency: str = "EUR") -> Payment:
    post = PostPayment(command_id="c2", payment_id=p.payment_id, account="acct_test", user_id=p.user_id, email="a@example.com", requested_at=at,
                       payment_type="credit", transaction_id="pi_1", amount=Money.parse(amount, currency),
                       payment_method="pm_1")
    return p.tokenized("pi_1", at).posting(post, at)


def test_a_started_payment_counts_once_with_its_amount():
    assert contribution(payment(), 3) == (Group(3, "EUR", "credit"), {"status|started": [1, 1234]})


def test_a_payment_started_without_amount_has_no_currency():
    assert contribution(payment(amount=None), 0) == (Group(0, "", "credit"), {"status|started": [1, 0]})


def test_only_the_states_that_open_and_close_a_payment_are_counted():
    steps = posted(payment(), "2026-11-25T10:00:01.000Z")
    assert counted(payment()) and not counted(steps) and not counted(steps.succeeded("ch", "2026-11-25T10:00:02Z"))


def test_a_start_tried_again_after_a_failure_is_not_a_second_payment_started():
    failed = payment().failed("provider unavailable: timed out", "2026-11-25T10:00:01.000Z")
    again = failed.started_again("2026-11-25T10:00:05.000Z")
    assert counted(failed) and not counted(again)
    done = posted(again, "2026-11-25T10:00:06.000Z").succeeded("ch", "2026-11-25T10:00:07.000Z")
    assert counted(done.receipted("2026-11-25T10:00:08.000Z"))


def test_a_decline_counts_its_status_and_its_code():
    declined = posted(payment(), "2026-11-25T10:00:01.000Z").declined("insufficient_funds", "2026-11-25T10:00:02Z")
    assert contribution(declined, 1) == (Group(1, "EUR", "credit"), {"status|declined": [1, 1234],
                                                                      "decline|insufficient_funds": [1, 1234]})


def test_a_receipt_counts_its_latency_from_start_in_whole_milliseconds():
    done = posted(payment("500", "JPY"), "2026-11-25T10:00:01.000Z", "500", "JPY") \
        .succeeded("ch_1", "2026-11-25T10:00:01.500Z").receipted("2026-11-25T10:00:01.750Z")
    assert contribution(done, 2) == (Group(2, "JPY", "credit"), {"status|receipted": [1, 500],
                                                                  "latency|2000": [1, 1750]})


@pytest.mark.parametrize(("ms", "bucket"), [(0, "250"), (250, "250"), (251, "500"), (3_600_000, "3600000"),
                                            (3_600_001, "+Inf")])
def test_latency_buckets_are_inclusive_upper_bounds(ms, bucket):
    assert latency_bucket(ms) == bucket


def test_millis_between_crosses_days():
    assert millis_between("2026-11-25T23:59:59.999Z", "2026-11-26T00:00:00.001Z") == 2


def test_keys_round_trip_even_with_a_bar_in_a_decline_code():
    assert Group.parse(Group(5, "EUR", "debit").key) == Group(5, "EUR", "debit")
    assert split_tally_key("decline|odd|code") == ("decline", "odd|code")


def test_add_sums_per_tally_and_ignores_an_offset_already_counted():
    record = add({}, ({"status|started": [1, 100]}, 7))
    record = add(record, ({"status|started": [1, 50], "latency|250": [1, 200]}, 9))
    assert record == {"tallies": {"status|started": [2, 150], "latency|250": [1, 200]}, "offset": 9}
    assert add(record, ({"status|started": [1, 50]}, 9)) == record  # the same event handed over again
    assert add(record, ({"status|started": [1, 50]}, 8)) == record  # an earlier one


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
    tokenized = payment().tokenized("pi", "2026-11-25T10:00:01Z")
    assert add_to_user(None, tokenized, "0", 1) == {"currencies": {}, "sources": {}}


def test_users_of_two_accounts_are_kept_apart():
    """Two accounts may both have a user "u1": their totals never share a key."""
    mine, theirs = user_key("acct_a", "u1"), user_key("acct_b", "u1")
    assert mine != theirs
    assert split_user_key(mine) == ("acct_a", "u1")
    first = add_to_user(None, payment(user="u1"), "0", 1)
    assert add_to_user(first, payment(user="u1", pid="pay_2"), "0", 2)["currencies"]["EUR"]["started"] == 2
