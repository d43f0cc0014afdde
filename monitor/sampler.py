"""Turns successive /metrics scrapes of the components into the status page's rates."""

from __future__ import annotations

from collections import defaultdict

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


class Sampler:
    def __init__(self) -> None:
        self.previous: dict[str, Flat] = {}

    def sample(self, scrapes: dict[str, Flat], dt: float) -> tuple[float, dict[str, float | None], float | None]:
        """(payments per second, latency percentiles in ms, cache hit ratio) since the last sample."""
        receipted = hits = misses = 0.0
        buckets: dict[float, float] = defaultdict(float)
        for component_id, flat in scrapes.items():
            before = self.previous.get(component_id)

            def delta(name: str, **match: str) -> float:
                return counter_delta(_sum(flat, name, **match),
                                     None if before is None else _sum(before, name, **match))

            receipted += delta("paystream_payment_transitions_total", to="receipted")
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
        return receipted / dt if dt > 0 else 0.0, latency, (hits / reads if reads else None)
