"""`paystream query` and `paystream tables export`: the analysts' commands.

They talk to the internal HTTP pages of one analytics process
(PAYSTREAM_ANALYTICS_URL) or, for the payments table, of one worker
(PAYSTREAM_WORKER_URL), with the internal token; the process asked gathers
the answer from every process of its kind. Answers print as a table, or as
CSV or JSON for tools.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from paystream.settings import get_settings

#: A worker answering 503 (rebalancing, a partition not answering) is asked again this often, 2 s apart.
ATTEMPTS = 5


class WorkerError(RuntimeError):
    pass


class WorkerClient:
    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}"}

    def _open(self, path: str, params: dict[str, str], timeout: float | None):
        url = f"{self.base_url}{path}?{urllib.parse.urlencode(params)}"
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return urllib.request.urlopen(urllib.request.Request(url, headers=self.headers), timeout=timeout)
            except urllib.error.HTTPError as exc:
                try:
                    error = json.loads(exc.read())["error"]
                except (ValueError, KeyError, TypeError):
                    error = {"code": str(exc.code), "message": exc.reason, "field": None}
                if exc.code == 503 and attempt < ATTEMPTS:
                    typer.echo(f"{error['message']} (retrying)", err=True)
                    time.sleep(2)
                    continue
                field = f" [{error['field']}]" if error.get("field") else ""
                raise WorkerError(f"{exc.code} {error['code']}{field}: {error['message']}") from None
            except urllib.error.URLError as exc:
                raise WorkerError(f"nothing answers at {self.base_url} ({exc.reason}); is it running? "
                                  "Set PAYSTREAM_ANALYTICS_URL / PAYSTREAM_WORKER_URL, or --url") from None
        raise AssertionError("unreachable")  # pragma: no cover

    def get(self, path: str, params: dict[str, str]) -> tuple[str, bytes]:
        with self._open(path, params, timeout=60) as response:
            return response.headers.get_content_type(), response.read()

    def lines(self, path: str) -> Iterator[list]:
        with self._open(path, {}, timeout=None) as response:
            for line in response:
                if line.strip():
                    yield json.loads(line)


class Output(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"


def _client(url: str | None, payments: bool = False) -> WorkerClient:
    """A client of the analytics (or, for the payments table, of a worker)."""
    settings = get_settings()
    default = settings.worker_base_url if payments else settings.analytics_base_url
    return WorkerClient(url or default, settings.internal_token.get_secret_value())


def _fail(exc: Exception) -> typer.Exit:
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    return typer.Exit(code=1)


def _print(columns: list[str], rows: list[dict], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, justify="right" if rows and isinstance(rows[0].get(column), int) else "left")
    for row in rows:
        table.add_row(*("" if row.get(c) is None else str(row[c]) for c in columns))
    # As wide as the cells need, not the terminal: a narrow terminal would cut timestamps short.
    widths = [max([len(c)] + [len(str(row.get(c))) for row in rows]) for c in columns]
    Console(width=max(80, sum(widths) + 3 * len(columns) + 1)).print(table)


def _show(path: str, params: dict[str, str], columns: list[str], output: Output, url: str | None,
          title: str) -> None:
    client = _client(url)
    try:
        if output is Output.csv:
            _, body = client.get(path, {**params, "format": "csv"})
            sys.stdout.write(body.decode())
            return
        _, body = client.get(path, params)
    except WorkerError as exc:
        raise _fail(exc) from None
    answer = json.loads(body)
    if output is Output.json:
        typer.echo(json.dumps(answer, indent=2))
    else:
        _print(columns, answer["rows"], title)


Url = Annotated[Optional[str], typer.Option("--url", help="The process to ask (default: PAYSTREAM_ANALYTICS_URL, "
                                                          "or PAYSTREAM_WORKER_URL for the payments table; else the "
                                                          "local one).", show_default=False)]
As = Annotated[Output, typer.Option("--as", help="table, csv or json.")]
CsvFlag = Annotated[bool, typer.Option("--csv", help="CSV (same as --as csv).")]
JsonFlag = Annotated[bool, typer.Option("--json", help="JSON (same as --as json).")]


def _output(as_: Output, csv: bool, json_: bool) -> Output:
    return Output.csv if csv else Output.json if json_ else as_


query = typer.Typer(help="Ask the workers' tables: windows over time, per-user totals, the payments summary.",
                    no_args_is_help=True)


def _window_view(view: str, help_: str) -> None:
    from tables.analytics.views import COLUMNS

    @query.command(name=view, help=help_)
    def command(
        bucket: Annotated[Optional[str], typer.Option(help="Bucket size: 1m, 5m, 15m, 1h, 1d, ... (default 1m).",
                                                      show_default=False)] = None,
        since: Annotated[Optional[str], typer.Option(help="Range: the last 30m, 6h, 7d, ... (default 1h).",
                                                     show_default=False)] = None,
        from_: Annotated[Optional[str], typer.Option("--from", help="Range start, ISO 8601 (e.g. "
                                                                    "2026-11-25T10:00:00Z).", show_default=False)] = None,
        to: Annotated[Optional[str], typer.Option(help="Range end (exclusive), ISO 8601 (default now).",
                                                  show_default=False)] = None,
        currency: Annotated[Optional[str], typer.Option(help="Only these currencies (comma-separated).",
                                                        show_default=False)] = None,
        status: Annotated[Optional[str], typer.Option(help="Only these statuses (status view).",
                                                      show_default=False)] = None,
        payment_type: Annotated[Optional[str], typer.Option(help="credit or debit.", show_default=False)] = None,
        by: Annotated[Optional[str], typer.Option(help="Keep these apart: currency, payment_type "
                                                       "(comma-separated; empty to add everything up).",
                                                  show_default=False)] = None,
        rolling: Annotated[bool, typer.Option("--rolling", help="10-minute windows, one starting every 5 minutes "
                                                                "(instead of buckets).")] = False,
        as_: As = Output.table, csv: CsvFlag = False, json_: JsonFlag = False, url: Url = None,
    ) -> None:
        params = {"view": view, "bucket": bucket, "since": since, "from": from_, "to": to, "currency": currency,
                  "status": status, "payment_type": payment_type, "by": by, "rolling": "true" if rolling else None}
        _show("/analytics/windows/", {k: v for k, v in params.items() if v is not None}, COLUMNS[view],
              _output(as_, csv, json_), url, f"{view} per {'rolling 10m' if rolling else bucket or '1m'}")


_window_view("status", "Payments started, receipted, declined and failed per bucket (and currency): counts and "
                       "volume (exact, per currency).")
_window_view("conversion", "Per bucket: started, receipted, declined, failed, conversion (receipted / started) "
                           "and latency from start to receipt.")
_window_view("declines", "Declines per bucket by decline code (and currency).")


@query.command()
def user(user_id: str, account: Annotated[str, typer.Option(help="The account the user belongs to.")],
         as_: As = Output.table, csv: CsvFlag = False, json_: JsonFlag = False, url: Url = None) -> None:
    """One user's totals per currency: payments started, receipted, declined, failed, and volume."""
    from tables.analytics.counts import user_key
    from tables.analytics.views import USER_COLUMNS

    key = user_key(account, user_id)
    _show(f"/analytics/users/{urllib.parse.quote(key, safe='')}/", {}, USER_COLUMNS, _output(as_, csv, json_),
          url, f"user {user_id} of account {account}")


