"""The dev stack's commands, added to `paystream` through its `paystream.commands` entry point:
`stack` and `pipeline` (up / down / status), `demo` and `bench`."""


import json
from pathlib import Path
from typing import Annotated, Optional

import typer


def _fail(exc: Exception | str) -> typer.Exit:
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    return typer.Exit(code=1)


def _table(rows) -> str:
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


def _service_group(app: typer.Typer, name: str, help_: str, group_key: str) -> None:
    """up / down / status for one group of managed processes."""
    from devstack.stack import manager

    types = manager.GROUPS[group_key]
    names = tuple(t.name for t in types)
    group = typer.Typer(help=help_, no_args_is_help=True)
    Names = Annotated[
        Optional[list[str]],
        typer.Argument(help=f"Which to act on (default: all of {', '.join(names)}).", show_default=False),
    ]

    def stack() -> manager.Stack:
        from devstack.settings import get_dev_settings

        return manager.Stack(get_dev_settings(), say=lambda line: typer.echo(line, err=True), types=types)

    @group.command()
    def up(services: Names = None) -> None:
        """Install what is missing, start what is not running, wait until each answers."""
        try:
            rows = stack().up(services)
        except manager.StackError as exc:
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
        except manager.StackError as exc:
            raise _fail(exc) from None

    @group.command()
    def status(
        services: Names = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts and tests.")] = False,
    ) -> None:
        """Probe each one; exit 1 when any is unhealthy."""
        try:
            rows = stack().status(services)
        except manager.StackError as exc:
            raise _fail(exc) from None
        typer.echo(json.dumps(manager.as_dicts(rows), indent=2) if as_json else _table(rows))
        if not all(r.healthy for r in rows):
            raise typer.Exit(code=1)

    app.add_typer(group, name=name)


def demo() -> None:
    """Run one complete payment against the running system and print each step."""
    import asyncio

    from devstack.demo import run_demo
    from devstack.settings import get_dev_settings
    from paystream import bootstrap
    from paystream.apikeys import ensure_dev_key

    settings = get_dev_settings()

    async def demo_with_dev_key() -> None:
        store = bootstrap.api_key_store(settings)
        try:
            key, _ = await ensure_dev_key(settings, store)
        finally:
            await store.close()
        await run_demo(settings, key, typer.echo)

    try:
        asyncio.run(demo_with_dev_key())
    except (RuntimeError, OSError) as exc:
        raise _fail(f"{exc} (is it running? `make run`)") from None


def bench(
    suite: Annotated[str, typer.Argument(help="receipts | payments | scale | all")] = "all",
    quick: Annotated[bool, typer.Option("--quick", help="A smoke run: two steps per suite, 2 s each.")] = False,
    keep_stack: Annotated[bool, typer.Option("--keep-stack", help="Leave the benchmark stack running.")] = False,
    out: Annotated[Optional[Path], typer.Option(help="Results folder (default bench/results, "
                                                     "test-output/bench with --quick).")] = None,
) -> None:
    """Benchmark paystream on its own throwaway stack and write a report (Markdown and PNG plots)."""
    from devstack.bench.run import SUITES, publish, run
    from devstack.stack import StackError

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


def register(app: typer.Typer) -> None:
    """The `paystream.commands` entry point: add the dev stack's commands to `paystream`."""
    _service_group(app, "stack", "The local services: Kafka, Couchbase, Redis, the Stripe sandbox.", "stack")
    _service_group(app, "pipeline", "paystream's own processes in the background: monitor, worker, sinks, "
                   "ingress.", "pipeline")
    app.command()(demo)
    app.command()(bench)
