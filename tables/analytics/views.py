"""The analysts' queries over the windowed tables: pure functions, tested without a worker.

A query names a view, a time range and a bucket size, and filters by
currency, status and payment type. Each worker reads the windows of the
partitions it holds into *partials* (counts and totals per bucket and
dimension, filters applied); partials from every worker add up to the answer,
which is the same whichever worker holds which partition. Views turn the sum
into rows: exact money as decimal strings beside integer minor units.
"""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal

from paystream.domain.errors import InvalidRequest
from paystream.domain.model import Status
from paystream.domain.money import Money, currency_exponent
from tables.analytics.counts import (
    COUNTED_STATES,
    DECLINE,
    INF,
    LATENCY,
    LATENCY_BUCKETS_MS,
    NO_CURRENCY,
    REFUNDED,
    STATUS,
    Group,
    split_tally_key,
    split_user_key,
)

MINUTE, HOUR, ROLLING = "minute", "hour", "rolling"
#: Window size and step (seconds) of each windowed table; the rolling windows (10 minutes wide, one every
#: 5 minutes) are hopping ones.
WINDOWS = {MINUTE: (60, 60), HOUR: (3600, 3600), ROLLING: (600, 300)}
VIEWS = ("status", "conversion", "declines")
BY_DIMENSIONS = ("currency", "payment_type")
DEFAULT_BY = {"status": ("currency",), "conversion": (), "declines": ("currency",)}
PAYMENT_TYPES = ("credit", "debit")
STATUS_ORDER = [s.value for s in Status]
#: Most windows one query may read from each partition (a week of minutes is 10,080).
MAX_WINDOWS = 20_000
_DURATION = re.compile(r"^([1-9][0-9]*)([mhd])$")
_UNIT_S = {"m": 60, "h": 3600, "d": 86_400}

COLUMNS = {
    "status": ["bucket_start", "bucket_end", "status", "currency", "payment_type", "count", "volume",
               "volume_minor"],
    "conversion": ["bucket_start", "bucket_end", "currency", "payment_type", "started", "receipted", "declined",
                   "failed", "conversion", "latency_count", "latency_mean_ms", "latency_p50_ms", "latency_p90_ms",
                   "latency_p99_ms"],
    "declines": ["bucket_start", "bucket_end", "decline_code", "currency", "payment_type", "count", "volume",
                 "volume_minor"],
}


def parse_duration(text: str, field: str) -> int:
    """'15m' -> 900 seconds; minutes, hours or days."""
    match = _DURATION.fullmatch(text or "")
    if not match:
        raise InvalidRequest("invalid_duration", f"{field} must be a whole number of minutes, hours or days, "
                                                 "such as 15m, 1h or 7d", field)
    return int(match[1]) * _UNIT_S[match[2]]


def parse_time(text: str, field: str) -> int:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        raise InvalidRequest("invalid_time", f"{field} must be an ISO 8601 time such as 2026-11-25T10:00:00Z",
                             field) from None
    if moment.tzinfo is None:
        raise InvalidRequest("invalid_time", f"{field} needs a time zone (Z for UTC)", field)
    return int(moment.timestamp())


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def _values(text: str | None, allowed: Iterable[str] | None, field: str) -> frozenset[str]:
    values = frozenset(v.strip() for v in (text or "").split(",") if v.strip())
    if allowed is not None and not values <= set(allowed):
        wrong = sorted(values - set(allowed))[0]
        raise InvalidRequest(f"invalid_{field}", f"{wrong!r} is not one of {', '.join(allowed)}", field)
    return values


