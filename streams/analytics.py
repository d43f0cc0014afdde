"""The analytics app: agents that count payment events into windowed and per-user tables, and the pages
analysts query (`paystream analytics`).

Why an app (and a process) of its own rather than agents in the worker:
measured with `paystream bench payments --quick`, counting inside the worker
app made every payment slower (p50 of a start or post from ~40 ms to
150-350 ms at 10 payments/s): the worker answers a client only after
flushing its producer, and a shared producer had the analytics' table
writes to flush as well. Here the analytics have their own consumer group,
producer and tables: a slow count, its rebalances or its table recovery only
let events wait on their topic, and the payment path never waits on them.

Answers from every partition: the process asked gathers every analytics
process's share (streams/tables_web.py); a user's totals are answered by the
process holding that user (Faust's table routing). Every page needs the
internal token.
"""

from __future__ import annotations

from datetime import UTC, datetime

from faust.web import Request, Response, View
from prometheus_client import Counter

from paystream.domain.errors import InvalidRequest, Unavailable
from paystream.observability.logs import get_logger
from paystream.settings import get_settings
from streams import observability
from streams.app import make_app
from streams.dead_letters import DeadLetters, headers_of
from streams.tables_web import Cluster, error, export_pages
from streams.web import internal
from tables.aggregates import counted, epoch_s, split_user_key, user_key
from tables.analytics import AnalyticsTables
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
EVENTS = Counter("paystream_analytics_events", "Payment events read by the analytics, by outcome.", ["outcome"])

settings = get_settings()
topics = settings.topics
app = make_app(settings.analytics_id, settings, settings.analytics_port)
tables = AnalyticsTables(app, settings)
cluster = Cluster(app, settings)
dead_letters = DeadLetters(app, settings, "analytics")

events_topic = app.topic(topics.events, key_serializer="raw", value_serializer="raw")
# Events that feed per-user totals, keyed by account and user: each user's totals then live in one partition.
by_user = app.topic(f"{settings.analytics_id}-by-user", key_serializer="json", value_serializer="raw",
                    partitions=settings.payment_topic_partitions, internal=True)
observability.install(app, "analytics", settings, settings.analytics_port, {topics.events, by_user.get_topic_name()})


@app.agent(events_topic)
async def count_events(stream):
    async for event, changed in dead_letters.readable(stream, "events"):
        # A count that keeps raising is tried a few times, then set aside: its partition moves on.
        await dead_letters.attempt(event, lambda: count_one(event, changed))


async def count_one(event, changed) -> None:
    """One event into the windows (safe to run again: a window counts an offset once)."""
    payment, message = changed.payment, event.message
    if not counted(payment):
        EVENTS.labels("step").inc()
        return
    if tables.is_repeat(payment):
        EVENTS.labels("repeat").inc()
        return
    tables.count(payment, epoch_s(changed.at), message.partition, message.offset)
    # Sent now (force), not held until this event's offset is committed (Faust's default).
    await by_user.send(key=user_key(payment.account, payment.user_id), value=event.value, force=True,
                       headers=[("source", f"{message.partition}:{message.offset}".encode())])
    tables.counted(payment)
    EVENTS.labels("counted").inc()


@app.agent(by_user)
async def count_per_user(stream):
    async for event, changed in dead_letters.readable(stream, "events"):
        source, _, offset = headers_of(event).get("source", "").partition(":")
        if not offset.isdigit():
            await dead_letters.put(event, "no source header (events partition:offset)")
            continue
        await dead_letters.attempt(event, lambda: _count_for_user(changed.payment, source, int(offset)))


async def _count_for_user(payment, source: str, offset: int) -> None:
    tables.count_for_user(payment, source, offset)


# --- windowed queries ---------------------------------------------------------------------------

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
            return error(self, exc, 422)
        table = tables.windows[query.table].table
        try:
            owners = cluster.owners(table)
            total = Partials()
            for url in sorted(owners):
                total.merge(await local_partials(query) if url == cluster.me else Partials.from_dict(
                    await cluster.get_json(url, "/analytics/windows/local/", query.params())))
            missing = check_complete(total, table.partitions)
            if missing:
                raise Unavailable("incomplete_answer", f"partitions {missing} did not answer; ask again")
        except ValueError as exc:  # a partition answered twice: the assignment moved under us
            return error(self, Unavailable("incomplete_answer", f"{exc}; ask again"), 503)
        except Unavailable as exc:
            return error(self, exc, 503)
        headers = {"X-Paystream-Workers": str(len(owners))}
        found = rows(query, total)
        if request.query.get("format") == "csv":
            return self.text(to_csv(COLUMNS[query.view], found), content_type="text/csv", headers=headers)
        return self.json({"query": query.describe(), "partitions": table.partitions, "rows": found}, headers=headers)


@app.page("/analytics/windows/local/")
class LocalWindows(View):
    """This process's share of a windowed query (what /analytics/windows/ gathers)."""

    @internal(settings)
    async def get(self, request: Request) -> Response:
        try:
            return self.json((await local_partials(parse(request))).as_dict())
        except InvalidRequest as exc:
            return error(self, exc, 422)
        except Unavailable as exc:
            return error(self, exc, 503)


# --- per-user totals: routed to the process holding the user ------------------------------------

@app.page("/analytics/users/{user_key}/")
class UserTotals(View):
    """One user's totals per currency (the key is `<account>:<user id>`), answered by the process holding it."""

    @internal(settings)
    @app.table_route(table=tables.users, match_info="user_key")
    async def get(self, request: Request, user_key: str) -> Response:
        found = user_rows(user_key, tables.users.get(user_key))
        if request.query.get("format") == "csv":
            return self.text(to_csv(USER_COLUMNS, found), content_type="text/csv")
        account, user_id = split_user_key(user_key)
        return self.json({"account": account, "user_id": user_id, "rows": found})


export_pages(app, settings, cluster, lambda: {
    "windows-minute": tables.windows[MINUTE].table, "windows-hour": tables.windows[HOUR].table,
    "windows-rolling": tables.windows[ROLLING].table, "users": tables.users})
