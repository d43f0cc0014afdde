"""The dev stack's commands, added to `paystream` through its `paystream.commands` entry point, all
under one group, `paystream dev`: `stack` and `pipeline` (up / down / status), `apikey` (the development
key), `where`, `scale`, `autoscale`, `demo`, `bench`, `chaos` and `settings`. `paystream --help` lists
production commands only; the old top-level names stay as hidden aliases so that scripts keep working.
"""


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


def _service_group(app: typer.Typer, name: str, help_: str, group_key: str, hidden: bool = False) -> None:
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

        kind = manager.PipelineStack if group_key == "pipeline" else manager.Stack
        return kind(get_dev_settings(), say=lambda line: typer.echo(line, err=True), types=types)

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

    if group_key == "stack":
        _failover_commands(group)
    app.add_typer(group, name=name, hidden=hidden)


def _failover_commands(group: typer.Typer) -> None:
    Service = Annotated[str, typer.Argument(help="The service: couchbase (the local cluster).")]
    Node = Annotated[Optional[str], typer.Argument(help="Node number (1..N) or id.", show_default=False)]

    def cluster(service: str):
        from devstack.settings import get_dev_settings
        from devstack.stack.couchbase_cluster import CouchbaseCluster

        if service != "couchbase":
            raise _fail(f"failover is for couchbase only, not {service}")
        return CouchbaseCluster(get_dev_settings())

    def show(nodes: list[dict]) -> None:
        for n in nodes:
            typer.echo(f"node {n['number']}  {n['id']}  kv 127.0.0.1:{n['kv_port']}  {n['state']}")

    @group.command()
    def failover(service: Service, node: Node = None) -> None:
        """Fail a node of the local cluster over (default: the last active one): its replicas become
        active, its ports close, the SDKs follow the new map."""
        from devstack.stack.errors import StackError

        try:
            target = cluster(service).failover(node)
            typer.echo(f"failed over node {target['number']} ({target['id']})", err=True)
            show(cluster(service).nodes())
        except StackError as exc:
            raise _fail(exc) from None

    @group.command()
    def recover(service: Service, node: Node = None) -> None:
        """Add failed-over nodes back (default: all) and rebalance."""
        from devstack.stack.errors import StackError

        try:
            for target in cluster(service).recover(node):
                typer.echo(f"recovered node {target['number']} ({target['id']})", err=True)
            show(cluster(service).nodes())
        except StackError as exc:
            raise _fail(exc) from None


def apikey() -> None:
    """Print the development API key (account `dev`): made once and kept in .env, registered again in a
    fresh Redis. Keys for real accounts: `paystream apikey create`."""
    from devstack.dev_key import dev_key_now
    from devstack.settings import get_dev_settings

    key, created = dev_key_now(get_dev_settings())
    if created:
        typer.echo("created a development API key (account `dev`) in .env", err=True)
    typer.echo(key)


def where() -> None:
    """Where the running paystream answers: the API (with the development key) and the monitor."""
    from devstack.dev_key import dev_key_now
    from devstack.settings import get_dev_settings

    settings = get_dev_settings()
    key, _ = dev_key_now(settings)
    typer.echo(f"paystream is running: API at http://{settings.ingress_host}:{settings.ingress_port} and "
               f"https://{settings.ingress_host}:{settings.balancer_https_port} (HAProxy, development certificate "
               f"{settings.state_dir / 'balancer' / 'dev-cert.pem'}) with key {key}")
    typer.echo(f"HAProxy's stats page: http://{settings.ingress_host}:{settings.balancer_stats_port}/")
    typer.echo(f"status page, /health and /metrics of the monitor: http://127.0.0.1:{settings.monitor_port}/")


def scale(
    counts: Annotated[list[str], typer.Argument(help="KIND=N for ingress, worker or sinks, e.g. ingress=3 worker=2.",
                                                show_default=False)],
) -> None:
    """Change how many ingress, worker and sinks processes run, at runtime: new ones join (the balancer,
    the consumer groups) once they answer; leaving ones are drained first, then stopped."""
    from devstack import scaling
    from devstack.settings import get_dev_settings
    from devstack.stack.errors import StackError

    try:
        scaling.scale(get_dev_settings(), scaling.parse(counts), say=lambda line: typer.echo(line, err=True))
    except StackError as exc:
        raise _fail(exc) from None


def autoscale(
    readings: Annotated[Optional[int], typer.Option(help="Stop after this many readings (default: run until "
                                                         "interrupted).", show_default=False)] = None,
) -> None:
    """Scale ingress (on its CPU) and workers (on their consumer lag) between the configured bounds,
    from the heartbeats the monitor has; each decision goes on the alerts topic and in the log."""
    import asyncio

    from devstack.autoscale.run import run
    from devstack.settings import get_dev_settings

    try:
        asyncio.run(run(get_dev_settings(), say=lambda line: typer.echo(line, err=True), readings=readings))
    except KeyboardInterrupt:
        pass


def demo(
    provider: Annotated[str, typer.Option(help="The provider to pay through: stripe, or paypal (the stand-in).")
                        ] = "stripe",
) -> None:
    """Run one complete payment against the running system and print each step."""
    if provider not in ("stripe", "paypal"):
        raise _fail(f"--provider is stripe or paypal, not {provider}")
    import asyncio

    from devstack.demo import run_demo
    from devstack.dev_key import dev_key
    from devstack.settings import get_dev_settings

    settings = get_dev_settings()

    async def demo_with_dev_key() -> None:
        key, _ = await dev_key(settings)
        await run_demo(settings, key, typer.echo, provider)

    try:
        asyncio.run(demo_with_dev_key())
    except (RuntimeError, OSError) as exc:
        raise _fail(f"{exc} (is it running? `make run`)") from None


