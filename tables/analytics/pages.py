"""The analytics' pages: what analysts (`paystream query`, `paystream tables export`) and the monitor ask
the analytics process, over its internal HTTP port (every page needs the internal token).

A windowed query is answered from every partition: the process asked gathers
every analytics process's share (streams/tables_web.py); a user's totals are
answered by the process holding that user (Faust's table routing). A new view
of the windows needs no page of its own: it is a `view` of the windows page
(tables/analytics/views.py).
"""

from __future__ import annotations

from datetime import UTC, datetime

import faust
from faust.web import Request, Response, View

from paystream.domain.errors import InvalidRequest, Unavailable
from paystream.settings import Settings
from streams.tables_web import Cluster, error, export_pages
from streams.web import internal
from tables.analytics.counts import split_user_key
from tables.analytics.tables import AnalyticsTables
from tables.analytics.views import (
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


def add(app: faust.App, settings: Settings, tables: AnalyticsTables, cluster: Cluster) -> None:
    """The pages, on the analytics app."""
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
