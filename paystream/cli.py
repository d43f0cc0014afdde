"""The `paystream` command: run each process in the foreground, and small operator tools.

Other installed packages add commands through the `paystream.commands` entry
point group (the dev stack adds `stack`, `pipeline`, `demo` and `bench`).
"""

from __future__ import annotations

import json
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated

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
