"""Metrics page, consumer lag and heartbeats for a Faust app (worker or sinks)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import faust
from faust.web import Request, Response, View

from paystream.observability import metrics
from paystream.observability.heartbeat import HeartbeatSource, publish_forever
from paystream.settings import Settings


def install(app: faust.App, kind: str, settings: Settings, web_port: int, source_topics: set[str],
            in_flight: Callable[[], int] = lambda: 0) -> None:
    heartbeats = app.topic(settings.topics.heartbeats, key_serializer="raw", value_serializer="raw")

    @app.page("/metrics")
    class Metrics(View):
        async def get(self, request: Request) -> Response:
            body, _ = metrics.exposition()
            # aiohttp refuses a charset inside content_type; text/plain is the same format.
            return self.bytes(body, content_type="text/plain")

    async def consumer_lag() -> int:
        """Messages behind the end of each partition this process consumes; also set as gauges."""
        total = 0
        for tp in app.consumer.assignment():
            if tp.topic not in source_topics:
                continue
            highwater = app.consumer.highwater(tp)
            position = await app.consumer.position(tp)
            if highwater is None or position is None or highwater < 0:
                continue
            lag = max(0, highwater - position)
            metrics.CONSUMER_LAG.labels(kind, tp.topic, str(tp.partition)).set(lag)
            total += lag
        return total

    async def facts() -> dict:
        ready = not app.rebalancing and bool(app.consumer.assignment())
        return {"in_flight": in_flight(), "consumer_lag": await consumer_lag(),
                "verdict": "healthy" if ready else "rebalancing"}

    source = HeartbeatSource(kind, web_port, f"http://{settings.ingress_host}:{web_port}/metrics", facts)

    async def send(key: bytes, value: bytes) -> None:
        await heartbeats.send(key=key, value=value)

    beating: list[asyncio.Task] = []

    @app.task
    async def beat() -> None:
        beating.append(asyncio.current_task())
        await publish_forever(source, send, settings.heartbeat_interval_s)

    @app.on_before_shutdown.connect
    async def say_stopping(app: faust.App, **kwargs) -> None:
        # Faust cancels its tasks only after the producer has stopped, when the last beat
        # ("stopping", so the monitor forgets a process stopped on purpose) could not leave:
        # cancel it here, while the producer still runs and flushes after this signal.
        for task in beating:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