@dataclass(frozen=True)
class WindowQuery:
    view: str
    table: str
    bucket_s: int
    start: int  # inclusive, aligned to the bucket
    end: int  # exclusive, aligned to the bucket
    currencies: frozenset[str] = frozenset()
    statuses: frozenset[str] = frozenset()
    payment_types: frozenset[str] = frozenset()
    by: tuple[str, ...] = ()

    @property
    def measures(self) -> tuple[str, ...]:
        return {"status": (STATUS,), "conversion": (STATUS, LATENCY), "declines": (DECLINE,)}[self.view]

    @property
    def window_starts(self) -> range:
        """The start of every window of the table this query reads."""
        return range(self.start, self.end, WINDOWS[self.table][1])

    def bucket_of(self, window_start: int) -> int:
        return window_start - window_start % self.bucket_s

    def bucket_end(self, bucket_start: int) -> int:
        return bucket_start + (WINDOWS[ROLLING][0] if self.table == ROLLING else self.bucket_s)

    def params(self) -> dict[str, str]:
        """As query parameters, so another worker reads exactly the same."""
        params = {"view": self.view, "from": iso(self.start), "to": iso(self.end), "by": ",".join(self.by)}
        if self.table == ROLLING:
            params["rolling"] = "true"
        else:
            params["bucket"] = f"{self.bucket_s // 60}m"
        for name, values in (("currency", self.currencies), ("status", self.statuses),
                             ("payment_type", self.payment_types)):
            if values:
                params[name] = ",".join(sorted(values))
        return params

    def describe(self) -> dict:
        return {"view": self.view, "table": self.table, "bucket_s": self.bucket_s, "from": iso(self.start),
                "to": iso(self.end), "currency": sorted(self.currencies), "status": sorted(self.statuses),
                "payment_type": sorted(self.payment_types), "by": list(self.by)}

    @classmethod
    def parse(cls, params: dict[str, str], now: float) -> WindowQuery:
        """From HTTP query parameters; every mistake is an InvalidRequest naming its parameter."""
        view = params.get("view") or "status"
        if view not in VIEWS:
            raise InvalidRequest("invalid_view", f"view must be one of {', '.join(VIEWS)}", "view")
        rolling = (params.get("rolling") or "").lower() in ("1", "true", "yes")
        if rolling:
            if params.get("bucket"):
                raise InvalidRequest("invalid_bucket", "rolling windows are 10 minutes wide, one every 5 "
                                                       "minutes: give no bucket with rolling", "bucket")
            table, bucket_s = ROLLING, WINDOWS[ROLLING][1]
        else:
            bucket_s = parse_duration(params.get("bucket") or "1m", "bucket")
            table = HOUR if bucket_s % 3600 == 0 else MINUTE
        if params.get("to"):
            end = parse_time(params["to"], "to")
        else:
            end = int(now)
        if params.get("from"):
            if params.get("since"):
                raise InvalidRequest("invalid_range", "give from (and to) or since, not both", "since")
            start = parse_time(params["from"], "from")
        else:
            start = end - parse_duration(params.get("since") or "1h", "since")
        start -= start % bucket_s
        end += -end % bucket_s
        if end <= start:
            raise InvalidRequest("invalid_range", "to must be after from", "to")
        if (end - start) // WINDOWS[table][1] > MAX_WINDOWS:
            raise InvalidRequest("range_too_long", f"that range holds more than {MAX_WINDOWS} windows of "
                                                   f"{WINDOWS[table][1]} s: use a larger bucket", "bucket")
        currencies = _values(params.get("currency"), None, "currency")
        for code in currencies:
            currency_exponent(code)
        statuses = _values(params.get("status"), (*COUNTED_STATES, REFUNDED), "status")
        if statuses and view != "status":
            raise InvalidRequest("invalid_status", f"the {view} view has no status filter", "status")
        payment_types = _values(params.get("payment_type"), PAYMENT_TYPES, "payment_type")
        by = tuple(d for d in BY_DIMENSIONS if d in _values(params.get("by"), BY_DIMENSIONS, "by")) \
            if "by" in params else DEFAULT_BY[view]
        return cls(view, table, bucket_s, start, end, currencies, statuses, payment_types, by)


# --- partials: what one worker reads, and their sum ---------------------------------------

PartialKey = tuple[int, str, str, str | None, str | None]  # bucket, measure, label, currency, payment_type


