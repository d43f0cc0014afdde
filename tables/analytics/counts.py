"""What each payment event adds to the analysts' tables: pure functions, no Faust and no I/O.

The tables count the states that open and close a payment's life: started,
receipted, declined and failed (the steps in between are not counted). Each
counted event adds to one *group* (its events partition, currency and payment
type) a few tallies, each a count and a total:

    status   <status>        total: amount in minor units
    status   refunded        total: refunded amount in minor units (each refund as it succeeds)
    decline  <decline code>  total: amount in minor units        (declined events)
    latency  <bucket, ms>    total: milliseconds from start to receipt (receipted events)

A window keeps one record per group: {"tallies": {"measure|label": [count, total]}, "offset": o}, so an event
is one write per window. Groups are kept per partition of the events topic (the partition is the first part
of the key), so every partition's figures are its own and a total is the sum over partitions, whichever worker
holds them.

Every record remembers the offset of the last event it counted: Kafka hands
events over again after a crash or a rebalance, and an event at an offset the
record already holds changes nothing. That mark is in the same record as the
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
#: The states the analysts' tables count (the others are steps on the way).
COUNTED_STATES = (Status.STARTED.value, Status.RECEIPTED.value, Status.DECLINED.value, Status.FAILED.value)


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
class Group:
    """What one window record is about: an events partition, a currency and a payment type."""

    partition: int
    currency: str
    payment_type: str

    @property
    def key(self) -> str:
        """The table key: 'partition|currency|payment_type'."""
        return f"{self.partition}|{self.currency}|{self.payment_type}"

    @classmethod
    def parse(cls, key: str) -> Group:
        partition, currency, payment_type = key.split("|")
        return cls(int(partition), currency, payment_type)


#: The label refunds are counted under (with the statuses: the status view shows it as a row).
REFUNDED = "refunded"


def counted_state(payment: Payment) -> bool:
    """Whether this event is the payment entering a counted state."""
    # A start tried again after it failed for want of the provider is the same payment: started once
    # (its failure stays counted: it happened).
    if payment.status is Status.STARTED and payment.version > 1:
        return False
    # A refund's change of a receipted payment is a new version in the same state: not receipted again.
    return payment.status.value in COUNTED_STATES and payment.entered_status


def refunds_succeeded(payment: Payment) -> list[int]:
    """The amounts (minor units) of the refunds this event says succeeded."""
    return [r.amount.minor for r in payment.changed_refunds if r.status == "succeeded"]


def counted(payment: Payment) -> bool:
    return counted_state(payment) or bool(refunds_succeeded(payment))


def contribution(payment: Payment, partition: int) -> tuple[Group, dict[str, list[int]]]:
    """The group the event of `payment` entering its state counts in, and its tallies {"measure|label": [n, total]}.

    Only for a counted state (see `counted`)."""
    currency = payment.amount.currency if payment.amount else NO_CURRENCY
    minor = payment.amount.minor if payment.amount else 0
    group = Group(partition, currency, str(payment.payment_type))
    refunds = refunds_succeeded(payment)
    tallies = {f"{STATUS}|{REFUNDED}": [len(refunds), sum(refunds)]} if refunds else {}
    if not counted_state(payment):
        return group, tallies
    tallies[f"{STATUS}|{payment.status.value}"] = [1, minor]
    if payment.status == Status.DECLINED:
        tallies[f"{DECLINE}|{payment.decline_code or 'card_declined'}"] = [1, minor]
    if payment.status == Status.RECEIPTED:
        ms = max(0, millis_between(payment.created_at, payment.updated_at))
        tallies[f"{LATENCY}|{latency_bucket(ms)}"] = [1, ms]
    return group, tallies


def split_tally_key(key: str) -> tuple[str, str]:
    """'decline|card_declined' -> ('decline', 'card_declined'); the label (a provider's code) may hold a '|'."""
    measure, label = key.split("|", 1)
    return measure, label


def add(record: dict | None, change: tuple[dict[str, list[int]], int]) -> dict:
    """Add (tallies, offset) to a window record; an offset already counted changes nothing.

    The operation a windowed table applies to each window an event falls in."""
    tallies, offset = change
    if record and record["offset"] >= offset:
        return record
    merged = {key: list(value) for key, value in (record or {}).get("tallies", {}).items()}
    for key, (count, total) in tallies.items():
        current = merged.setdefault(key, [0, 0])
        current[0] += count
        current[1] += total
    return {"tallies": merged, "offset": offset}


def user_key(account: str, user_id: str) -> str:
    """The key of a user's totals: users are an account's own (two accounts may both have a "u1").
    Ids never contain ":" (paystream/domain/ids.py), so the pair reads back unambiguously."""
    return f"{account}:{user_id}"


def split_user_key(key: str) -> tuple[str, str]:
    account, _, user_id = key.partition(":")
    return account, user_id


def add_to_user(record: dict | None, payment: Payment, source: str, offset: int) -> dict:
    """A user's totals after the event of `payment` read at `offset` of events partition `source`.

    Totals are per currency: {"currencies": {cur: {started, receipted, declined, failed, volume_minor}},
    "sources": {events partition: last offset counted}}. An event from a partition at or below the offset
    already counted from it is a repeat and changes nothing."""
    record = record or {"currencies": {}, "sources": {}}
    if record["sources"].get(source, -1) >= offset or not counted_state(payment):
        return record
    currency = payment.amount.currency if payment.amount else NO_CURRENCY
    currencies = {cur: dict(t) for cur, t in record["currencies"].items()}
    totals = currencies.setdefault(currency, {state: 0 for state in COUNTED_STATES} | {"volume_minor": 0})
    totals[payment.status.value] += 1
    if payment.status == Status.RECEIPTED and payment.amount:
        totals["volume_minor"] += payment.amount.minor
    return {"currencies": currencies, "sources": {**record["sources"], source: offset}}
