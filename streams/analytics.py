"""Analytics in the worker: agents that count payment events, and the internal pages analysts query.

Why in the worker app and not an app of its own: the events topic has the
commands topic's partitions and keys, so Faust gives each worker the same
partitions of both, the queries sit beside the payments table they also
read, and there is no process more to run. The payment path is not slowed by
it: the counting is its own agent on the events topic, so the command agent
never waits on it, and a slow count only lets events queue on their topic.

Answers from every partition: a worker answering a query asks every worker
that holds a partition of the table (Faust's assignment says which, at
their canonical URLs) for its share, adds the shares, and answers only when
every partition answered exactly once (503 `incomplete_answer` otherwise, for
instance mid-rebalance); a per-user query goes to the worker holding that
user (Faust's table routing). Every page needs the internal token.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
import faust
from aiohttp import web
from faust.web import Request, Response, View
from prometheus_client import Counter

from paystream.domain.errors import InvalidRequest, PaymentError, Unavailable
from paystream.observability.logs import get_logger
from paystream.settings import Settings
from streams.dead_letters import DeadLetters, headers_of
from streams.web import internal
from tables import queries
from tables.aggregates import counted, epoch_s
from tables.analytics import AnalyticsTables, PartitionSnapshot
from tables.export import EXPORTS
from tables.window_queries import (
    COLUMNS,
    HOUR,
    MINUTE,
    ROLLING,
    USER_COLUMNS,
    Partials,
    WindowQuery,
    check_complete,
    rows,
    to_csv,
    user_rows,
)

log = get_logger("paystream.analytics")
EVENTS = Counter("paystream_analytics_events", "Payment events read by the analytics agent, by outcome.",
                 ["outcome"])
EXPORT_TABLES = {"windows-minute": MINUTE, "windows-hour": HOUR, "windows-rolling": ROLLING}


def _error(view: View, exc: PaymentError, status: int) -> Response:
    return view.json({"error": exc.as_dict()}, status=status)


class Cluster:
    """Which worker holds which partitions of a table, and each one's share of an answer."""

    def __init__(self, app: faust.App, settings: Settings) -> None:
        self.app = app
        self.headers = {"Authorization": f"Bearer {settings.internal_token.get_secret_value()}"}

    @property
    def me(self) -> str:
        return str(self.app.conf.canonical_url).rstrip("/")

    def ready(self) -> None:
        if self.app.rebalancing or not self.app.tables.recovery.completed.is_set():
            raise Unavailable("rebalancing", "the workers are sharing out partitions; ask again in a few seconds")

    def owners(self, table: faust.Table) -> dict[str, list[int]]:
        """{worker URL: partitions of the table it holds}, from the last assignment."""
        self.ready()
        topic = table.changelog_topic.get_topic_name()
        owners = {url.rstrip("/"): sorted(topics.get(topic, []))
                  for url, topics in self.app.router.table_metadata(table.name).items()}
        return {url: partitions for url, partitions in owners.items() if partitions}

    async def get_json(self, url: str, path: str, params: dict[str, str]) -> dict:
        try:
            async with self.app.http_client.get(f"{url}{path}", params=params, headers=self.headers,
                                                timeout=aiohttp.ClientTimeout(total=30)) as response:
                body = await response.json(content_type=None)
                if response.status != 200:
                    raise Unavailable("worker_unavailable", f"worker {url} answered {response.status}: "
                                                            f"{body.get('error', {}).get('message', body)}")
                return body
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise Unavailable("worker_unavailable", f"worker {url} did not answer: {exc!r}") from None

    async def lines(self, url: str, path: str) -> AsyncIterator[list]:
        try:
            async with self.app.http_client.get(f"{url}{path}", headers=self.headers,
                                                timeout=aiohttp.ClientTimeout(total=None, sock_read=60)) as response:
                if response.status != 200:
                    raise Unavailable("worker_unavailable", f"worker {url} answered {response.status}")
                async for line in response.content:
                    if line.strip():
                        yield json.loads(line)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise Unavailable("worker_unavailable", f"worker {url} did not answer: {exc!r}") from None


