"""Load shedding: one ingress process bounds the work it has in hand and refuses the rest at once.

Without a bound, an ingress offered more than it can answer keeps accepting: every request waits
longer for the event loop and for a pooled Redis connection, memory grows with the waiting
requests, the heartbeats it owes the monitor come late, and in the end almost nothing is answered
in time. With one, past the bound a request is answered `503 overloaded` with `Retry-After` before
anything is looked up (no API key, no rate limit, no Redis), which costs a fraction of an answer,
so the process goes on answering what it admitted at the rate it can.

Two adaptive bounds, both per process, each between a floor and a ceiling from the settings:
- every request: up to `ingress_max_in_flight`, lowered when admitted reads take longer than
  `ingress_latency_target_s`. Time spent waiting for this process's event loop is what grows
  under overload, and it grows with the work in hand (Little's law: latency = in flight /
  throughput), so the bound follows what keeps an admitted read quick on this machine now;
- writes (startPayment, postPayment): up to `ingress_max_in_flight_writes`, lowered when admitted
  writes take longer than `ingress_write_latency_target_s`. A write's time is mostly the
  pipeline's (Kafka, the worker, the provider), so a fixed count would be right for one pipeline
  speed only; this one follows what the pipeline keeps up with.
Each limit is additive increase, multiplicative decrease, as TCP's congestion window: a slow
answer takes a tenth off, a quick one adds one over the limit.
"""

from __future__ import annotations

import time

from aiohttp import web

from ingress.http_errors import error_response
from paystream.observability import metrics

#: Seconds a refused client should wait before trying again.
RETRY_AFTER_S = 1
#: The bound on all requests never goes below this (a process always answers some at once).
MIN_IN_FLIGHT = 16
#: Nor the bound on writes below this: a pipeline slow for everyone still takes payments at this many at once.
MIN_WRITES_IN_FLIGHT = 4
#: Never shed these: the load balancer's probe and the monitor's scrape must see an overloaded process.
UNBOUNDED_PATHS = frozenset({"/health", "/metrics"})


class AdaptiveLimit:
    """Additive increase, multiplicative decrease of a concurrency limit, from each call's latency."""

    def __init__(self, ceiling: int, target_s: float, floor: int = 1, decrease: float = 0.9) -> None:
        self.ceiling = ceiling
        self.floor = floor
        self.target_s = target_s
        self.decrease = decrease
        self.limit = float(ceiling)

    def observe(self, latency_s: float) -> None:
        if latency_s > self.target_s:
            self.limit = max(self.floor, self.limit * self.decrease)
        else:
            self.limit = min(self.ceiling, self.limit + 1.0 / self.limit)

    @property
    def allowed(self) -> int:
        return int(self.limit)


class LoadShedder:
    """The bounds of one process, and the requests it holds against them."""

    def __init__(self, max_in_flight: int, latency_target_s: float, max_in_flight_writes: int,
                 write_latency_target_s: float) -> None:
        self.all = AdaptiveLimit(max_in_flight, latency_target_s, floor=min(MIN_IN_FLIGHT, max_in_flight))
        self.writes = AdaptiveLimit(max_in_flight_writes, write_latency_target_s,
                                    floor=min(MIN_WRITES_IN_FLIGHT, max_in_flight_writes))
        self.in_flight = 0
        self.writes_in_flight = 0

    def refusal(self, is_write: bool) -> str | None:
        """Why a new request is refused now (`in_flight` or `writes_in_flight`), or None to admit it."""
        if self.in_flight >= self.all.allowed:
            return "in_flight"
        if is_write and self.writes_in_flight >= self.writes.allowed:
            return "writes_in_flight"
        return None

    def admit(self, is_write: bool) -> None:
        self.in_flight += 1
        self.writes_in_flight += is_write

    def done(self, is_write: bool, latency_s: float) -> None:
        self.in_flight -= 1
        if is_write:
            self.writes_in_flight -= 1
            self.writes.observe(latency_s)
        else:
            self.all.observe(latency_s)


def route_of(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return ((resource.name if resource is not None else None) or "unknown").split(".")[0]


def shedding_middleware(shedder: LoadShedder, writes: frozenset[str]):
    metrics.INGRESS_IN_FLIGHT.set_function(lambda: shedder.in_flight)
    metrics.INGRESS_IN_FLIGHT_LIMIT.labels("all").set_function(lambda: shedder.all.allowed)
    metrics.INGRESS_IN_FLIGHT_LIMIT.labels("writes").set_function(lambda: shedder.writes.allowed)
    # The refusal is made once: answering it must cost as little as possible.
    refusal = error_response("unavailable_error", "overloaded",
                             "this server has as much work as it can answer in time; retry shortly",
                             status=503, headers={"Retry-After": str(RETRY_AFTER_S)})
    body, headers = refusal.body, dict(refusal.headers)

    @web.middleware
    async def shed(request: web.Request, handler):
        if request.path in UNBOUNDED_PATHS:
            return await handler(request)
        is_write = route_of(request) in writes
        reason = shedder.refusal(is_write)
        if reason is not None:
            metrics.SHED_REQUESTS.labels(reason).inc()
            return web.Response(body=body, status=503, headers=headers)
        shedder.admit(is_write)
        started = time.perf_counter()
        try:
            return await handler(request)
        finally:
            shedder.done(is_write, time.perf_counter() - started)

    return shed
