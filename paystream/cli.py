"""The `paystream` command."""


import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from paystream.demo import run_demo
from paystream.settings import get_settings
from paystream.stack import StackError
from paystream.stack.manager import (
    PIPELINE_NAMES, PIPELINE_TYPES, SERVICE_NAMES, SERVICE_TYPES, ServiceStatus, Stack, as_dicts,
)

app = typer.Typer(help="paystream: payment processing on Kafka and Faust.", no_args_is_help=True,
                  pretty_exceptions_enable=False)


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


def _service_group(name: str, help_: str, types, names) -> typer.Typer:
    """up / down / status for one group of managed processes."""
    group = typer.Typer(help=help_, no_args_is_help=True)
    Names = Annotated[
        Optional[list[str]],
        typer.Argument(help=f"Which to act on (default: all of {', '.join(names)}).", show_default=False),
    ]

    def stack() -> Stack:
        return Stack(get_settings(), say=lambda line: typer.echo(line, err=True), types=types)

    @group.command()
    def up(services: Names = None) -> None:
        """Install what is missing, start what is not running, wait until each answers."""
        try:
            rows = stack().up(services)
        except StackError as exc:
            raise _fail(exc) from None
        typer.echo(_table(rows))
        if not all(r.healthy for r in rows):
            raise typer.Exit(code=1)

    @group.command()
    def down(
        services: Names = None,
        purge: Annotated[bool, typer.Option("--purge", help="Also delete their data and logs.")] = False,
    ) -> None:
        """Stop what this command started (by the recorded pids)."""
        try:
            stack().down(services, purge=purge)
        except StackError as exc:
            raise _fail(exc) from None

    @group.command()
    def status(
        services: Names = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts and tests.")] = False,
    ) -> None:
        """Probe each one; exit 1 when any is unhealthy."""
        try:
            rows = stack().status(services)
        except StackError as exc:
            raise _fail(exc) from None
        typer.echo(json.dumps(as_dicts(rows), indent=2) if as_json else _table(rows))
        if not all(r.healthy for r in rows):
            raise typer.Exit(code=1)

    app.add_typer(group, name=name)
    return group


_service_group("stack", "The local services: Kafka, Couchbase, Redis, the Stripe sandbox.",
               SERVICE_TYPES, SERVICE_NAMES)
_service_group("pipeline", "paystream's own processes in the background: monitor, worker, sinks, ingress.",
               PIPELINE_TYPES, PIPELINE_NAMES)


def _run_faust(component: str, faust_app) -> None:
    from faust.worker import Worker

    from paystream.observability import logs

    level = get_settings().log_level
    config = logs.configure(component, level, apply=False)
    Worker(faust_app, loglevel=level, quiet=True, logging_config=config).execute_from_commandline()


@app.command()
def worker() -> None:
    """Run the payment worker in the foreground (Faust agents and the payments table)."""
    from streams.worker import app as faust_app

    _run_faust("worker", faust_app)


@app.command()
def sinks() -> None:
    """Run the sink connectors in the foreground: events and receipts into Couchbase and Redis."""
    from streams.sinks import app as faust_app

    _run_faust("sinks", faust_app)


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
def bench(
    suite: Annotated[str, typer.Argument(help="receipts | payments | scale | all")] = "all",
    quick: Annotated[bool, typer.Option("--quick", help="A smoke run: two steps per suite, 2 s each.")] = False,
    keep_stack: Annotated[bool, typer.Option("--keep-stack", help="Leave the benchmark stack running.")] = False,
    out: Annotated[Optional[Path], typer.Option(help="Results folder (default bench/results, "
                                                     "test-output/bench with --quick).")] = None,
) -> None:
    """Benchmark paystream on its own throwaway stack and write a report (Markdown and PNG plots)."""
    from bench.run import SUITES, publish, run

    suites = list(SUITES) if suite == "all" else [suite]
    if not set(suites) <= set(SUITES):
        raise _fail(f"unknown suite {suite!r}; choose from {', '.join(SUITES)} or all")
    base = out or Path("test-output/bench" if quick else "bench/results")
    command = "paystream bench " + suite + (" --quick" if quick else "")
    try:
        report = run(suites, quick, keep_stack, base, command, say=lambda line: typer.echo(line, err=True))
    except StackError as exc:
        raise _fail(exc) from None
    if suite == "all" and not quick and out is None:
        typer.echo(f"published {publish(report, Path.cwd())}", err=True)
    typer.echo(str(report))


@app.command()
def apikey() -> None:
    """Print a development API key, creating one in .env (git-ignored) on first use."""
    from paystream.apikeys import ensure_dev_key

    key, created = ensure_dev_key(get_settings())
    if created:
        typer.echo("created a development API key in .env", err=True)
    typer.echo(key)


@app.command()
def demo() -> None:
    """Run one complete payment against the running system and print each step."""
    import asyncio

    from paystream.apikeys import ensure_dev_key

    settings = get_settings()
    key, _ = ensure_dev_key(settings)
    try:
        asyncio.run(run_demo(settings, key, typer.echo))
    except (RuntimeError, OSError) as exc:
        raise _fail(f"{exc} (is it running? `make run`)") from None


if __name__ == "__main__":
    app()
