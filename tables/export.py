"""What an export of each table holds: its columns (with their types) and the rows of one record.

Pure functions over the tables' stored values: the worker and the analytics
read the records (streams/tables_web.py) and `write_export` below writes the
files for `paystream tables export` (paystream/analyst_cli.py). An export
never carries e-mail addresses, payment methods or client secrets: analysts
get ids, states, amounts and times.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from paystream.clock import utc_now
from paystream.domain.money import Money
from tables.analytics.counts import LATENCY, NO_CURRENCY, Group, split_tally_key
from tables.analytics.views import USER_COLUMNS, iso, user_rows

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
        "payment_id": value["payment_id"], "account": value["account"], "user_id": value["user_id"],
        "status": value["status"],
        "payment_type": value["payment_type"], "currency": amount.get("currency"),
        "amount_minor": amount.get("amount_minor"),
        "amount": Money(amount["amount_minor"], amount["currency"]).decimal if amount else None,
        "created_at": value["created_at"], "updated_at": value["updated_at"],
        "transaction_id": value.get("transaction_id"), "receipt_id": value.get("receipt_id"),
        "charge_id": value.get("charge_id"), "decline_code": value.get("decline_code"),
        "failure_reason": value.get("failure_reason"), "version": value["version"], "partition": partition,
    }


def window_rows(key, value: dict, partition: int) -> Iterable[dict]:
    """One row per tally of a window record."""
    group_key, (start, end) = key
    group = Group.parse(group_key)
    for tally_key, (count, total) in sorted(value["tallies"].items()):
        measure, label = split_tally_key(tally_key)
        latency = measure == LATENCY
        yield {
            # Faust ends a window 0.1 s before the next one starts; the export says where the next starts.
            "window_start": iso(start), "window_end": iso(round(end + 0.1)), "measure": measure, "label": label,
            "currency": group.currency if group.currency != NO_CURRENCY else None,
            "payment_type": group.payment_type, "count": count, "amount_minor": None if latency else total,
            "latency_ms_total": total if latency else None, "partition": partition,
        }


def user_export_rows(key: str, value: dict, partition: int) -> Iterable[dict]:
    for row in user_rows(key, value):
        yield {**row, "partition": partition}


_WINDOW_COLUMNS = (("window_start", TIME), ("window_end", TIME), ("measure", TEXT), ("label", TEXT),
                   ("currency", TEXT), ("payment_type", TEXT), ("count", BIGINT), ("amount_minor", BIGINT),
                   ("latency_ms_total", BIGINT), ("partition", BIGINT))
_USER_TYPES = {"account": TEXT, "user_id": TEXT, "currency": TEXT, "volume": TEXT}

EXPORTS = {e.name: e for e in (
    Export("payments", (("payment_id", TEXT), ("account", TEXT), ("user_id", TEXT), ("status", TEXT), ("payment_type", TEXT),
                        ("currency", TEXT), ("amount_minor", BIGINT), ("amount", TEXT), ("created_at", TIME),
                        ("updated_at", TIME), ("transaction_id", TEXT), ("receipt_id", TEXT), ("charge_id", TEXT),
                        ("decline_code", TEXT), ("failure_reason", TEXT), ("version", BIGINT),
                        ("partition", BIGINT)),
           payment_rows, "every payment as it stands (no e-mail, card or secret)"),
    Export("windows-minute", _WINDOW_COLUMNS, window_rows, "per-minute windows: counts and totals per dimension"),
    Export("windows-hour", _WINDOW_COLUMNS, window_rows, "per-hour windows"),
    Export("windows-rolling", _WINDOW_COLUMNS, window_rows, "10-minute windows starting every 5 minutes"),
    Export("users", tuple((c, _USER_TYPES.get(c, BIGINT)) for c in USER_COLUMNS) + (("partition", BIGINT),),
           user_export_rows, "per-user totals, one row per currency"),
)}


# --- writing an export ------------------------------------------------------------------------

class ExportFailed(RuntimeError):
    pass


def write_export(name: str, lines: Iterable[list], fmt: str, out: Path) -> dict:
    """Write the lines of a gathered export (["row", {...}] ..., ["end", {...}]) to `out` as CSV or Parquet.

    Nothing is left at `out` unless the export ended whole: rows go to a
    temporary CSV beside it first, which becomes the file (CSV) or is turned
    into Parquet by DuckDB with the table's column types. The manifest (table,
    rows, the changelog offset each partition was read at) is returned, kept
    in the Parquet file's key-value metadata, and written beside the file as
    `<out>.manifest.json`."""
    export = EXPORTS[name]
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial.csv")
    count, end = 0, None
    try:
        with open(partial, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=export.names, lineterminator="\n")
            writer.writeheader()
            for kind, body in lines:
                if kind == "row":
                    writer.writerow({k: "" if v is None else v for k, v in body.items()})
                    count += 1
                elif kind == "error":
                    raise ExportFailed(f"{body.get('code')}: {body.get('message')}")
                elif kind == "end":
                    end = body
        if end is None:
            raise ExportFailed("the export stopped before its end; nothing was written")
        manifest = {"table": name, "format": fmt, "rows": count, "partitions": end["partitions"],
                    "offsets": end["offsets"], "exported_at": utc_now(), "columns": dict(export.columns)}
        if fmt == "csv":
            partial.replace(out)
        else:
            _csv_to_parquet(partial, out, export, manifest)
        Path(f"{out}.manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        return manifest
    finally:
        partial.unlink(missing_ok=True)


def _csv_to_parquet(source: Path, out: Path, export: Export, manifest: dict) -> None:
    try:
        import duckdb
    except ImportError:
        raise ExportFailed("Parquet needs DuckDB: pip install 'paystream[analytics]' (or use --format csv)") from None
    columns = "{" + ", ".join(f"'{name}': '{kind}'" for name, kind in export.columns) + "}"
    metadata = json.dumps({k: v for k, v in manifest.items() if k != "columns"}).replace("'", "''")
    with duckdb.connect() as con:
        con.execute(f"COPY (SELECT * FROM read_csv(?, header = true, auto_detect = false, columns = {columns})) "
                    f"TO '{_sql_path(out)}' (FORMAT parquet, KV_METADATA {{paystream: '{metadata}'}})",
                    [str(source)])


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")