@dataclass
class Partials:
    """Counts and totals per bucket and dimension, from some partitions."""

    partitions: set[int] = field(default_factory=set)
    tallies: dict[PartialKey, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))

    def add(self, key: PartialKey, count: int, total: int) -> None:
        tally = self.tallies[key]
        tally[0] += count
        tally[1] += total

    def merge(self, other: Partials) -> None:
        overlap = self.partitions & other.partitions
        if overlap:
            raise ValueError(f"partitions {sorted(overlap)} answered twice")
        self.partitions |= other.partitions
        for key, (count, total) in other.tallies.items():
            self.add(key, count, total)

    def as_dict(self) -> dict:
        return {"partitions": sorted(self.partitions),
                "tallies": [[*key, count, total] for key, (count, total) in sorted(self.tallies.items(),
                                                                                     key=_sort_key)]}

    @classmethod
    def from_dict(cls, data: dict) -> Partials:
        partials = cls(partitions=set(data["partitions"]))
        for *key, count, total in data["tallies"]:
            partials.add(tuple(key), count, total)
        return partials


def _sort_key(item) -> tuple:
    (bucket, measure, label, currency, payment_type), _ = item
    rank = STATUS_ORDER.index(label) if measure == STATUS and label in STATUS_ORDER else len(STATUS_ORDER)
    return bucket, measure, rank, label, currency or "", payment_type or ""


def wanted(query: WindowQuery, group: Group) -> bool:
    """Whether the query reads this group's records at all (its currency and payment type filters)."""
    if query.currencies and group.currency not in query.currencies:
        return False
    return not (query.payment_types and group.payment_type not in query.payment_types)


def _wanted_tally(query: WindowQuery, measure: str, label: str) -> bool:
    if measure not in query.measures:
        return False
    return not (query.statuses and measure == STATUS and label not in query.statuses)


def read_partials(query: WindowQuery, partitions: Iterable[int],
                  records: Iterable[tuple[Group, int, dict]]) -> Partials:
    """Partials from (group, window start, window record) of the given partitions."""
    partials = Partials(partitions=set(partitions))
    for group, window_start, record in records:
        if not record or not wanted(query, group) or not query.start <= window_start < query.end:
            continue
        for key, (count, total) in record["tallies"].items():
            measure, label = split_tally_key(key)
            if _wanted_tally(query, measure, label):
                partials.add((query.bucket_of(window_start), measure, label,
                              group.currency if "currency" in query.by else None,
                              group.payment_type if "payment_type" in query.by else None), count, total)
    return partials


def check_complete(partials: Partials, partition_count: int) -> list[int]:
    """The partitions nobody answered for (empty when the answer is whole)."""
    return sorted(set(range(partition_count)) - partials.partitions)


# --- views: the sum as rows ---------------------------------------------------------------

def _money(minor: int, currency: str | None) -> str | None:
    if not currency or currency == NO_CURRENCY:
        return None
    return Money(minor, currency).decimal


def _ratio(part: int, whole: int) -> str | None:
    if not whole:
        return None
    return str((Decimal(part) / Decimal(whole)).quantize(Decimal("0.0001"), rounding=ROUND_HALF_EVEN))


def _percentile(histogram: dict[str, int], q: Decimal) -> int | None:
    """Upper bound (ms) of the latency bucket holding the q-th event; None past the last bound."""
    count = sum(histogram.values())
    if not count:
        return None
    rank = int((q * count).to_integral_value(rounding="ROUND_CEILING"))
    seen = 0
    for bound in [*map(str, LATENCY_BUCKETS_MS), INF]:
        seen += histogram.get(bound, 0)
        if seen >= rank:
            return None if bound == INF else int(bound)
    return None  # pragma: no cover - the loop always reaches the rank


def _group(currency: str | None, payment_type: str | None) -> dict:
    return {"currency": currency or None, "payment_type": payment_type}


def rows(query: WindowQuery, partials: Partials) -> list[dict]:
    """The view's rows, ordered by bucket, then status, code, currency and payment type."""
    ordered = sorted(partials.tallies.items(), key=_sort_key)
    if query.view == "conversion":
        return _conversion_rows(query, ordered)
    label_column = "status" if query.view == "status" else "decline_code"
    out = []
    for (bucket, _measure, label, currency, payment_type), (count, total) in ordered:
        if count:
            out.append({"bucket_start": iso(bucket), "bucket_end": iso(query.bucket_end(bucket)),
                        label_column: label, **_group(currency, payment_type), "count": count,
                        "volume": _money(total, currency), "volume_minor": total if currency else None})
    if query.view == "status":
        out += _net_rows(query, ordered)
    return [{column: row[column] for column in COLUMNS[query.view]} for row in out]


