"""The windowed queries' pure logic: known events give exact windows, whichever worker holds which partition."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from faust.windows import HoppingWindow, TumblingWindow

from paystream.domain.commands import PostPayment, StartPayment
from paystream.domain.errors import InvalidRequest
from paystream.domain.model import Payment
from paystream.domain.money import Money
from tables.analytics.counts import Group, add, contribution, counted, epoch_s
from tables.analytics.views import (
    HOUR,
    MINUTE,
    ROLLING,
    Partials,
    WindowQuery,
    check_complete,
    read_partials,
    rows,
    to_csv,
    user_rows,
)

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC).timestamp()
# Faust's own windows, as the worker's tables use them.
WINDOWS = {MINUTE: TumblingWindow(60), HOUR: TumblingWindow(3600), ROLLING: HoppingWindow(600, 300)}


def at(seconds: float) -> str:
    return datetime.fromtimestamp(T0 + seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class WindowedTables:
    """Stands in for the worker's windowed tables: tallies by (dimension key, Faust window range)."""

    def __init__(self) -> None:
        self.data = {name: {} for name in WINDOWS}

    def count(self, payment: Payment, partition: int, offset: int) -> None:
        if not counted(payment):
            return
        group, tallies = contribution(payment, partition)
        for name, window in WINDOWS.items():
            for window_range in window.ranges(epoch_s(payment.updated_at)):
                key = (group.key, window_range)
                self.data[name][key] = add(self.data[name].get(key), (tallies, offset))

    def partials(self, query: WindowQuery, partitions: set[int]) -> Partials:
        records = [(Group.parse(key), int(window_range[0]), record)
                   for (key, window_range), record in self.data[query.table].items()
                   if Group.parse(key).partition in partitions]
        return read_partials(query, partitions, records)


def journey(pid: str, amount: str, currency: str, start: float, *, steps: int, decline: str | None = None,
            payment_type: str = "credit") -> list[Payment]:
    """The states a payment goes through, one second apart from `start` (seconds after T0)."""
    command = StartPayment(command_id="c", payment_id=pid, account="acct_test", user_id="u", email="a@example.com",
                           requested_at=at(start), payment_type=payment_type, amount=Money.parse(amount, currency))
    p = Payment.start(command, at(start))
    states = [p, p := p.tokenized("pi_" + pid, at(start + 1))]
    post = PostPayment(command_id="c2", payment_id=pid, account="acct_test", user_id="u", email="a@example.com", requested_at=at(start),
                       payment_type=payment_type, transaction_id="pi_" + pid, amount=Money.parse(amount, currency),
                       payment_method="pm")
    states.append(p := p.posting(post, at(start + 2)))
    if decline:
        states.append(p.declined(decline, at(start + 3)))
    else:
        states += [p := p.succeeded("ch", at(start + 3)), p.receipted(at(start + 4))]
    return states[:steps]


PAYMENTS = {  # payment id -> (partition, its states)
    "a": (0, journey("a", "12.34", "EUR", 5, steps=5)),  # receipted at 10:00:09, latency 4 s
    "b": (1, journey("b", "0.66", "EUR", 50, steps=5)),  # started 10:00:50, receipted 10:00:54
    "c": (2, journey("c", "500", "JPY", 58, steps=5)),  # started 10:00:58, receipted 10:01:02
    "d": (3, journey("d", "7.00", "EUR", 70, steps=4, decline="insufficient_funds")),  # declined at 10:01:13
    "e": (1, journey("e", "1.00", "EUR", 125, steps=1, payment_type="debit")),  # started at 10:02:05 only
}


@pytest.fixture
def tables() -> WindowedTables:
    tables = WindowedTables()
    offsets = dict.fromkeys(range(6), 0)
    for partition, states in PAYMENTS.values():
        for state in states:
            tables.count(state, partition, offsets[partition])
            offsets[partition] += 1
    return tables


def query(**params) -> WindowQuery:
    return WindowQuery.parse({"from": at(0), "to": at(180), **params}, now=T0 + 3600)


def answer(tables: WindowedTables, q: WindowQuery, *workers: set[int]) -> list[dict]:
    total = Partials()
    for partitions in workers:
        total.merge(tables.partials(q, partitions))
    assert check_complete(total, 6) == []
    return rows(q, total)


ONE = ({0, 1, 2, 3, 4, 5},)
TWO = ({0, 2, 4}, {1, 3, 5})


