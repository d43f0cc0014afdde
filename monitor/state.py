"""What the monitor knows, kept without I/O: components by their beats, and the
time series it draws from successive metric scrapes.

A restart is read from the beats alone (a new pid, or an uptime that went
back), so it is seen the same whether supervisord, systemd or Kubernetes
restarted the process (where every container's pid may be 1). A component
restarted `crash_loop_restarts` times within `crash_loop_window_s` is in a
crash loop until it has run that long without one."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from paystream.messages import Heartbeat


@dataclass
class Component:
    component_id: str
    kind: str
    last_beat: Heartbeat
    last_seen: float  # monotonic seconds
    state: str = "up"  # up | down | crash_loop
    restarts: deque = field(default_factory=deque)  # monotonic seconds of each restart seen


@dataclass(frozen=True)
class Change:
    subject: str  # component id or service name
    kind: str
    previous: str | None
    state: str
    reason: str


class Components:
    """Marks a component down after `missed` intervals without a beat, up when beats return,
    and in a crash loop when it restarts `loop_restarts` times within `loop_window_s`."""

    def __init__(self, interval_s: float, missed: int, loop_restarts: int = 3, loop_window_s: float = 300.0) -> None:
        self.timeout = interval_s * missed
        self.loop_restarts = loop_restarts
        self.loop_window_s = loop_window_s
        self.by_id: dict[str, Component] = {}

    def beat(self, beat: Heartbeat, now: float) -> Change | None:
        cid = beat.component_id
        if beat.state == "stopping":
            # A clean shutdown is not an outage: forget the component.
            gone = self.by_id.pop(cid, None)
            return Change(cid, beat.kind, gone.state if gone else None, "stopped", "stopped cleanly") if gone else None
        known = self.by_id.get(cid)
        if known is None:
            self.by_id[cid] = Component(cid, beat.kind, beat, now)
            return Change(cid, beat.kind, None, "up", "first heartbeat")
        previous_beat = known.last_beat
        known.last_beat, known.last_seen = beat, now
        if beat.pid != previous_beat.pid or beat.uptime_s < previous_beat.uptime_s:
            return self._restarted(known, previous_beat, now)
        if known.state == "down":
            # Silent for a while is not a quiet window: a crash loop still counts its restarts.
            known.state = "crash_loop" if self._looping(known, now) else "up"
            return Change(cid, known.kind, "down", known.state, "heartbeats resumed")
        return None

    def _looping(self, component: Component, now: float) -> bool:
        recent = [at for at in component.restarts if now - at <= self.loop_window_s]
        return len(recent) >= self.loop_restarts

    def _restarted(self, component: Component, before: Heartbeat, now: float) -> Change:
        component.restarts.append(now)
        while component.restarts and now - component.restarts[0] > self.loop_window_s:
            component.restarts.popleft()
        previous = component.state
        how = (f"restarted (pid {before.pid} after {before.uptime_s:.0f} s -> pid {component.last_beat.pid}); "
               f"{len(component.restarts)} restart(s) within {self.loop_window_s:.0f} s")
        if len(component.restarts) >= self.loop_restarts:
            component.state = "crash_loop"
            return Change(component.component_id, component.kind, previous, "crash_loop", how)
        component.state = "up"
        return Change(component.component_id, component.kind, previous, "restarted", how)

    def live(self, kinds: tuple[str, ...]) -> dict[str, int]:
        """How many components of each kind are up (one down or in a crash loop serves nothing)."""
        counts = dict.fromkeys(kinds, 0)
        for component in self.by_id.values():
            if component.state == "up" and component.kind in counts:
                counts[component.kind] += 1
        return counts

    def expire(self, now: float, answering: frozenset[str] = frozenset()) -> list[Change]:
        """Changes for components whose beats stopped. One whose metrics page still answered within the
        timeout (`answering`) is late, not down: an overloaded process beats late (overload is
        monitor/overload.py's to name)."""
        changes = []
        for component in self.by_id.values():
            if (component.state != "down" and now - component.last_seen > self.timeout
                    and component.component_id not in answering):
                changes.append(Change(component.component_id, component.kind, component.state, "down",
                                      f"no heartbeat for {now - component.last_seen:.1f} s"))
                component.state = "down"
            elif (component.state == "crash_loop" and component.restarts
                  and now - component.restarts[-1] > self.loop_window_s):
                component.state = "up"
                changes.append(Change(component.component_id, component.kind, "crash_loop", "up",
                                      f"no restart for {self.loop_window_s:.0f} s"))
        return changes


def counter_delta(current: float, previous: float | None) -> float:
    """Increase of a counter between two scrapes; a process restart resets it to zero."""
    if previous is None:
        return 0.0
    return current if current < previous else current - previous


def histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """Prometheus-style quantile from cumulative (upper bound, count) buckets; None with no data."""
    buckets = sorted(buckets)
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for upper, count in buckets:
        if count >= rank:
            if math.isinf(upper):
                return lower_bound
            if count == lower_count:
                return upper
            return lower_bound + (upper - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = upper, count
    return lower_bound


#: The kinds whose live instances the status page charts next to the load (issue 12).
SCALED_KINDS = ("ingress", "worker", "sinks", "analytics")
LATENCY_QUANTILES = ("p50", "p90", "p99")


@dataclass
class Series:
    """Fixed-length time series for the status page: a column a figure, a value a sample.

    A column named `group.key` is answered nested (`{"latency_ms": {"p50": [...]}}`)."""

    length: int = 300
    columns: dict[str, deque] = field(init=False)

    def __post_init__(self) -> None:
        names = ("t", "payments_per_s", "requests_per_s", *(f"latency_ms.{q}" for q in LATENCY_QUANTILES),
                 "consumer_lag", "cache_hit_ratio", *(f"instances.{kind}" for kind in SCALED_KINDS))
        self.columns = {name: deque(maxlen=self.length) for name in names}

    def add(self, t: str, *, payments_per_s: float, requests_per_s: float, latency_ms: dict[str, float | None],
            consumer_lag: int, cache_hit_ratio: float | None, instances: dict[str, int]) -> None:
        row = {"t": t, "payments_per_s": payments_per_s, "requests_per_s": requests_per_s,
               "consumer_lag": consumer_lag, "cache_hit_ratio": cache_hit_ratio,
               **{f"latency_ms.{q}": latency_ms[q] for q in LATENCY_QUANTILES},
               **{f"instances.{kind}": instances.get(kind, 0) for kind in SCALED_KINDS}}
        for name, column in self.columns.items():
            column.append(row[name])

    def as_dict(self) -> dict:
        answer: dict = {}
        for name, column in self.columns.items():
            group, _, key = name.partition(".")
            if key:
                answer.setdefault(group, {})[key] = list(column)
            else:
                answer[name] = list(column)
        return answer
