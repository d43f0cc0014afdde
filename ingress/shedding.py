"""Load shedding: one ingress process bounds the work it has in hand and refuses the rest at once.

Without a bound, an ingress offered more than it can answer keeps accepting: every request waits
longer for the event loop and for a pooled Redis connection, memory grows with the waiting
requests, the heartbeats it owes the monitor come late, and in the end almost nothing is answered
in time. With one, past the bound a request is answered `503 overloaded` with `Retry-After` before
anything is looked up (no API key, no rate limit, no Redis), which costs a fraction of an answer,
so the process goes on answering what it admitted at the rate it can.

Two bounds, both per process:
- every request: at most `ingress_max_in_flight` at once;
- writes (startPayment, postPayment): an adaptive limit between 1 and `ingress_max_in_flight_writes`,
  lowered when admitted writes take longer than `ingress_write_latency_target_s` and raised again
  when they are quick (additive increase, multiplicative decrease, as TCP does). A write's time is
  the pipeline's (Kafka, the worker, the provider), not this process's, so a fixed count would be
  right for only one pipeline speed; the limit follows what the pipeline keeps up with.
"""

from __future__ import annotations

import time

from aiohttp import web

from ingress.http_errors import error_response
from paystream.observability import metrics

#: Seconds a refused client should wait before trying again.
RETRY_AFTER_S = 1
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

    def __init__(self, max_in_flight: int, max_in_flight_writes: int, write_latency_target_s: float) -> None:
        self.max_in_flight = max_in_flight
        self.writes = AdaptiveLimit(max_in_flight_writes, write_latency_target_s)
        self.in_flight = 0
        self.writes_in_flight = 0

    def refusal(self, is_write: bool) -> str | None:
        """Why a new request is refused now (`in_flight` or `writes_in_flight`), or None to admit it."""
        if self.in_flight >= self.max_in_flight:
            return "in_flight"
        if is_write and self.writes_in_flight >= self.writes.allowed:
            return "writes_in_flight"
        return None


def route_of(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return ((resource.name if resource is not None else None) or "unknown").split(".")[0]


def shedding_middleware(shedder: LoadShedder, writes: frozenset[str]):
    metrics.INGRESS_IN_FLIGHT.set_function(lambda: shedder.in_flight)
    metrics.INGRESS_IN_FLIGHT_LIMIT.labels("all").set_function(lambda: shedder.max_in_flight)
    metrics.INGRESS_IN_FLIGHT_LIMIT.labels("writes").set_function(lambda: shedder.writes.allowed)

    @web.middleware
    async def shed(request: web.Request, handler):
        if request.path in UNBOUNDED_PATHS:
            return await handler(request)
        is_write = route_of(request) in writes
        reason = shedder.refusal(is_write)
        if reason is not None:
            metrics.SHED_REQUESTS.labels(reason).inc()
            return error_response("unavailable_error", "overloaded",
                                  "this server has as much work as it can answer in time; retry shortly",
                                  status=503, headers={"Retry-After": str(RETRY_AFTER_S)})
        shedder.in_flight += 1
        shedder.writes_in_flight += is_write
        started = time.perf_counter()
        try:
            return await handler(request)
        finally:
            shedder.in_flight -= 1
            if is_write:
                shedder.writes_in_flight -= 1
                shedder.writes.observe(time.perf_counter() - started)

    return shed
