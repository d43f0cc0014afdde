"""What an export of each table holds: its columns (with their types) and the rows of one record.

Pure functions over the tables' stored values; the worker reads the records
(streams/analytics.py) and `paystream tables export` writes the files
(paystream/analyst_cli.py). An export never carries e-mail addresses, payment
methods or client secrets: analysts get ids, states, amounts and times.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from paystream.domain.money import Money
from tables.aggregates import LATENCY, NO_CURRENCY, Dimension
from tables.window_queries import USER_COLUMNS, iso, user_rows

BIGINT, TEXT, TIME = "BIGINT", "VARCHAR", "TIMESTAMPTZ"


@dataclass(frozen=True)
class Export:
    name: str
    #: (column, DuckDB type): the Parquet file's schema; the CSV header is the same names.
    columns: tuple[tuple[str, str], ...]
    #: (key, value, partition) of one stored record -> its rows.
    rows: Callable[[object, object, int], Iterable[dict]]
    help: str

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.columns]


def payment_rows(key: str, value: dict, partition: int) -> Iterable[dict]:
    amount = value.get("amount") or {}
    yield {
        "payment_id": value["payment_id"], "user_id": value["user_id"], "status": value["status"],
        "payment_type": value["payment_type"], "currency": amount.get("currency"),
        "amount_minor": amount.get("amount_minor"),
        "amount": Money(amount["amount_minor"], amount["currency"]).decimal if amount else None,
        "created_at": value["created_at"], "updated_at": value["updated_at"],
        "transaction_id": value.get("transaction_id"), "receipt_id": value.get("receipt_id"),
        "charge_id": value.get("charge_id"), "decline_code": value.get("decline_code"),
        "failure_reason": value.get("failure_reason"), "version": value["version"], "partition": partition,
    }


def window_rows(key, value: dict, partition: int) -> Iterable[dict]:
    dimension_key, (start, end) = key
    dimension = Dimension.parse(dimension_key)
    latency = dimension.measure == LATENCY
    yield {
        # Faust ends a window 0.1 s before the next one starts; the export says where the next starts.
        "window_start": iso(start), "window_end": iso(round(end + 0.1)),
        "measure": dimension.measure, "label": dimension.label,
        "currency": dimension.currency if dimension.currency != NO_CURRENCY else None,
        "payment_type": dimension.payment_type, "count": value["count"],
        "amount_minor": None if latency else value["total"],
        "latency_ms_total": value["total"] if latency else None, "partition": partition,
    }


def user_export_rows(key: str, value: dict, partition: int) -> Iterable[dict]:
    for row in user_rows(key, value):
        yield {**row, "partition": partition}


_WINDOW_COLUMNS = (("window_start", TIME), ("window_end", TIME), ("measure", TEXT), ("label", TEXT),
                   ("currency", TEXT), ("payment_type", TEXT), ("count", BIGINT), ("amount_minor", BIGINT),
                   ("latency_ms_total", BIGINT), ("partition", BIGINT))
_USER_TYPES = {"user_id": TEXT, "currency": TEXT, "volume": TEXT}

EXPORTS = {e.name: e for e in (
    Export("payments", (("payment_id", TEXT), ("user_id", TEXT), ("status", TEXT), ("payment_type", TEXT),
                        ("currency", TEXT), ("amount_minor", BIGINT), ("amount", TEXT), ("created_at", TIME),
                        ("updated_at", TIME), ("transaction_id", TEXT), ("receipt_id", TEXT), ("charge_id", TEXT),
                        ("decline_code", TEXT), ("failure_reason", TEXT), ("version", BIGINT),
                        ("partition", BIGINT)),
           payment_rows, "every payment as it stands (no e-mail, card or secret)"),
    Export("windows-minute", _WINDOW_COLUMNS, window_rows, "per-minute windows: counts and totals per dimension"),
    Export("windows-hour", _WINDOW_COLUMNS, window_rows, "per-hour windows"),
    Export("windows-rolling", _WINDOW_COLUMNS, window_rows, "5-minute windows starting every minute"),
    Export("users", tuple((c, _USER_TYPES.get(c, BIGINT)) for c in USER_COLUMNS) + (("partition", BIGINT),),
           user_export_rows, "per-user totals, one row per currency"),
)}