def _net_rows(query: WindowQuery, ordered) -> list[dict]:
    """Where refunds succeeded in a bucket: the net volume, receipted less refunded (count: receipted)."""
    sums: dict[tuple, dict[str, list[int]]] = {}
    for (bucket, measure, label, currency, payment_type), (count, total) in ordered:
        if measure == STATUS and label in ("receipted", REFUNDED) and currency:
            sums.setdefault((bucket, currency, payment_type), {})[label] = [count, total]
    return [{"bucket_start": iso(bucket), "bucket_end": iso(query.bucket_end(bucket)), "status": "net",
             **_group(currency, payment_type), "count": got.get("receipted", [0, 0])[0],
             "volume": _money(got.get("receipted", [0, 0])[1] - got[REFUNDED][1], currency),
             "volume_minor": got.get("receipted", [0, 0])[1] - got[REFUNDED][1]}
            for (bucket, currency, payment_type), got in sums.items() if REFUNDED in got]


def _conversion_rows(query: WindowQuery, ordered) -> list[dict]:
    groups: dict[tuple, dict] = {}
    for (bucket, measure, label, currency, payment_type), (count, total) in ordered:
        group = groups.setdefault((bucket, currency or "", payment_type or ""),
                                  {"counts": defaultdict(int), "histogram": defaultdict(int), "latency_ms": 0})
        if measure == STATUS:
            group["counts"][label] += count
        else:
            group["histogram"][label] += count
            group["latency_ms"] += total
    combos = sorted({key[1:] for key in groups}) or [("", "")]
    step = query.bucket_s if query.table != ROLLING else WINDOWS[ROLLING][1]
    out = []
    for bucket in range(query.start, query.end, step):
        for currency, payment_type in combos:
            group = groups.get((bucket, currency, payment_type),
                               {"counts": {}, "histogram": {}, "latency_ms": 0})
            counts, histogram = group["counts"], group["histogram"]
            latency_count = sum(histogram.values())
            out.append({
                "bucket_start": iso(bucket), "bucket_end": iso(query.bucket_end(bucket)),
                "currency": currency or None, "payment_type": payment_type or None,
                "started": counts.get("started", 0), "receipted": counts.get("receipted", 0),
                "declined": counts.get("declined", 0), "failed": counts.get("failed", 0),
                "conversion": _ratio(counts.get("receipted", 0), counts.get("started", 0)),
                "latency_count": latency_count,
                "latency_mean_ms": round(group["latency_ms"] / latency_count) if latency_count else None,
                "latency_p50_ms": _percentile(histogram, Decimal("0.5")),
                "latency_p90_ms": _percentile(histogram, Decimal("0.9")),
                "latency_p99_ms": _percentile(histogram, Decimal("0.99")),
            })
    return out


def to_csv(columns: list[str], records: Iterable[dict]) -> str:
    """CSV with a header line; an absent value is an empty field."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow({k: "" if v is None else v for k, v in record.items()})
    return out.getvalue()


# --- per-user totals -----------------------------------------------------------------------

USER_COLUMNS = ["account", "user_id", "currency", "started", "receipted", "declined", "failed", "volume",
                "volume_minor"]


def user_rows(key: str, record: dict | None) -> list[dict]:
    """A user's totals (`key`: account and user, see aggregates.user_key), one row per currency (None for
    payments started without an amount)."""
    account, user_id = split_user_key(key)
    out = []
    for currency, totals in sorted((record or {}).get("currencies", {}).items()):
        out.append({"account": account, "user_id": user_id, "currency": currency or None,
                    **{k: totals[k] for k in ("started", "receipted", "declined", "failed")},
                    "volume": _money(totals["volume_minor"], currency),
                    "volume_minor": totals["volume_minor"] if currency else None})
    return out