def bench(
    suite: Annotated[str, typer.Argument(help="receipts | payments | refunds | paypal | mixed | scale | balancer | standin | "
                                                 "bulkheads | all")] = "all",
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
    command = "paystream dev bench " + suite + (" --quick" if quick else "")
    try:
        report = run(suites, quick, keep_stack, base, command, say=lambda line: typer.echo(line, err=True))
    except StackError as exc:
        raise _fail(exc) from None
    if suite == "all" and not quick and out is None:
        typer.echo(f"published {publish(report, Path.cwd())}", err=True)
    typer.echo(str(report))


def chaos(
    faults: Annotated[Optional[str], typer.Option(help="Comma-separated faults, in order (default: all).")] = None,
    short: Annotated[bool, typer.Option("--short", help="The short run of `make test`.")] = False,
    rate: Annotated[Optional[float], typer.Option(help="Payments started per second (4; 3 with --short).",
                                                  show_default=False)] = None,
    spacing: Annotated[float, typer.Option(help="Seconds of load between a recovery and the next fault.")] = 10.0,
    refunds: Annotated[bool, typer.Option(help="Refund each receipted payment (all; part then the rest; three "
                                               "at once; none) while the faults hit.")] = True,
    paypal_every: Annotated[int, typer.Option(help="One payment in this many through the PayPal stand-in (0: "
                                                   "none; none in a run with stop-start).")] = 4,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    markdown: Annotated[Optional[Path], typer.Option(help="Also write the report as Markdown here "
                                                          "(RELIABILITY.md).")] = None,
) -> None:
    """Payments and refunds from retrying clients while each process and service fails in turn; then
    reconcile against the providers' own records and print the figures (exit 1 unless every bad one is 0)."""
    import asyncio

    from devstack.chaos.faults import ALL, SHORT
    from devstack.chaos.run import Chaos, Plan, table, with_chaos_key
    from devstack.settings import get_dev_settings

    chosen = faults.split(",") if faults else list(SHORT if short else ALL)
    unknown = set(chosen) - set(ALL)
    if unknown:
        raise _fail(f"unknown fault(s) {', '.join(sorted(unknown))}; known: {', '.join(ALL)}")
    plan = Plan(faults=chosen, rate=rate or (3.0 if short else 4.0), spacing_s=3.0 if short else spacing, warmup_s=3.0 if short else 5.0,
                hold_s=5.0 if short else 10.0, refunds=refunds, paypal_every=paypal_every)
    settings = get_dev_settings()

    async def run():
        return await with_chaos_key(settings, lambda key: Chaos(
            settings, key, plan, say=lambda line: typer.echo(line, err=True)).run())

    report = asyncio.run(run())
    typer.echo(json.dumps(report.as_dict(), indent=2) if as_json else table(report))
    if markdown is not None:
        from datetime import UTC, datetime

        from devstack.bench.core import git_commit
        from devstack.bench.report import machine
        from devstack.chaos.run import markdown as as_markdown

        command = "paystream dev chaos" + (f" --faults {faults}" if faults else "") + (" --short" if short else "") \
            + f" --markdown {markdown}"
        markdown.write_text(as_markdown(report, command, git_commit(Path.cwd()), machine(),
                                        datetime.now(UTC).isoformat(timespec="seconds")))
    if not report.ok:
        raise typer.Exit(code=1)


def dev_markdown() -> str:
    """The dev stack's own settings table (docs/dev-settings.md)."""
    from devstack.settings import DEV_GROUPS, DevSettings
    from paystream.settings import Settings
    from paystream.settings_table import markdown

    return markdown(DevSettings, DEV_GROUPS, "Dev stack settings",
                    "Generated by `paystream dev settings --markdown > docs/dev-settings.md` from the fields of "
                    "`devstack/settings.py` (a unit test keeps this file equal to the command's output). Read "
                    "like paystream's own ([settings.md](settings.md)): `PAYSTREAM_<NAME>` or `.env`.",
                    inherited_from=Settings)


def settings(
    markdown: Annotated[bool, typer.Option("--markdown", help="Print the table (docs/dev-settings.md) instead of "
                                                              "the values in effect.")] = False,
) -> None:
    """The dev stack's own settings: the values in effect here, or with --markdown the documented table."""
    from devstack.settings import get_dev_settings
    from paystream.settings import Settings
    from paystream.settings_table import values

    if markdown:
        typer.echo(dev_markdown(), nl=False)
        return
    typer.echo("\n".join(values(get_dev_settings(), inherited_from=Settings)))


def register(app: typer.Typer) -> None:
    """The `paystream.commands` entry point: the dev stack's commands under `paystream dev`, and under
    their old top-level names as hidden aliases (scripts, tests and older branches call those)."""
    dev = typer.Typer(help="The local development stack, demo, benchmarks and chaos runs (devstack/; not "
                           "part of a production install).", no_args_is_help=True)
    for target, hidden in ((dev, False), (app, True)):
        _service_group(target, "stack", "The local services: Kafka, Couchbase, Redis, the Stripe sandbox.", "stack",
                       hidden)
        _service_group(target, "pipeline", "paystream's own processes in the background: monitor, worker, "
                       "analytics, sinks, ingress.", "pipeline", hidden)
        for command in (where, scale, autoscale, demo, bench, chaos):
            target.command(hidden=hidden)(command)
    dev.command()(apikey)
    dev.command()(settings)
    app.add_typer(dev, name="dev")
