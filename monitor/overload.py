"""Overload named as overload, from the metrics the monitor already scrapes (no I/O here).

An overloaded process answers late: its heartbeats come late too, and read from the beats alone it
looked down, then up, then down again (8 down/up alerts in a minute at 1,500 reads/s while it was
answering). Here the answers themselves say what is wrong: the share of 5xx answers (503s shed
included), the p99 latency and the saturation (reads or writes in flight over the process's bound), each
over the last `WINDOW_S`, as the shipped Prometheus rule `PaystreamOverloaded`
(docker/prometheus/rules/paystream.rules.yml) reads them. Like that rule, a condition must hold
`FOR_S` before the alert fires, and, like its `keep_firing_for`, clear `KEEP_FIRING_S` before it
resolves: one `overloaded` alert for one episode, one `normal` after it, however the figures
wobble in between.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from monitor.state import Change, counter_delta, histogram_quantile

WINDOW_S = 30.0
FOR_S = 10.0
KEEP_FIRING_S = 60.0
ERROR_RATIO = 0.05  # of answers that are 5xx
P99_S = 0.5
SATURATION = 0.9  # requests in flight over the bound


@dataclass(frozen=True)
class Reading:
    """One scrape of one process, the cumulative figures the rule needs."""

    at: float
    answers: float
    errors: float  # 5xx answers
    buckets: dict[float, float]  # latency histogram, cumulative counts by upper bound
    saturation: float | None  # the fuller of its bounds (reads, writes): in flight over the limit


def reading(at: float, flat: dict) -> Reading:
    """The rule's figures from a flattened /metrics page (monitor.sampler.flatten)."""
    answers = errors = 0.0
    buckets: dict[float, float] = {}
    in_flight: dict[str, float] = {}
    limit: dict[str, float] = {}
    for (name, labels), value in flat.items():
        labels = dict(labels)
        if name == "paystream_http_requests_total":
            answers += value
            if labels.get("status", "").startswith("5"):
                errors += value
        elif name == "paystream_http_request_duration_seconds_bucket":
            le = float(labels["le"])
            buckets[le] = buckets.get(le, 0.0) + value
        elif name == "paystream_http_in_flight_requests":
            in_flight[labels.get("kind", "")] = value
        elif name == "paystream_http_in_flight_limit":
            limit[labels.get("kind", "")] = value
    saturations = [in_flight[kind] / limit[kind] for kind in in_flight if limit.get(kind)]
    return Reading(at, answers, errors, buckets, max(saturations) if saturations else None)


@dataclass
class Verdict:
    error_ratio: float | None
    p99_s: float | None
    saturation: float | None

    @property
    def overloaded(self) -> bool:
        return ((self.error_ratio or 0.0) > ERROR_RATIO or (self.p99_s or 0.0) > P99_S
                or (self.saturation or 0.0) > SATURATION)

    def describe(self) -> str:
        def show(value, fmt):
            return "n/a" if value is None else format(value, fmt)
        return (f"5xx {show(self.error_ratio, '.1%')} of answers, p99 {show(self.p99_s, '.3f')} s, "
                f"saturation {show(self.saturation, '.0%')} over {WINDOW_S:.0f} s")


def judge(readings: list[Reading]) -> Verdict:
    """The window's figures: first and last reading's difference (a restart counts from zero)."""
    first, last = readings[0], readings[-1]
    answers = counter_delta(last.answers, first.answers)
    errors = counter_delta(last.errors, first.errors)
    buckets = [(le, counter_delta(count, first.buckets.get(le, 0.0))) for le, count in last.buckets.items()]
    saturations = [r.saturation for r in readings if r.saturation is not None]
    return Verdict(errors / answers if answers else None, histogram_quantile(0.99, buckets) if answers else None,
                   max(saturations) if saturations else None)


@dataclass
class _Episode:
    readings: deque = field(default_factory=deque)
    bad_since: float | None = None
    good_since: float | None = None
    firing: bool = False
    latest: Verdict | None = None


class OverloadRule:
    """Per component: `overloaded` once its figures were bad for FOR_S, `normal` once good for KEEP_FIRING_S."""

    def __init__(self) -> None:
        self.by_id: dict[str, _Episode] = {}

    def observe(self, component_id: str, kind: str, latest: Reading) -> Change | None:
        episode = self.by_id.setdefault(component_id, _Episode())
        episode.readings.append(latest)
        while len(episode.readings) > 2 and latest.at - episode.readings[1].at >= WINDOW_S:
            episode.readings.popleft()
        if len(episode.readings) < 2:
            return None
        verdict = judge(list(episode.readings))
        episode.latest = verdict
        now = latest.at
        if verdict.overloaded:
            episode.good_since = None
            episode.bad_since = episode.bad_since if episode.bad_since is not None else now
            if not episode.firing and now - episode.bad_since >= FOR_S:
                episode.firing = True
                return Change(component_id, "overload", "normal", "overloaded", verdict.describe())
        else:
            episode.bad_since = None
            episode.good_since = episode.good_since if episode.good_since is not None else now
            if episode.firing and now - episode.good_since >= KEEP_FIRING_S:
                episode.firing = False
                return Change(component_id, "overload", "overloaded", "normal", verdict.describe())
        return None

    def is_overloaded(self, component_id: str) -> bool:
        episode = self.by_id.get(component_id)
        return bool(episode and episode.firing)

    def describe(self, component_id: str) -> str | None:
        """The latest figures of a component judged overloaded (for the status page); None otherwise."""
        episode = self.by_id.get(component_id)
        return episode.latest.describe() if episode and episode.firing and episode.latest else None

    def forget(self, component_id: str) -> None:
        self.by_id.pop(component_id, None)
