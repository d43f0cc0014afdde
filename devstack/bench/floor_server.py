"""The least an HTTP cache read can cost in this stack: aiohttp, one Redis GET, the bytes back.

    python -m devstack.bench.floor_server --port 28099 --redis-url redis://127.0.0.1:26379/0
"""

from __future__ import annotations

import argparse

import redis.asyncio as redis
from aiohttp import web


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio",
                        help="the event loop, as the ingress's (settings: ingress_event_loop)")
    parser.add_argument("--backlog", type=int, default=4096, help="listen queue, as the ingress's (settings)")
    args = parser.parse_args()
    if args.loop == "uvloop":
        import asyncio

        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    client = redis.Redis(connection_pool=redis.BlockingConnectionPool.from_url(args.redis_url, max_connections=64))

    async def get(request: web.Request) -> web.Response:
        body = await client.get(request.query["key"])
        if body is None:
            return web.Response(status=404)
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/get", get)
    web.run_app(app, host=args.host, port=args.port, access_log=None, print=None, backlog=args.backlog)


if __name__ == "__main__":
    main()
