"""Read-side queries over the payments table, for analysts and operators.

Pure functions over payment records (the table's values), so they are tested
without a worker; the worker serves them at /tables/payments/summary/ over
the partitions it holds.
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


def receipted_totals(payments: Iterable[dict]) -> dict[str, str]:
    """Money taken, per currency, as decimal strings (exact: summed in minor units)."""
    totals: dict[str, int] = defaultdict(int)
    for p in payments:
        if p["status"] == Status.RECEIPTED.value and p.get("amount"):
            totals[p["amount"]["currency"]] += p["amount"]["amount_minor"]
    return {currency: Money(minor, currency).decimal for currency, minor in sorted(totals.items())}


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
    records = list(payments)
    stuck_ids = stuck(records, now, stuck_after_s)
    return {"payments": len(records), "by_status": status_counts(records),
            "receipted_totals": receipted_totals(records), "stuck": len(stuck_ids), "stuck_sample": stuck_ids[:20]}
