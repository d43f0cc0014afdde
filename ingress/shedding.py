"""Load shedding: one ingress process bounds the work it has in hand and refuses the rest at once.

Without a bound, an ingress offered more than it can answer keeps accepting: every request waits
longer for the event loop and for a pooled Redis connection, memory grows with the waiting
requests, the heartbeats it owes the monitor come late, and in the end almost nothing is answered
in time. With one, past the bound a request is answered `503 overloaded` with `Retry-After` before
anything is looked up (no API key, no rate limit, no Redis), which costs a fraction of an answer,
so the process goes on answering what it admitted at the rate it can.

Two adaptive bounds per process, apart, each between a floor and a ceiling from the settings:
- reads (every request but a payment's start or post): up to `ingress_max_in_flight_reads`,
  lowered when admitted reads take longer than `ingress_read_latency_target_s`. What grows under
  overload is the wait for this process's event loop, and it grows with the work in hand (Little's
  law: latency = in flight / throughput), so the bound follows what keeps a read quick here now;
- writes (startPayment, postPayment): up to `ingress_max_in_flight_writes`, lowered when admitted
  writes take longer than `ingress_write_latency_target_s` (by default the wait budget,
  `reply_timeout_s`). A write's time is mostly its provider's (0.3-0.8 s a call, seconds for a slow
  one), which costs this process nothing: a target under that refused payments that only waited
  (a 0.5 s target refused half the payments at 10/s: BENCHMARKS.md, bulkheads). Only a write that
  outlasts the budget (answered 202) says the pipeline is not keeping up, and lowers the bound; the
  ceiling bounds what the payments in hand cost (docs/admission.md).
Apart, because a write mostly waits and a read mostly computes: writes waiting on a slow pipeline
must not take the places of reads this process could answer at once, nor reads those of writes.
Each limit is additive increase, multiplicative decrease, as TCP's congestion window: a slow
answer takes a tenth off, a quick one adds one over the limit; and as TCP lowers its window once
per round trip, only answers to requests admitted after the last decrease can lower it again (a
burst of slow answers to one round of requests is one signal, not one per answer).
"""

from __future__ import annotations

import time
import uuid

from aiohttp import web

from ingress.http_errors import error_response
from paystream.observability import metrics
from paystream.settings import Settings

#: Seconds a refused client should wait before trying again.
RETRY_AFTER_S = 1
#: The bounds never go below these (a process always answers some at once), nor above their ceilings.
MIN_READS_IN_FLIGHT = 16
MIN_WRITES_IN_FLIGHT = 16
#: Never shed these: the load balancer's probe and the monitor's scrape must see an overloaded process.
UNBOUNDED_PATHS = frozenset({"/health", "/metrics"})


class AdaptiveLimit:
    """Additive increase, multiplicative decrease of a concurrency limit, from each call's latency."""

    def __init__(self, ceiling: int, target_s: float, floor: int = 1, decrease: float = 0.9) -> None:
        self.ceiling = ceiling
        self.floor = min(floor, ceiling)
        self.target_s = target_s
        self.decrease = decrease
        self.limit = float(ceiling)
        self.in_flight = 0
        self._decreased_at = float("-inf")

    def observe(self, started_at: float, ended_at: float) -> None:
        """One admitted request's answer: admitted at `started_at`, answered at `ended_at` (monotonic s)."""
        if ended_at - started_at <= self.target_s:
            self.limit = min(self.ceiling, self.limit + 1.0 / self.limit)
        elif started_at >= self._decreased_at:
            self.limit = max(self.floor, self.limit * self.decrease)
            self._decreased_at = ended_at

    @property
    def allowed(self) -> int:
        return int(self.limit)

    @property
    def full(self) -> bool:
        return self.in_flight >= self.allowed


class LoadShedder:
    """The bounds of one process, and the requests it holds against them."""

    def __init__(self, max_reads: int, read_target_s: float, max_writes: int, write_target_s: float,
                 min_writes: int = MIN_WRITES_IN_FLIGHT) -> None:
        self.reads = AdaptiveLimit(max_reads, read_target_s, floor=MIN_READS_IN_FLIGHT)
        self.writes = AdaptiveLimit(max_writes, write_target_s, floor=min_writes)

    @classmethod
    def from_settings(cls, settings: Settings) -> LoadShedder:
        return cls(settings.ingress_max_in_flight_reads, settings.ingress_read_latency_target_s,
                   settings.ingress_max_in_flight_writes,
                   settings.ingress_write_latency_target_s or settings.reply_timeout_s)

    def bound(self, is_write: bool) -> AdaptiveLimit:
        return self.writes if is_write else self.reads

    def refusal(self, is_write: bool) -> str | None:
        """Why a new request is refused now (`reads_in_flight` or `writes_in_flight`), or None to admit it."""
        if self.bound(is_write).full:
            return "writes_in_flight" if is_write else "reads_in_flight"
        return None

    def admit(self, is_write: bool) -> None:
        self.bound(is_write).in_flight += 1

    def done(self, is_write: bool, started_at: float, ended_at: float) -> None:
        bound = self.bound(is_write)
        bound.in_flight -= 1
        bound.observe(started_at, ended_at)


def route_of(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return ((resource.name if resource is not None else None) or "unknown").split(".")[0]


def shedding_middleware(shedder: LoadShedder, writes: frozenset[str]):
    for kind, bound in (("reads", shedder.reads), ("writes", shedder.writes)):
        metrics.INGRESS_IN_FLIGHT.labels(kind).set_function(lambda bound=bound: bound.in_flight)
        metrics.INGRESS_IN_FLIGHT_LIMIT.labels(kind).set_function(lambda bound=bound: bound.allowed)
    # The refusal is made once: answering it must cost as little as possible.
    refusal = error_response("unavailable_error", "overloaded",
                             "this server has as much work as it can answer in time; retry shortly",
                             status=503, headers={"Retry-After": str(RETRY_AFTER_S)})
    body, headers = refusal.body, dict(refusal.headers)

    @web.middleware
    async def shed(request: web.Request, handler):
        # Outermost: a refusal skips the other middlewares (and their log line: 1,000s a second under
        # overload); it is counted here, among the answers, so the error ratio sees it.
        if request.path in UNBOUNDED_PATHS:
            return await handler(request)
        route = route_of(request)
        is_write = route in writes
        reason = shedder.refusal(is_write)
        if reason is not None:
            metrics.SHED_REQUESTS.labels(reason).inc()
            metrics.HTTP_REQUESTS.labels(route, "503").inc()
            return web.Response(body=body, status=503, headers={**headers, "Request-Id": f"req_{uuid.uuid4().hex}"})
        shedder.admit(is_write)
        started = time.perf_counter()
        try:
            return await handler(request)
        finally:
            shedder.done(is_write, started, time.perf_counter())

    return shed
