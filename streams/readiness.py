"""A /ready/ page for Faust apps: 200 once partitions are assigned and tables recovered."""

from __future__ import annotations

import faust
from faust.web import Request, Response, View


def add_readiness_page(app: faust.App) -> None:
    @app.page("/ready/")
    class Ready(View):
        async def get(self, request: Request) -> Response:
            recovered = app.tables.recovery.completed.is_set() if app.tables else True
            ready = recovered and not app.rebalancing and bool(app.consumer.assignment())
            return self.json({"status": "ready" if ready else "starting"}, status=200 if ready else 503)