@pytest.mark.parametrize("workers", [ONE, TWO], ids=["one worker", "two workers"])
def test_status_per_minute_is_exact_to_the_unit(tables, workers):
    got = answer(tables, query(status="started,receipted,declined", by="currency"), *workers)
    assert [(r["bucket_start"][11:16], r["status"], r["currency"], r["count"], r["volume"], r["volume_minor"])
            for r in got] == [
        ("10:00", "started", "EUR", 2, "13.00", 1300), ("10:00", "started", "JPY", 1, "500", 500),
        ("10:00", "receipted", "EUR", 2, "13.00", 1300),
        ("10:01", "started", "EUR", 1, "7.00", 700), ("10:01", "receipted", "JPY", 1, "500", 500),
        ("10:01", "declined", "EUR", 1, "7.00", 700),
        ("10:02", "started", "EUR", 1, "1.00", 100),
    ]


def test_one_worker_and_two_answer_identically_for_every_view(tables):
    for params in ({"view": "status"}, {"view": "conversion", "by": "currency,payment_type"},
                   {"view": "declines"}, {"view": "status", "rolling": "true"}, {"view": "status", "bucket": "1h"},
                   {"view": "conversion", "bucket": "2m", "currency": "EUR"}):
        q = query(**params)
        assert answer(tables, q, *ONE) == answer(tables, q, *TWO), params


def test_conversion_and_latency_per_bucket(tables):
    got = answer(tables, query(view="conversion", bucket="3m"), *TWO)
    assert got == [{
        "bucket_start": "2026-11-25T10:00:00Z", "bucket_end": "2026-11-25T10:03:00Z", "currency": None,
        "payment_type": None, "started": 5, "receipted": 3, "declined": 1, "failed": 0, "conversion": "0.6000",
        "latency_count": 3, "latency_mean_ms": 4000, "latency_p50_ms": 5000, "latency_p90_ms": 5000,
        "latency_p99_ms": 5000,
    }]


def test_a_minute_without_a_start_has_no_conversion(tables):
    got = answer(tables, query(view="conversion", **{"from": at(180), "to": at(240)}), *ONE)
    assert [(r["started"], r["conversion"], r["latency_mean_ms"]) for r in got] == [(0, None, None)]


def test_declines_by_code(tables):
    got = answer(tables, query(view="declines"), *TWO)
    assert [(r["bucket_start"][11:16], r["decline_code"], r["currency"], r["count"], r["volume"]) for r in got] \
        == [("10:01", "insufficient_funds", "EUR", 1, "7.00")]


def test_filters_by_currency_and_payment_type(tables):
    jpy = answer(tables, query(currency="JPY", by=""), *ONE)
    assert {(r["status"], r["count"]) for r in jpy} == {("started", 1), ("receipted", 1)}
    assert all(r["volume"] is None for r in jpy)  # currencies added up: no volume to state
    debit = answer(tables, query(payment_type="debit", by="payment_type"), *ONE)
    assert [(r["status"], r["payment_type"], r["count"]) for r in debit] == [("started", "debit", 1)]


def test_rolling_windows_are_ten_minutes_wide_every_five(tables):
    late = journey("f", "2.50", "EUR", 7 * 60, steps=1)[0]  # started at 10:07
    tables.count(late, 4, 99)
    got = answer(tables, query(rolling="true", status="started", by="", **{"from": at(-300), "to": at(600)}), *TWO)
    assert [(r["bucket_start"][11:16], r["bucket_end"][11:16], r["count"]) for r in got] == [
        ("09:55", "10:05", 5), ("10:00", "10:10", 6), ("10:05", "10:15", 1)]


def test_a_late_event_lands_in_its_own_window(tables):
    late = journey("f", "2.50", "EUR", 30, steps=1)[0]  # happened at 10:00:30, arrives after everything else
    tables.count(late, 4, 99)
    got = answer(tables, query(status="started", currency="EUR"), *TWO)
    assert [(r["bucket_start"][11:16], r["count"], r["volume"]) for r in got] == [
        ("10:00", 3, "15.50"), ("10:01", 1, "7.00"), ("10:02", 1, "1.00")]


def test_an_event_handed_over_again_is_not_counted_twice(tables):
    before = answer(tables, query(), *ONE)
    partition, states = PAYMENTS["a"]
    tables.count(states[-1], partition, 4)  # the receipt of "a", at the offset it was first read from
    assert answer(tables, query(), *ONE) == before


def test_a_partition_answered_twice_or_not_at_all_is_caught(tables):
    q = query()
    total = tables.partials(q, {0, 1, 2})
    with pytest.raises(ValueError, match="answered twice"):
        total.merge(tables.partials(q, {2, 3}))
    assert check_complete(total, 6) == [3, 4, 5]


