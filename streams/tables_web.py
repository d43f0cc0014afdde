"""Answers from every partition, for the internal pages of a Faust app's tables (worker and analytics).

The process asked gathers every process's share: Faust's assignment says
which process (at its canonical URL) holds which partitions of a table; each
is asked for its share and the answer stands only when every partition
answered exactly once (503 `incomplete_answer` otherwise, for instance
mid-rebalance). Exports stream each partition's snapshot as JSON lines. Every
page needs the internal token (streams/web.py).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime

import aiohttp
import faust
from aiohttp import web
from faust.web import Request, Response, View

from paystream.domain.errors import InvalidRequest, PaymentError, Unavailable
from paystream.settings import Settings
from streams.web import internal
from tables import queries
from tables.analytics.tables import PartitionSnapshot, active_partitions
from tables.export import EXPORTS


def error(view: View, exc: PaymentError, status: int) -> Response:
    return view.json({"error": exc.as_dict()}, status=status)


class Cluster:
    """Which process holds which partitions of a table, and each one's share of an answer."""

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
        """{process URL: partitions of the table it holds}, from the last assignment."""
        self.ready()
        topic = table.changelog_topic.get_topic_name()
        owners = {url.rstrip("/"): sorted(topics.get(topic, []))
                  for url, topics in self.app.router.table_metadata(table.name).items()}
        return {url: partitions for url, partitions in owners.items() if partitions}

    async def get_json(self, url: str, path: str, params: Mapping[str, str]) -> dict:
        try:
            async with self.app.http_client.get(f"{url}{path}", params=params, headers=self.headers,
                                                timeout=aiohttp.ClientTimeout(total=30)) as response:
                body = await response.json(content_type=None)
                if response.status != 200:
                    raise Unavailable("worker_unavailable", f"{url} answered {response.status}: "
                                                            f"{body.get('error', {}).get('message', body)}")
                return body
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise Unavailable("worker_unavailable", f"{url} did not answer: {exc!r}") from None

    async def lines(self, url: str, path: str) -> AsyncIterator[list]:
        try:
            async with self.app.http_client.get(f"{url}{path}", headers=self.headers,
                                                timeout=aiohttp.ClientTimeout(total=None, sock_read=60)) as response:
                if response.status != 200:
                    raise Unavailable("worker_unavailable", f"{url} answered {response.status}")
                async for line in response.content:
                    if line.strip():
                        yield json.loads(line)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise Unavailable("worker_unavailable", f"{url} did not answer: {exc!r}") from None


async def _stream(request: Request, lines: AsyncIterator[list]) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
    await response.prepare(request)
    try:
        async for line in lines:
            await response.write(json.dumps(line).encode() + b"\n")
    except PaymentError as exc:
        await response.write(json.dumps(["error", exc.as_dict()]).encode() + b"\n")
    await response.write_eof()
    return response


def export_pages(app: faust.App, settings: Settings, cluster: Cluster,
                 tables: Callable[[], Mapping[str, faust.Table]]) -> None:
    """GET /analytics/export/{name}/ (gathered) and .../local/ (this process's partitions) for `tables()`."""

    async def local_export(name: str) -> AsyncIterator[list]:
        """["partition", {partition, offset}] then ["row", {...}] for each row, per partition held here."""
        cluster.ready()
        table = tables()[name]
        rows_of = EXPORTS[name].rows
        for partition in sorted(active_partitions(app, table)):
            snapshot = PartitionSnapshot(table, partition)
            yield ["partition", {"partition": partition, "offset": snapshot.offset}]
            async for key, value in snapshot.records():
                for row in rows_of(key, value, partition):
                    yield ["row", row]

    async def gathered_export(name: str) -> AsyncIterator[list]:
        table = tables()[name]
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
                raise Unavailable("incomplete_answer", f"{url} stopped mid-export; export again")
        missing = sorted(set(range(table.partitions)) - set(offsets))
        if missing:
            raise Unavailable("incomplete_answer", f"partitions {missing} did not answer; export again")
        yield ["end", {"table": name, "partitions": table.partitions,
                       "offsets": {str(p): offsets[p] for p in sorted(offsets)}}]

    async def respond(view: View, request: Request, name: str, lines) -> Response:
        if name not in tables():
            return error(view, InvalidRequest("invalid_table", f"tables here: {', '.join(tables())}", "table"), 404)
        try:
            cluster.ready()
        except Unavailable as exc:
            return error(view, exc, 503)
        return await _stream(request, lines(name))

    @app.page("/analytics/export/{name}/")
    class Export(View):
        """A snapshot of a table from every partition, as JSON lines ending with ["end", offsets]."""

        @internal(settings)
        async def get(self, request: Request, name: str) -> Response:
            return await respond(self, request, name, gathered_export)

    @app.page("/analytics/export/{name}/local/")
    class LocalExport(View):
        """This process's partitions of a table (what /analytics/export/ gathers)."""

        @internal(settings)
        async def get(self, request: Request, name: str) -> Response:
            async def lines(name: str):
                async for line in local_export(name):
                    yield line
                yield ["done", {}]

            return await respond(self, request, name, lines)


def payments_pages(app: faust.App, settings: Settings, payments: faust.Table) -> None:
    """The worker's: the payments summary from every partition, and the payments table's export."""
    cluster = Cluster(app, settings)

    def local_summary() -> dict:
        cluster.ready()
        return {"partitions": sorted(active_partitions(app, payments)),
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
                return error(self, exc, 503)
            answered = sorted(p for share in shares for p in share["partitions"])
            if answered != list(range(payments.partitions)):
                return error(self, Unavailable("incomplete_answer", f"partitions answered: {answered}; ask "
                                                                    "again"), 503)
            return self.json(queries.merge_summaries(share["summary"] for share in shares),
                             headers={"X-Paystream-Workers": str(len(shares))})

    @app.page("/tables/payments/summary/local/")
    class LocalPaymentsSummary(View):
        @internal(settings)
        async def get(self, request: Request) -> Response:
            try:
                return self.json(local_summary())
            except Unavailable as exc:
                return error(self, exc, 503)

    export_pages(app, settings, cluster, lambda: {"payments": payments})
