"""Heartbeats: every few seconds each process says who it is and how it is.

A beat is one JSON message on the heartbeats topic, keyed by component id.
The id is stable across restarts (kind@host:port), so the monitor sees a
restarted process come back rather than a new one appear.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Awaitable, Callable

import psutil

from paystream import messages
from paystream.clock import utc_now
from paystream.messages import Heartbeat
from paystream.observability.logs import get_logger

log = get_logger("paystream.heartbeat")

Extra = Callable[[], Awaitable[dict]]
Send = Callable[[bytes, bytes], Awaitable[None]]


def open_sockets(process: psutil.Process) -> int:
    """The sockets this process holds open. On Linux from its own descriptors (/proc/self/fd): psutil's
    net_connections reads every TCP socket of the machine (/proc/net/tcp*) and took ~9 ms a beat on the
    event loop here, more under load, when thousands of closed connections linger in TIME_WAIT."""
    try:
        fds = list(os.scandir(f"/proc/{process.pid}/fd"))
    except OSError:
        return len(process.net_connections(kind="tcp"))
    count = 0
    for fd in fds:
        try:
            count += os.readlink(fd.path).startswith("socket:")
        except OSError:
            continue  # closed meanwhile
    return count


class HeartbeatSource:
    def __init__(self, kind: str, port: int, metrics_url: str | None, extra: Extra | None = None,
                 shared_port: bool = False) -> None:
        self.kind = kind
        self.host = socket.gethostname()
        # Processes sharing a port (SO_REUSEPORT) are told apart by pid: each its own component.
        self.component_id = f"{kind}@{self.host}:{port}" + (f"/{os.getpid()}" if shared_port else "")
        self.metrics_url = metrics_url
        self.extra = extra
        self.started = time.monotonic()
        self.process = psutil.Process()
        self.process.cpu_percent(None)  # the first reading is meaningless; prime it

    async def beat(self, state: str = "running") -> Heartbeat:
        facts = await self.extra() if self.extra else {}
        with self.process.oneshot():
            rss = self.process.memory_info().rss
            cpu = self.process.cpu_percent(None)
            connections = open_sockets(self.process)
        return Heartbeat(
            component_id=self.component_id, kind=self.kind, host=self.host, pid=os.getpid(), state=state,
            at=utc_now(), uptime_s=round(time.monotonic() - self.started, 1), rss_bytes=rss, cpu_percent=cpu,
            open_connections=connections, metrics_url=self.metrics_url, **facts,
        )

    def encode(self, beat: Heartbeat) -> tuple[bytes, bytes]:
        return self.component_id.encode(), messages.encode(beat)


async def publish_forever(source: HeartbeatSource, send: Send, interval_s: float) -> None:
    """Beat every `interval_s` until cancelled; then say "stopping" once, so the monitor forgets us."""
    try:
        while True:
            started = time.monotonic()
            try:
                await send(*source.encode(await source.beat()))
            except Exception as exc:  # a missed beat is the monitor's signal; never crash the process
                log.warning("heartbeat not sent", error=repr(exc))
            await asyncio.sleep(max(0.0, interval_s - (time.monotonic() - started)))
    except asyncio.CancelledError:
        try:
            await asyncio.wait_for(send(*source.encode(await source.beat("stopping"))), 2)
        except Exception:
            pass
        raise
