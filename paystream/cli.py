"""The `paystream` command: run each process in the foreground, and small operator tools.

Other installed packages add commands through the `paystream.commands` entry
point group (the dev stack adds `stack`, `pipeline`, `demo` and `bench`).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, Optional

import typer

from paystream import analyst_cli as _analyst_cli
from paystream.settings import get_settings

app = typer.Typer(help="paystream: payment processing on Kafka and Faust.", no_args_is_help=True,
                  pretty_exceptions_enable=False)


def _run_faust(component: str, module: str) -> None:
    import importlib

    from faust.worker import Worker

    from paystream import bootstrap
    from paystream.observability import logs

    settings = get_settings()
    bootstrap.ensure_topics(settings)
    faust_app = importlib.import_module(module).app
    from streams.app import internal_topic_specs

    bootstrap.create_topics(settings, internal_topic_specs(faust_app))
    config = logs.configure(component, settings.log_level, apply=False)
    Worker(faust_app, loglevel=settings.log_level, quiet=True, logging_config=config).execute_from_commandline()


@app.command()
def worker() -> None:
    """Run the payment worker in the foreground (Faust agents and the payments table)."""
    _run_faust("worker", "streams.worker")


@app.command()
def sinks() -> None:
    """Run the sinks in the foreground: events and receipts into Couchbase and Redis."""
    _run_faust("sinks", "streams.sinks")


@app.command()
def analytics() -> None:
    """Run the analytics in the foreground: windowed and per-user tables from the payment events."""
    _run_faust("analytics", "streams.analytics")


@app.command()
def ingress() -> None:
    """Run the HTTP API in the foreground (startPayment, postPayment, getReceipt)."""
    from ingress.app import run
    from paystream.observability import logs

    settings = get_settings()
    logs.configure("ingress", settings.log_level)
    run(settings)


@app.command()
def monitor() -> None:
    """Run the monitor in the foreground: heartbeats, probes, /health, /metrics, status page."""
    from monitor.app import run
    from paystream.observability import logs

    settings = get_settings()
    logs.configure("monitor", settings.log_level)
    run(settings)


def _moment(value: str | None) -> datetime | None:
    """An ISO 8601 time, or a span back from now: 90s, 15m, 2h, 7d."""
    if value is None:
        return None
    span = re.fullmatch(r"(\d+)([smhd])", value.strip())
    if span:
        seconds = int(span[1]) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[span[2]]
        return datetime.now(UTC) - timedelta(seconds=seconds)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter("an ISO 8601 time or a span such as 15m, 2h, 7d") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@app.command()
def reconcile(
    since: Annotated[Optional[str], typer.Option(help="Only payments changed since: an ISO 8601 time or a span "
                                                      "back from now (15m, 2h, 7d). Default: all of history.")] = None,
    settle: Annotated[Optional[float], typer.Option(help="Seconds after which a payment counts as settled "
                                                         "(default PAYSTREAM_RECONCILE_SETTLE_S).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Compare paystream's payments and receipts with the provider's records; exit 1 on any difference."""
    import asyncio

    from paystream import bootstrap
    from paystream.reconciliation import reconcile as run

    settings = get_settings()

    async def once():
        provider = bootstrap.provider(settings)
        try:
            return await run(bootstrap.payment_history(settings), provider, datetime.now(UTC),
                             settings.reconcile_settle_s if settle is None else settle, _moment(since))
        finally:
            await provider.close()

    report = asyncio.run(once())
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
    else:
        typer.echo(f"since {report.since or 'the beginning'}: {report.payments} payments, {report.receipts} "
                   f"receipts judged, {report.in_flight} in flight, {report.look_ups} provider look-ups")
        for kind, count in report.counts.items():
            typer.echo(f"  {kind:<22} {count}")
        for difference in report.differences:
            typer.echo(f"  {difference.kind}: {difference.payment_id}: {difference.detail}")
    if report.differences:
        raise typer.Exit(code=1)


@app.command()
def apikey() -> None:
    """Print a development API key, creating one in .env (git-ignored) on first use."""
    from paystream.apikeys import ensure_dev_key

    key, created = ensure_dev_key(get_settings())
    if created:
        typer.echo("created a development API key in .env", err=True)
    typer.echo(key)


@app.command()
def schemas(
    out: Annotated[Path, typer.Option(help="Folder to write <topic>.schema.json into.")] = Path("docs/schemas"),
) -> None:
    """Write the JSON Schema of every topic's messages (generated from the typed messages)."""
    from paystream.messages import json_schemas

    out.mkdir(parents=True, exist_ok=True)
    for topic, schema in json_schemas().items():
        path = out / f"{topic.replace('_', '-')}.schema.json"
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        typer.echo(str(path))


_analyst_cli.register(app)

for _plugin in entry_points(group="paystream.commands"):
    _plugin.load()(app)


if __name__ == "__main__":
    app()