@query.command()
def summary(url: Url = None) -> None:
    """The payments table over every partition: counts by state, money taken, refunds (by status, money given
    back) and the net, payments stuck in flight (JSON)."""
    try:
        _, body = _client(url, payments=True).get("/tables/payments/summary/", {})
    except WorkerError as exc:
        raise _fail(exc) from None
    typer.echo(json.dumps(json.loads(body), indent=2))


tables_app = typer.Typer(help="The stream tables as files for analysts' tools.", no_args_is_help=True)


class Format(str, Enum):
    parquet = "parquet"
    csv = "csv"


@tables_app.command()
def export(
    table: Annotated[str, typer.Argument(help="payments, windows-minute, windows-hour, windows-rolling or users.")],
    format_: Annotated[Format, typer.Option("--format", help="parquet (needs paystream[analytics]) or csv.")]
    = Format.parquet,
    out: Annotated[Optional[Path], typer.Option(help="File to write (default <table>.<format>).",
                                                show_default=False)] = None,
    url: Url = None,
) -> None:
    """Write a snapshot of a table from every partition; each partition is read at one moment, and the
    changelog offset it reflects is kept in <file>.manifest.json (and in the Parquet file's metadata)."""
    from tables.export import EXPORTS, ExportFailed, write_export

    if table not in EXPORTS:
        raise _fail(ValueError(f"no table {table!r}; choose from {', '.join(EXPORTS)}"))
    target = out or Path(f"{table}.{format_.value}")
    try:
        lines = _client(url, payments=table == "payments").lines(f"/analytics/export/{table}/")
        manifest = write_export(table, lines, format_.value, target)
    except (WorkerError, ExportFailed) as exc:
        raise _fail(exc) from None
    typer.echo(f"{target}: {manifest['rows']} rows of {table} from {manifest['partitions']} partitions "
               f"(manifest: {target}.manifest.json)", err=True)


def register(app: typer.Typer) -> None:
    app.add_typer(query, name="query")
    app.add_typer(tables_app, name="tables")
