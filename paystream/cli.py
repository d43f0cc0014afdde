"""The `paystream` command."""

from __future__ import annotations

import json
import logging
from typing import Annotated, Optional

import typer

from paystream.settings import get_settings
from paystream.stack import StackError
from paystream.stack.manager import SERVICE_NAMES, ServiceStatus, Stack, as_dicts

app = typer.Typer(help="paystream: payment processing on Kafka and Faust.", no_args_is_help=True)
stack_app = typer.Typer(help="Run the local services: Kafka, Couchbase, Redis, the Stripe sandbox.",
                        no_args_is_help=True)
app.add_typer(stack_app, name="stack")

ServiceNames = Annotated[
    Optional[list[str]],
    typer.Argument(help=f"Services to act on (default: all of {', '.join(SERVICE_NAMES)}).",
                   show_default=False),
]


def _stack() -> Stack:
    return Stack(get_settings(), say=lambda line: typer.echo(line, err=True))


def _fail(exc: Exception) -> typer.Exit:
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    return typer.Exit(code=1)


def _table(rows: list[ServiceStatus]) -> str:
    header = ("SERVICE", "ADDRESS", "PID", "STATE", "HEALTH")
    cells = [header] + [
        (r.service, r.address, str(r.pid or "-"), r.state,
         "healthy" if r.healthy else f"unhealthy: {r.detail}")
        for r in rows
    ]
    widths = [max(len(c[i]) for c in cells) for i in range(len(header) - 1)]
    return "\n".join(
        "  ".join(c[i].ljust(widths[i]) for i in range(len(widths))) + "  " + c[-1] for c in cells
    )


@stack_app.command()
def up(services: ServiceNames = None) -> None:
    """Install what is missing, start what is not running, wait until each answers."""
    try:
        rows = _stack().up(services)
    except StackError as exc:
        raise _fail(exc) from None
    typer.echo(_table(rows))
    if not all(r.healthy for r in rows):
        raise typer.Exit(code=1)


@stack_app.command()
def down(
    services: ServiceNames = None,
    purge: Annotated[bool, typer.Option("--purge", help="Also delete the services' data and logs.")] = False,
) -> None:
    """Stop the services this stack started (by their recorded pids)."""
    try:
        _stack().down(services, purge=purge)
    except StackError as exc:
        raise _fail(exc) from None


@stack_app.command()
def status(
    services: ServiceNames = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts and tests.")] = False,
) -> None:
    """Probe every service; exit 1 when any is unhealthy."""
    try:
        rows = _stack().status(services)
    except StackError as exc:
        raise _fail(exc) from None
    typer.echo(json.dumps(as_dicts(rows), indent=2) if as_json else _table(rows))
    if not all(r.healthy for r in rows):
        raise typer.Exit(code=1)


def _run_faust(faust_app, loglevel: str) -> None:
    from faust.worker import Worker

    Worker(faust_app, loglevel=loglevel, quiet=True).execute_from_commandline()


@app.command()
def worker(loglevel: Annotated[str, typer.Option(help="Log level.")] = "info") -> None:
    """Run the payment worker (Faust agents and the payments table)."""
    from streams.worker import app as faust_app

    _run_faust(faust_app, loglevel)


@app.command()
def sinks(loglevel: Annotated[str, typer.Option(help="Log level.")] = "info") -> None:
    """Run the sink connectors: payment events and receipts into Couchbase and Redis."""
    from streams.sinks import app as faust_app

    _run_faust(faust_app, loglevel)


@app.command()
def ingress() -> None:
    """Run the HTTP API (startPayment, postPayment, getReceipt)."""
    from ingress.app import run

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    run(get_settings())


if __name__ == "__main__":
    app()
