"""The `paystream` command: run each process in the foreground, and small operator tools.

Other installed packages add commands through the `paystream.commands` entry
point group: the dev stack adds its own under `paystream dev` (stack, pipeline,
demo, bench, ...), so `paystream --help` lists production commands only.
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
from streams.dead_letters import cli as _dlq_cli

app = typer.Typer(help="paystream: payment processing on Kafka and Faust.", no_args_is_help=True,
                  pretty_exceptions_enable=False)


def _run_faust(component: str, module: str) -> None:
    import importlib

    from faust.worker import Worker

    from paystream import bootstrap
    from paystream.observability import logs

    settings = get_settings()
    bootstrap.ensure_topics(settings)
    entrypoint = importlib.import_module(module)
    faust_app = entrypoint.app
    from streams.app import internal_topic_specs

    bootstrap.create_topics(settings, internal_topic_specs(faust_app))
    # Applied now as well as by Faust's Worker below, so what runs before Faust logs like the rest.
    config = logs.configure(component, settings.log_level)
    if hasattr(entrypoint, "before_start"):  # e.g. the worker restores its table in bulk
        entrypoint.before_start()
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
    _run_faust("analytics", "tables.analytics.agents")


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

    from monitor.reconciliation.differences import reconcile as run
    from monitor.reconciliation.history import KafkaHistory
    from paystream import bootstrap

    settings = get_settings()

    async def once():
        provider = bootstrap.providers(settings)
        try:
            return await run(KafkaHistory.of(settings), provider, datetime.now(UTC),
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


apikey_app = typer.Typer(help="API keys: each belongs to an account; paystream keeps only their SHA-256.",
                         invoke_without_command=True)
app.add_typer(apikey_app, name="apikey")


def _with_key_store(work):
    """Run `work(store)` against the API-key store the settings name."""
    import asyncio

    from paystream import bootstrap

    async def run():
        store = bootstrap.api_key_store(get_settings())
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(run())


@apikey_app.callback()
def apikey(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand is not None:
        return
    # Without a subcommand: the old form of `paystream dev apikey` (the development key), where the dev stack
    # is installed, so that scripts written for it keep working; otherwise this group's help.
    dev = getattr(ctx.find_root().command, "commands", {}).get("dev")
    if dev is None or "apikey" not in dev.commands:
        typer.echo(ctx.get_help())
        raise typer.Exit()
    ctx.invoke(dev.commands["apikey"].callback)


@apikey_app.command("create")
def apikey_create(
    account: Annotated[str, typer.Option(help="The account the key belongs to (letters, digits, _ or -).")],
    rate_limit: Annotated[str | None, typer.Option(help="This key's own limit, e.g. 20/second "
                                                        "(default: PAYSTREAM_RATE_LIMIT).")] = None,
) -> None:
    """Make a key for ACCOUNT and print it: it is shown this once and stored only as a hash."""
    from paystream import apikeys

    try:
        key, record = _with_key_store(lambda store: apikeys.create(store, account, rate_limit))
    except ValueError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1) from None
    typer.echo(f"created {record.key_id} for account {record.account}; keep the key now, it is not shown again:",
               err=True)
    typer.echo(key)


@apikey_app.command("list")
def apikey_list(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Every key: id, account, first characters, creation time and limit (never the key)."""
    from dataclasses import asdict

    records = _with_key_store(lambda store: store.all())
    if as_json:
        typer.echo(json.dumps([{k: v for k, v in asdict(r).items() if k != "key_hash"} for r in records], indent=2))
        return
    for r in records:
        typer.echo(f"{r.key_id}  {r.account:<20}  {r.prefix}…  {r.created_at}  {r.rate_limit or 'default'}")


@apikey_app.command("revoke")
def apikey_revoke(key_id: Annotated[str, typer.Argument(help="The key's id, as `apikey list` shows it.")]) -> None:
    """Revoke a key: the next request with it is refused (401)."""
    if not _with_key_store(lambda store: store.revoke(key_id)):
        typer.secho(f"error: no key {key_id}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1)
    typer.echo(f"revoked {key_id}")


@app.command("forget-user")
def forget_user(
    account: Annotated[str, typer.Option(help="The account the user belongs to.")],
    user: Annotated[str, typer.Option(help="The user's id.")],
) -> None:
    """Erase a user's e-mail everywhere: delete their data key, so every sealed copy (topics kept forever,
    the worker's table, Couchbase, Redis) can never be read again (crypto-shredding)."""
    import asyncio

    from paystream import bootstrap
    from paystream.data_keys import JournaledDataKeys

    async def run() -> bool:
        settings = get_settings()
        store = await bootstrap.document_store(settings)
        journal = await bootstrap.data_key_journal(settings)
        try:
            return await JournaledDataKeys(store, journal).forget(account, user)
        finally:
            await journal.close()
            await store.close()

    forgotten = asyncio.run(run())
    typer.echo(f"forgot {user} of {account}: their e-mail can no longer be read anywhere" if forgotten else
               f"nothing to forget: no data key for {user} of {account}")


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


store = typer.Typer(help="The stores (Couchbase, the receipt cache), derived from the topics.", no_args_is_help=True)
app.add_typer(store, name="store")


@store.command()
def rebuild() -> None:
    """Replay the events and receipts topics into Couchbase and the receipt cache.

    Safe beside running sinks: a payment is never replaced by an older version of itself."""
    import asyncio

    from paystream import bootstrap

    settings = get_settings()

    async def run():
        rebuilder = await bootstrap.store_rebuild(settings)
        try:
            return await rebuilder.rebuild()
        finally:
            await rebuilder.store.close()
            await rebuilder.cache.close()

    done = asyncio.run(run())
    typer.echo(json.dumps({"records": done.records, "documents": done.documents, "index_entries": done.index_entries,
                           "unreadable": done.unreadable,
                           "seconds": round(done.seconds, 2), "documents_per_s": round(done.documents_per_s)}))


@app.command("settings")
def settings_command(
    markdown: Annotated[bool, typer.Option("--markdown", help="Print the settings table (docs/settings.md) "
                                                              "instead of the values in effect.")] = False,
) -> None:
    """Every setting: the values in effect here (secrets hidden), or with --markdown the documented table."""
    from paystream import settings_table

    if markdown:
        typer.echo(settings_table.product_markdown(), nl=False)
        return
    typer.echo("\n".join(settings_table.values(get_settings())))


_analyst_cli.register(app)
_dlq_cli.register(app)

for _plugin in entry_points(group="paystream.commands"):
    _plugin.load()(app)


if __name__ == "__main__":
    app()
