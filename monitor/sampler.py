"""Turns successive /metrics scrapes of the components into the status page's rates."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from monitor.state import counter_delta, histogram_quantile

Flat = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def flatten(text: str) -> Flat:
    flat: Flat = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            flat[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return flat


def _sum(flat: Flat, name: str, **match: str) -> float:
    return sum(v for (n, labels), v in flat.items()
               if n == name and all(dict(labels).get(k) == want for k, want in match.items()))


def _buckets(flat: Flat) -> dict[float, float]:
    totals: dict[float, float] = defaultdict(float)
    for (name, labels), value in flat.items():
        if name == "paystream_http_request_duration_seconds_bucket":
            totals[float(dict(labels)["le"])] += value
    return totals


@dataclass(frozen=True)
class Rates:
    """What happened since the last sample, named as the status page's series are (monitor.state.Series)."""

    payments_per_s: float  # payments receipted
    requests_per_s: float  # requests the ingress processes answered (503s shed included; /metrics, /health not)
    latency_ms: dict[str, float | None]  # p50, p90, p99 of those answers
    cache_hit_ratio: float | None  # of receipt reads; None without any


#: The two paths the ingress admits apart (ingress/shedding.py, docs/admission.md).
PATHS = ("reads", "writes")


class Sampler:
    def __init__(self) -> None:
        self.previous: dict[str, Flat] = {}
        #: Admission per path at the last sample, every ingress together: requests in hand now, and
        #: refused past the process's bound a second since the sample before.
        self.admission: dict[str, dict[str, float]] = {path: {"in_flight": 0.0, "shed_per_s": 0.0} for path in PATHS}

    def sample(self, scrapes: dict[str, Flat], dt: float) -> Rates:
        """The rates since the last sample; a process seen for the first time counts from its next scrape."""
        receipted = requests = hits = misses = 0.0
        buckets: dict[float, float] = defaultdict(float)
        in_flight: dict[str, float] = defaultdict(float)
        shed: dict[str, float] = defaultdict(float)
        for component_id, flat in scrapes.items():
            before = self.previous.get(component_id)

            def delta(name: str, **match: str) -> float:
                return counter_delta(_sum(flat, name, **match),
                                     None if before is None else _sum(before, name, **match))

            receipted += delta("paystream_payment_transitions_total", to="receipted")
            # Counted by the ingress's middleware and its load shedding (ingress/middleware.py, shedding.py).
            requests += delta("paystream_http_requests_total")
            for path in PATHS:
                in_flight[path] += _sum(flat, "paystream_http_in_flight_requests", kind=path)
                shed[path] += delta("paystream_http_shed_requests_total", reason=f"{path}_in_flight")
            hits += delta("paystream_cache_requests_total", result="hit")
            misses += delta("paystream_cache_requests_total", result="miss")
            previous_buckets = _buckets(before) if before is not None else None
            for le, count in _buckets(flat).items():
                buckets[le] += counter_delta(count, previous_buckets.get(le, 0.0) if previous_buckets else None)
        self.previous = dict(scrapes)
        latency = {
            name: (None if (v := histogram_quantile(q, list(buckets.items()))) is None else round(v * 1000, 2))
            for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))
        }
        reads = hits + misses

        def per_s(count: float) -> float:
            return round(count / dt, 2) if dt > 0 else 0.0

        self.admission = {path: {"in_flight": in_flight[path], "shed_per_s": per_s(shed[path])} for path in PATHS}
        return Rates(per_s(receipted), per_s(requests), latency, hits / reads if reads else None)
