"""The HTTP API's application: middleware, routes and the adapters bootstrap wires."""

from __future__ import annotations

import asyncio
import contextlib
import gc

from aiohttp import web

from ingress.context import CONTEXT, Context
from ingress.docs import add_docs
from ingress.http_errors import json_errors
from ingress.middleware import WRITES, authenticate, observe
from ingress.routes import add_routes
from ingress.shedding import LoadShedder, shedding_middleware
from paystream import bootstrap, tuning
from paystream.domain.sealing import ReplyKey
from paystream.observability.heartbeat import HeartbeatSource, publish_forever
from paystream.settings import Settings

#: How long the API waits for the document store at start before serving without it.
STORE_WAIT_S = 15.0


def create_app(settings: Settings) -> web.Application:
    shedder = LoadShedder.from_settings(settings)
    app = web.Application(middlewares=[shedding_middleware(shedder, WRITES), observe, json_errors, authenticate],
                          client_max_size=settings.max_body_bytes)
    add_routes(app)
    add_docs(app)
    app.cleanup_ctx.append(lambda app: _adapters(app, settings))
    app.cleanup_ctx.append(_heartbeats)
    app.on_startup.append(_freeze_startup_objects)
    return app


async def _freeze_startup_objects(app: web.Application) -> None:
    """What start-up made (modules, schemas, clients: ~145,000 objects) lives as long as the process;
    frozen, the collector's full passes skip them. Unfrozen, one full pass during 15 s of cache hits at
    300/s held the event loop 77 ms (every request in flight waits it out: a read's p99); frozen, none."""
    gc.freeze()


async def _adapters(app: web.Application, settings: Settings):
    async with bootstrap.ingress_adapters(settings, STORE_WAIT_S) as a:
        app[CONTEXT] = Context(**vars(a), settings=settings, reply_key=ReplyKey())
        yield


async def _heartbeats(app: web.Application):
    ctx = app[CONTEXT]
    settings = ctx.settings

    async def facts() -> dict:
        return {"in_flight": ctx.bus.waiting}

    source = HeartbeatSource("ingress", settings.ingress_port,
                             f"http://{settings.ingress_host}:{settings.ingress_port}/metrics", facts,
                             shared_port=settings.ingress_reuse_port)
    task = asyncio.create_task(publish_forever(
        source, lambda key, value: ctx.bus.publish(settings.topics.heartbeats, key, value),
        settings.heartbeat_interval_s))
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def run(settings: Settings) -> None:
    if settings.ingress_event_loop == "uvloop":
        import uvloop

        # libuv's loop: the same aiohttp handlers, less Python per request (measured in BENCHMARKS.md).
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    web.run_app(create_app(settings), host=settings.ingress_host, port=settings.ingress_port,
                access_log=None, print=None, backlog=tuning.LISTEN_BACKLOG,
                reuse_port=settings.ingress_reuse_port or None)
