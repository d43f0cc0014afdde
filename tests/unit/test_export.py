"""Exports: the rows of each table's records, and files that read back exactly (CSV and Parquet)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import duckdb
import pytest

from tables.export import EXPORTS, ExportFailed, write_export
from tests.conftest import ROOT

PAYMENT = {"payment_id": "pay_1", "account": "acct_1", "user_id": "u1", "email": "jane@example.com", "status": "receipted",
           "payment_type": "credit", "amount": {"amount": "12.34", "amount_minor": 1234, "currency": "EUR"},
           "created_at": "2026-11-25T10:00:00.123Z", "updated_at": "2026-11-25T10:00:04.500Z",
           "transaction_id": "pi_1", "client_secret": "pi_1_secret_x", "payment_method": "pm_1",
           "receipt_id": "rcpt_1", "charge_id": "ch_1", "decline_code": None, "failure_reason": None, "version": 5}
UNSTARTED = {**PAYMENT, "payment_id": "pay_2", "status": "started", "amount": None, "version": 1}
WINDOW_KEY = ["3|EUR|credit", [1764064800.0, 1764064859.9]]
RECORD = {"tallies": {"status|receipted": [3, 3702], "latency|5000": [3, 7000]}, "offset": 40}


def lines(name: str, records: list[tuple], end: bool = True) -> list[list]:
    out = [["partition", {"partition": 3, "offset": 41}]]
    for key, value in records:
        out += [["row", row] for row in EXPORTS[name].rows(key, value, 3)]
    return out + ([["end", {"table": name, "partitions": 6, "offsets": {"3": 41}}]] if end else [])


def test_payment_rows_carry_no_email_card_or_secret():
    (row,) = EXPORTS["payments"].rows("pay_1", PAYMENT, 3)
    assert set(row) == set(EXPORTS["payments"].names)
    assert "jane" not in json.dumps(row) and "secret" not in json.dumps(row) and "pm_1" not in json.dumps(row)


def test_window_rows_name_their_measure_and_where_the_window_ends():
    latency, receipted = EXPORTS["windows-minute"].rows(WINDOW_KEY, RECORD, 3)
    assert latency == {"window_start": "2025-11-25T10:00:00Z", "window_end": "2025-11-25T10:01:00Z",
                       "measure": "latency", "label": "5000", "currency": "EUR", "payment_type": "credit",
                       "count": 3, "amount_minor": None, "latency_ms_total": 7000, "partition": 3}
    assert (receipted["measure"], receipted["label"], receipted["amount_minor"]) == ("status", "receipted", 3702)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_payments_round_trip(tmp_path, fmt):
    out = tmp_path / f"payments.{fmt}"
    manifest = write_export("payments", lines("payments", [("pay_1", PAYMENT), ("pay_2", UNSTARTED)]), fmt, out)
    assert manifest["rows"] == 2 and manifest["offsets"] == {"3": 41}
    # CSV carries no types: the manifest names them, so the CSV reads back as typed as the Parquet file.
    source = f"'{out}'" if fmt == "parquet" else \
        f"read_csv('{out}', header = true, columns = {json.dumps(manifest['columns'])})".replace('"', "'")
    got = duckdb.sql(f"SELECT payment_id, status, currency, amount_minor, amount, created_at, version "
                     f"FROM {source} ORDER BY payment_id").fetchall()
    assert [(p, s, c, m, a, t.isoformat(timespec="milliseconds"), v) for p, s, c, m, a, t, v in got] == [
        ("pay_1", "receipted", "EUR", 1234, "12.34", "2026-11-25T10:00:00.123+00:00", 5),
        ("pay_2", "started", None, None, None, "2026-11-25T10:00:00.123+00:00", 1)]
    assert json.loads((tmp_path / f"payments.{fmt}.manifest.json").read_text())["rows"] == 2
    assert list(tmp_path.glob("*.partial*")) == []


def test_parquet_keeps_types_and_the_manifest(tmp_path):
    path = tmp_path / "windows.parquet"
    write_export("windows-minute", lines("windows-minute", [(WINDOW_KEY, RECORD)]), "parquet", path)
    types = dict(duckdb.sql(f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM '{path}')").fetchall())
    assert types["window_start"] == "TIMESTAMP WITH TIME ZONE" and types["amount_minor"] == "BIGINT"
    ((meta,),) = duckdb.sql(f"SELECT value FROM parquet_kv_metadata('{path}') WHERE key = 'paystream'").fetchall()
    assert json.loads(meta)["offsets"] == {"3": 41}
    assert duckdb.sql(f"SELECT sum(amount_minor)::BIGINT FROM '{path}'").fetchall() == [(3702,)]


def test_users_csv_round_trip(tmp_path):
    record = {"currencies": {"EUR": {"started": 2, "receipted": 1, "declined": 1, "failed": 0,
                                     "volume_minor": 1050}}, "sources": {"0": 3}}
    out = tmp_path / "users.csv"
    write_export("users", lines("users", [("acct_1:u1", record)]), "csv", out)
    with open(out) as f:
        assert list(csv.DictReader(f)) == [{"account": "acct_1", "user_id": "u1", "currency": "EUR", "started": "2", "receipted": "1",
                                           "declined": "1", "failed": "0", "volume": "10.50",
                                           "volume_minor": "1050", "partition": "3"}]


@pytest.mark.parametrize("broken", [
    lambda ls: ls,  # no end line: a worker stopped mid-way
    lambda ls: [*ls, ["error", {"code": "incomplete_answer", "message": "partitions [4] did not answer"}]],
])
def test_an_export_that_did_not_end_whole_leaves_no_file(tmp_path, broken):
    out = tmp_path / "payments.csv"
    with pytest.raises(ExportFailed):
        write_export("payments", broken(lines("payments", [("pay_1", PAYMENT)], end=False)), "csv", out)
    assert list(tmp_path.iterdir()) == []


def test_the_docs_example_reads_an_export(tmp_path):
    readme = (ROOT / "docs" / "analytics.md").read_text()
    block = readme.split("<!-- analysts-example")[1].split("```python\n", 1)[1].split("```", 1)[0]
    eur = {**PAYMENT, "payment_id": "pay_3", "amount": {"amount": "0.66", "amount_minor": 66, "currency": "EUR"}}
    jpy = {**PAYMENT, "payment_id": "pay_4", "amount": {"amount": "500", "amount_minor": 500, "currency": "JPY"}}
    write_export("payments", lines("payments", [("pay_1", PAYMENT), ("pay_2", UNSTARTED), ("pay_3", eur),
                                                ("pay_4", jpy)]), "parquet", tmp_path / "payments.parquet")
    result = subprocess.run([sys.executable, "-c", block], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    table = [line.split("│")[1:-1] for line in result.stdout.splitlines() if line.count("│") == 4]
    assert [[cell.strip() for cell in row] for row in table][-2:] == [["EUR", "2", "1300"], ["JPY", "1", "500"]]
