"""What each payment event adds to the analysts' tables: pure functions, no Faust and no I/O.

An event (one state a payment entered) adds to a few *dimensions*, each a
counter of events and a total:

    status   <status>       <currency> <payment type>   total: amount in minor units
    decline  <decline code> <currency> <payment type>   total: amount in minor units
    latency  <bucket, ms>   <currency> <payment type>   total: milliseconds from start to receipt

A dimension is kept per partition of the events topic (the partition is the
first part of its key), so every partition's figures are its own and a total
is the sum over partitions, whichever worker holds them.

Every tally remembers the offset of the last event it counted: Kafka hands
events over again after a crash or a rebalance, and an event at an offset the
tally already holds changes nothing. That mark is in the same record as the
counts, so the two are written (and recovered) together.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from paystream.domain.model import Payment, Status

STATUS, DECLINE, LATENCY = "status", "decline", "latency"
MEASURES = (STATUS, DECLINE, LATENCY)
#: Upper bounds (ms, inclusive) of the start-to-receipt latency buckets; above the last: "+Inf".
LATENCY_BUCKETS_MS = (250, 500, 1_000, 2_000, 5_000, 10_000, 30_000, 60_000, 300_000, 900_000, 3_600_000)
INF = "+Inf"
#: The currency of a payment started without an amount.
NO_CURRENCY = ""
#: The states per-user totals count (the others are steps on the way).
USER_STATES = (Status.STARTED.value, Status.RECEIPTED.value, Status.DECLINED.value, Status.FAILED.value)


def epoch_s(at: str) -> float:
    """'2026-11-25T10:00:00.123Z' -> seconds since the epoch."""
    return datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp()


def millis_between(start: str, end: str) -> int:
    """Whole milliseconds from one timestamp to another (paystream writes millisecond timestamps)."""
    delta = datetime.fromisoformat(end.replace("Z", "+00:00")) - datetime.fromisoformat(start.replace("Z", "+00:00"))
    return (delta.days * 86_400_000) + (delta.seconds * 1000) + delta.microseconds // 1000


def latency_bucket(ms: int) -> str:
    return next((str(bound) for bound in LATENCY_BUCKETS_MS if ms <= bound), INF)


@dataclass(frozen=True)
class Dimension:
    partition: int
    measure: str
    label: str
    currency: str
    payment_type: str

    @property
    def key(self) -> str:
        """The table key: 'partition|measure|label|currency|payment_type'."""
        return f"{self.partition}|{self.measure}|{self.label}|{self.currency}|{self.payment_type}"

    @classmethod
    def parse(cls, key: str) -> Dimension:
        # The label (a provider's decline code) is the one part that could hold a '|'.
        partition, measure, rest = key.split("|", 2)
        label, currency, payment_type = rest.rsplit("|", 2)
        return cls(int(partition), measure, label, currency, payment_type)


@dataclass(frozen=True)
class Delta:
    """What one event adds to one dimension."""

    dimension: Dimension
    count: int
    total: int


def deltas(payment: Payment, partition: int) -> list[Delta]:
    """What the event of `payment` entering its current state adds, on events partition `partition`."""
    currency = payment.amount.currency if payment.amount else NO_CURRENCY
    minor = payment.amount.minor if payment.amount else 0
    kind = str(payment.payment_type)
    out = [Delta(Dimension(partition, STATUS, payment.status.value, currency, kind), 1, minor)]
    if payment.status == Status.DECLINED:
        out.append(Delta(Dimension(partition, DECLINE, payment.decline_code or "card_declined", currency, kind),
                         1, minor))
    if payment.status == Status.RECEIPTED:
        ms = max(0, millis_between(payment.created_at, payment.updated_at))
        out.append(Delta(Dimension(partition, LATENCY, latency_bucket(ms), currency, kind), 1, ms))
    return out


def add(tally: dict | None, change: tuple[int, int, int]) -> dict:
    """Add (count, total, offset) to a tally {count, total, offset}; an offset already counted changes nothing.

    The operation a windowed table applies to each window an event falls in."""
    count, total, offset = change
    if tally and tally["offset"] >= offset:
        return tally
    tally = tally or {}
    return {"count": tally.get("count", 0) + count, "total": tally.get("total", 0) + total, "offset": offset}


def add_to_user(record: dict | None, payment: Payment, source: str, offset: int) -> dict:
    """A user's totals after the event of `payment` read at `offset` of events partition `source`.

    Totals are per currency: {"currencies": {cur: {started, receipted, declined, failed, volume_minor}},
    "sources": {events partition: last offset counted}}. An event from a partition at or below the offset
    already counted from it is a repeat and changes nothing."""
    record = record or {"currencies": {}, "sources": {}}
    if record["sources"].get(source, -1) >= offset or payment.status.value not in USER_STATES:
        return record
    currency = payment.amount.currency if payment.amount else NO_CURRENCY
    currencies = {cur: dict(t) for cur, t in record["currencies"].items()}
    totals = currencies.setdefault(currency, {state: 0 for state in USER_STATES} | {"volume_minor": 0})
    totals[payment.status.value] += 1
    if payment.status == Status.RECEIPTED and payment.amount:
        totals["volume_minor"] += payment.amount.minor
    return {"currencies": currencies, "sources": {**record["sources"], source: offset}}
