"""A /ready/ page for Faust apps: 200 once partitions are assigned and tables recovered."""

from __future__ import annotations

import faust
from faust.web import Request, Response, View


def is_ready(app: faust.App) -> bool:
    """Partitions assigned, tables recovered, no rebalance under way: what its tables say is current."""
    recovered = app.tables.recovery.completed.is_set() if app.tables else True
    return recovered and not app.rebalancing and bool(app.consumer.assignment())


def add_readiness_page(app: faust.App) -> None:
    @app.page("/ready/")
    class Ready(View):
        async def get(self, request: Request) -> Response:
            ready = is_ready(app)
            return self.json({"status": "ready" if ready else "starting"}, status=200 if ready else 503)