def test_partials_travel_as_json_and_back(tables):
    q = query(view="conversion")
    partials = tables.partials(q, {0, 1})
    assert rows(q, Partials.from_dict(partials.as_dict())) == rows(q, partials)


def test_query_defaults_and_alignment():
    q = WindowQuery.parse({}, now=T0 + 90)
    assert (q.view, q.table, q.bucket_s, q.start, q.end, q.by) == ("status", MINUTE, 60, T0 - 3540, T0 + 120,
                                                                   ("currency",))
    hourly = WindowQuery.parse({"bucket": "6h", "since": "1d"}, now=T0)
    assert (hourly.table, hourly.bucket_s) == (HOUR, 6 * 3600)
    assert WindowQuery.parse(hourly.params(), now=0) == hourly  # what another worker is asked


@pytest.mark.parametrize(("params", "field", "code"), [
    ({"bucket": "7s"}, "bucket", "invalid_duration"),
    ({"bucket": "1m", "rolling": "true"}, "bucket", "invalid_bucket"),
    ({"from": "2026-11-25T10:00:00Z", "since": "1h"}, "since", "invalid_range"),
    ({"from": "2026-11-25T10:00:00Z", "to": "2026-11-25T09:00:00Z"}, "to", "invalid_range"),
    ({"from": "yesterday"}, "from", "invalid_time"),
    ({"from": "2026-11-25T10:00:00"}, "from", "invalid_time"),
    ({"view": "conversion", "status": "declined"}, "status", "invalid_status"),
    ({"status": "lost"}, "status", "invalid_status"),
    ({"status": "tokenized"}, "status", "invalid_status"),  # a step, not counted
    ({"currency": "EURO"}, "currency", "invalid_currency"),
    ({"payment_type": "cash"}, "payment_type", "invalid_payment_type"),
    ({"by": "user"}, "by", "invalid_by"),
    ({"view": "pie"}, "view", "invalid_view"),
    ({"since": "30d"}, "bucket", "range_too_long"),
])
def test_bad_queries_name_their_parameter(params, field, code):
    with pytest.raises(InvalidRequest) as caught:
        WindowQuery.parse(params, now=T0)
    assert (caught.value.field, caught.value.code) == (field, code)


def test_csv_has_a_header_and_empty_fields_for_absent_values():
    assert to_csv(["a", "b"], [{"a": 1, "b": None}, {"a": "x,y", "b": "0.50"}]) == 'a,b\n1,\n"x,y",0.50\n'


def test_user_rows_per_currency():
    record = {"currencies": {"EUR": {"started": 2, "receipted": 1, "declined": 1, "failed": 0, "volume_minor": 1050},
                             "": {"started": 1, "receipted": 0, "declined": 0, "failed": 0, "volume_minor": 0}},
              "sources": {"0": 3}}
    assert user_rows("acct_1:u1", record) == [
        {"account": "acct_1", "user_id": "u1", "currency": None, "started": 1, "receipted": 0, "declined": 0, "failed": 0,
         "volume": None, "volume_minor": None},
        {"account": "acct_1", "user_id": "u1", "currency": "EUR", "started": 2, "receipted": 1, "declined": 1, "failed": 0,
         "volume": "10.50", "volume_minor": 1050},
    ]
    assert user_rows("acct_1:nobody", None) == []


def test_refunds_count_as_refunded_and_give_the_net_volume(tables):
    """A refund of payment a (12.34 EUR, receipted at 10:00:09) succeeding at 10:00:30: one refunded row and a
    net row (receipted less refunded); the receipted count is not touched by the refund's new version."""
    from paystream.domain.commands import RefundPayment
    from paystream.domain.provider import RefundStatus

    receipted = PAYMENTS["a"][1][-1]
    ask = RefundPayment(command_id="c3", payment_id="a", refund_id="rf_a", account="acct_test", user_id="u",
                        requested_at=at(29), amount="2.34")
    pending = receipted.refunding(ask, at(29))
    done = pending.refund_settled("rf_a", RefundStatus.SUCCEEDED, at(30))
    tables.count(pending, 0, 5)
    tables.count(done, 0, 6)
    got = answer(tables, query(status="receipted,refunded", by="currency"), *ONE)
    assert [(r["bucket_start"][11:16], r["status"], r["currency"], r["count"], r["volume_minor"])
            for r in got if r["bucket_start"][11:16] == "10:00"] == [
        ("10:00", "receipted", "EUR", 2, 1300), ("10:00", "refunded", "EUR", 1, 234),
        ("10:00", "net", "EUR", 2, 1066)]
