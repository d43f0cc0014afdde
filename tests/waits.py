"""Waits that poll: each asks again until its condition holds or its deadline passes (never a fixed sleep)."""

from __future__ import annotations

import asyncio
import time

#: The kinds of process the monitor must see up for the pipeline to be healthy.
KINDS = {"monitor", "worker", "analytics", "sinks", "ingress"}


async def wait_for(check, timeout: float, every: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(every)


async def all_up(monitor) -> dict | None:
    status, body = await monitor("/health")
    kinds = {c["kind"] for c in body["components"] if c["state"] == "up"}
    # A monitor that just started has probed no service yet.
    return body if status == 200 and KINDS <= kinds and body["services"] else None


async def wait_listed(client, path: str, who: dict, count: int, timeout: float = 15.0) -> dict:
    """The user's list once the sinks indexed `count` objects (the store is eventually consistent)."""
    deadline = time.monotonic() + timeout
    while True:
        page = await client.call("GET", path, params={"user_id": who["user_id"]})
        if len(page.body.get("data", [])) >= count or time.monotonic() > deadline:
            return page.body
        await asyncio.sleep(0.2)


async def until(check, timeout_s: float, every_s: float = 0.25) -> bool:
    """Poll `check()` until true or `timeout_s` passed; whether it came true."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(every_s)
    return True