def install(app: faust.App, settings: Settings, events_topic: faust.TopicT, payments: faust.Table) -> AnalyticsTables:
    """The analytics agents and pages, on the worker app."""
    tables = AnalyticsTables(app, settings)
    cluster = Cluster(app, settings)
    dead_letters = DeadLetters(app, settings, "analytics")
    # Events that feed per-user totals, keyed by user id: each user's totals then live in one partition.
    by_user = app.topic(f"{settings.worker_id}-analytics-by-user", key_serializer="json", value_serializer="raw",
                        partitions=settings.payment_topic_partitions, internal=True)

    @app.agent(events_topic, name="analytics.count_events")
    async def count_events(stream):
        async for event, changed in dead_letters.readable(stream, "events"):
            payment, message = changed.payment, event.message
            if not counted(payment):
                EVENTS.labels("step").inc()
                continue
            if tables.is_repeat(payment):
                EVENTS.labels("repeat").inc()
                continue
            tables.count(payment, epoch_s(changed.at), message.partition, message.offset)
            # Sent now (force), not held until this event's offset is committed (Faust's default).
            await by_user.send(key=payment.user_id, value=event.value, force=True,
                               headers=[("source", f"{message.partition}:{message.offset}".encode())])
            tables.counted(payment)
            EVENTS.labels("counted").inc()

    @app.agent(by_user, name="analytics.count_per_user")
    async def count_per_user(stream):
        async for event, changed in dead_letters.readable(stream, "events"):
            source, _, offset = headers_of(event).get("source", "").partition(":")
            if not offset.isdigit():
                await dead_letters.put(event, "no source header (events partition:offset)")
                continue
            tables.count_for_user(changed.payment, source, int(offset))

    # --- windowed queries ---------------------------------------------------------------------
    def parse(request: Request) -> WindowQuery:
        return WindowQuery.parse(dict(request.query), datetime.now(UTC).timestamp())

    async def local_partials(query: WindowQuery) -> Partials:
        cluster.ready()
        return await tables.read_partials(query)

    @app.page("/analytics/windows/")
    class Windows(View):
        """A view of the windowed tables over a time range, from every partition (JSON, or CSV with format=csv)."""

        @internal(settings)
        async def get(self, request: Request) -> Response:
            try:
                query = parse(request)
            except InvalidRequest as exc:
                return _error(self, exc, 422)
            table = tables.windows[query.table].table
            try:
                owners = cluster.owners(table)
                total = Partials()
                for url, _partitions in sorted(owners.items()):
                    share = await local_partials(query) if url == cluster.me else Partials.from_dict(
                        await cluster.get_json(url, "/analytics/windows/local/", query.params()))
                    total.merge(share)
                missing = check_complete(total, table.partitions)
                if missing:
                    raise Unavailable("incomplete_answer", f"partitions {missing} did not answer; ask again")
            except ValueError as exc:  # a partition answered twice: the assignment moved under us
                return _error(self, Unavailable("incomplete_answer", f"{exc}; ask again"), 503)
            except Unavailable as exc:
                return _error(self, exc, 503)
            headers = {"X-Paystream-Workers": str(len(owners))}
            found = rows(query, total)
            if request.query.get("format") == "csv":
                return self.text(to_csv(COLUMNS[query.view], found), content_type="text/csv", headers=headers)
            return self.json({"query": query.describe(), "partitions": table.partitions, "rows": found},
                             headers=headers)

    @app.page("/analytics/windows/local/")
    class LocalWindows(View):
        """This worker's share of a windowed query (what /analytics/windows/ gathers)."""

        @internal(settings)
        async def get(self, request: Request) -> Response:
            try:
                return self.json((await local_partials(parse(request))).as_dict())
            except InvalidRequest as exc:
                return _error(self, exc, 422)
            except Unavailable as exc:
                return _error(self, exc, 503)

    # --- per-user totals: routed to the worker holding the user ------------------------------
    @app.page("/analytics/users/{user_id}/")
    class UserTotals(View):
        """One user's totals per currency, answered by the worker holding that user."""

        @internal(settings)
        @app.table_route(table=tables.users, match_info="user_id")
        async def get(self, request: Request, user_id: str) -> Response:
            found = user_rows(user_id, tables.users.get(user_id))
            if request.query.get("format") == "csv":
                return self.text(to_csv(USER_COLUMNS, found), content_type="text/csv")
            return self.json({"user_id": user_id, "rows": found})

    # --- the payments summary, from every partition --------------------------------------------
    def local_summary() -> dict:
        cluster.ready()
        partitions = tables.active_partitions(payments)
        return {"partitions": sorted(partitions),
                "summary": queries.summary_partial(payments.values(), datetime.now(UTC))}

    @app.page("/tables/payments/summary/")
    class PaymentsSummary(View):
        """Counts by state, money taken per currency, and payments stuck in flight, over every partition."""

        @internal(settings)
        async def get(self, request: Request) -> Response:
            try:
                shares = [local_summary() if url == cluster.me else
                          await cluster.get_json(url, "/tables/payments/summary/local/", {})
                          for url in sorted(cluster.owners(payments))]
            except Unavailable as exc:
                return _error(self, exc, 503)
            answered = sorted(p for share in shares for p in share["partitions"])
            if answered != list(range(payments.partitions)):
                return _error(self, Unavailable("incomplete_answer", f"partitions answered: {answered}; ask "
                                                                     "again"), 503)
            return self.json(queries.merge_summaries(share["summary"] for share in shares))

    @app.page("/tables/payments/summary/local/")
    class LocalPaymentsSummary(View):
        @internal(settings)
        async def get(self, request: Request) -> Response:
            try:
                return self.json(local_summary())
            except Unavailable as exc:
                return _error(self, exc, 503)

    # --- exports: a snapshot of each partition, streamed as JSON lines --------------------------
    def export_table(name: str) -> faust.Table:
        if name == "payments":
            return payments
        if name == "users":
            return tables.users
        return tables.windows[EXPORT_TABLES[name]].table

    async def local_export(name: str) -> AsyncIterator[list]:
        """["partition", {partition, offset}] then ["row", {...}] for each row, per partition held here."""
        cluster.ready()
        table = export_table(name)
        rows_of = EXPORTS[name].rows
        for partition in sorted(tables.active_partitions(table)):
            snapshot = PartitionSnapshot(table, partition)
            yield ["partition", {"partition": partition, "offset": snapshot.offset}]
            async for key, value in snapshot.records():
                for row in rows_of(key, value, partition):
                    yield ["row", row]

    async def stream(request: Request, lines: AsyncIterator[list]) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        try:
            async for line in lines:
                await response.write(json.dumps(line).encode() + b"\n")
        except PaymentError as exc:
            await response.write(json.dumps(["error", exc.as_dict()]).encode() + b"\n")
        await response.write_eof()
        return response

    async def gathered_export(name: str) -> AsyncIterator[list]:
        table = export_table(name)
        offsets: dict[int, int | None] = {}
        for url in sorted(cluster.owners(table)):
            if url == cluster.me:
                lines, done = local_export(name), True
            else:
                lines, done = cluster.lines(url, f"/analytics/export/{name}/local/"), False
            async for kind, body in lines:
                if kind == "done":
                    done = True
                    continue
                if kind == "partition":
                    if body["partition"] in offsets:
                        raise Unavailable("incomplete_answer", f"partition {body['partition']} answered twice")
                    offsets[body["partition"]] = body["offset"]
                elif kind == "error":
                    raise Unavailable(body["code"], body["message"])
                yield [kind, body]
            if not done:
                raise Unavailable("incomplete_answer", f"worker {url} stopped mid-export; export again")
        missing = sorted(set(range(table.partitions)) - set(offsets))
        if missing:
            raise Unavailable("incomplete_answer", f"partitions {missing} did not answer; export again")
        yield ["end", {"table": name, "partitions": table.partitions,
                       "offsets": {str(p): offsets[p] for p in sorted(offsets)}}]

    async def export_response(view: View, request: Request, name: str, lines: AsyncIterator[list]) -> Response:
        if name not in EXPORTS:
            return _error(view, InvalidRequest("invalid_table", f"tables: {', '.join(EXPORTS)}", "table"), 404)
        try:
            cluster.ready()
        except Unavailable as exc:
            return _error(view, exc, 503)
        return await stream(request, lines)

    @app.page("/analytics/export/{name}/")
    class Export(View):
        """A snapshot of a table from every partition, as JSON lines ending with ["end", offsets]."""

        @internal(settings)
        async def get(self, request: Request, name: str) -> Response:
            return await export_response(self, request, name, gathered_export(name))

    @app.page("/analytics/export/{name}/local/")
    class LocalExport(View):
        """This worker's partitions of a table (what /analytics/export/ gathers)."""

        @internal(settings)
        async def get(self, request: Request, name: str) -> Response:
            async def lines():
                async for line in local_export(name):
                    yield line
                yield ["done", {}]

            return await export_response(self, request, name, lines())

    return tables
