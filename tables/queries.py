"""Read-side queries over the payments table, for analysts and operators.

Pure functions over payment records (the table's values), so they are tested
without a worker. Each worker computes a partial summary over the partitions
it holds; `merge_summaries` adds them up, and the worker answering
/tables/payments/summary/ gathers every worker's (streams/worker.py).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import datetime

from paystream.domain.model import Status
from paystream.domain.money import Money

IN_FLIGHT = frozenset({Status.STARTED.value, Status.TOKENIZED.value, Status.POSTING.value})


def status_counts(payments: Iterable[dict]) -> dict[str, int]:
    return dict(Counter(p["status"] for p in payments))


def receipted_minor(payments: Iterable[dict]) -> dict[str, int]:
    """Money taken, per currency, in minor units."""
    totals: dict[str, int] = defaultdict(int)
    for p in payments:
        if p["status"] == Status.RECEIPTED.value and p.get("amount"):
            totals[p["amount"]["currency"]] += p["amount"]["amount_minor"]
    return dict(sorted(totals.items()))


def refunds_of(payments: Iterable[dict]) -> tuple[dict[str, int], dict[str, int]]:
    """(refunds by status, money given back per currency in minor units: the succeeded refunds)."""
    by_status: Counter = Counter()
    given: dict[str, int] = defaultdict(int)
    for p in payments:
        for refund in p.get("refunds") or ():
            by_status[refund["status"]] += 1
            if refund["status"] == "succeeded":
                given[refund["amount"]["currency"]] += refund["amount"]["amount_minor"]
    return dict(by_status), dict(sorted(given.items()))


def receipted_totals(payments: Iterable[dict]) -> dict[str, str]:
    """Money taken, per currency, as decimal strings (exact: summed in minor units)."""
    return _decimals(receipted_minor(payments))


def _decimals(minor: dict[str, int]) -> dict[str, str]:
    return {currency: Money(units, currency).decimal for currency, units in sorted(minor.items())}


def stuck(payments: Iterable[dict], now: datetime, older_than_s: float) -> list[str]:
    """Ids of payments still in flight long after their last change (abandoned or awaiting recovery)."""
    out = []
    for p in payments:
        if p["status"] in IN_FLIGHT:
            changed = datetime.fromisoformat(p["updated_at"].replace("Z", "+00:00"))
            if (now - changed).total_seconds() > older_than_s:
                out.append(p["payment_id"])
    return sorted(out)


def summary(payments: Iterable[dict], now: datetime, stuck_after_s: float = 3600) -> dict:
    return merge_summaries([summary_partial(payments, now, stuck_after_s)])


STUCK_SAMPLE = 20


def summary_partial(payments: Iterable[dict], now: datetime, stuck_after_s: float = 3600) -> dict:
    """One worker's share of the summary, in figures that add up (minor units, every stuck id's count)."""
    records = list(payments)
    stuck_ids = stuck(records, now, stuck_after_s)
    refunds_by_status, refunded = refunds_of(records)
    return {"payments": len(records), "by_status": status_counts(records),
            "receipted_minor": receipted_minor(records), "stuck": len(stuck_ids),
            "stuck_sample": stuck_ids[:STUCK_SAMPLE], "refunds_by_status": refunds_by_status,
            "refunded_minor": refunded}


def merge_summaries(partials: Iterable[dict]) -> dict:
    """The summary over every partition, from each worker's partial."""
    by_status: Counter = Counter()
    refunds_by_status: Counter = Counter()
    minor: dict[str, int] = defaultdict(int)
    refunded: dict[str, int] = defaultdict(int)
    total = stuck_count = 0
    sample: list[str] = []
    for part in partials:
        total += part["payments"]
        by_status.update(part["by_status"])
        for currency, units in part["receipted_minor"].items():
            minor[currency] += units
        # (A worker of an older version sends no refund figures.)
        refunds_by_status.update(part.get("refunds_by_status", {}))
        for currency, units in part.get("refunded_minor", {}).items():
            refunded[currency] += units
        stuck_count += part["stuck"]
        sample += part["stuck_sample"]
    net = {currency: minor.get(currency, 0) - refunded.get(currency, 0) for currency in {*minor, *refunded}}
    return {"payments": total, "by_status": dict(sorted(by_status.items())), "receipted_totals": _decimals(minor),
            "refunds_by_status": dict(sorted(refunds_by_status.items())), "refunded_totals": _decimals(refunded),
            "net_totals": _decimals(net), "stuck": stuck_count, "stuck_sample": sorted(sample)[:STUCK_SAMPLE]}
