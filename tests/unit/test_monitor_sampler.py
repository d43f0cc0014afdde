"""The status page's rates from successive /metrics scrapes (monitor/sampler.py), fed pages written by
prometheus-client exactly as the processes expose them."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from monitor.sampler import Sampler, flatten


class Process:
    """One process's registry with the counters the sampler reads (paystream/observability/metrics.py)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("paystream_http_requests", "", ["endpoint", "status"], registry=self.registry)
        self.transitions = Counter("paystream_payment_transitions", "", ["to"], registry=self.registry)
        self.in_flight = Gauge("paystream_http_in_flight_requests", "", ["kind"], registry=self.registry)
        self.shed = Counter("paystream_http_shed_requests", "", ["reason"], registry=self.registry)

    def page(self) -> dict:
        return flatten(generate_latest(self.registry).decode())


def test_requests_per_second_sum_every_ingress_answer_since_the_last_sample():
    first, second, worker = Process(), Process(), Process()
    first.requests.labels("getReceipt", "200").inc(100)
    second.requests.labels("getReceipt", "200").inc(50)
    worker.transitions.labels("receipted").inc(5)
    sampler = Sampler()
    # The first sample has nothing to compare with.
    rates = sampler.sample({"ingress-1": first.page(), "ingress-2": second.page(), "worker": worker.page()}, dt=2)
    assert (rates.requests_per_s, rates.payments_per_s) == (0.0, 0.0)

    first.requests.labels("getReceipt", "200").inc(200)
    first.requests.labels("startPayment", "201").inc(10)
    first.requests.labels("getReceipt", "503").inc(10)  # shed answers are answers too
    restarted = Process()  # the second ingress restarted: its counters start again from zero
    restarted.requests.labels("getReceipt", "200").inc(30)
    newcomer = Process()  # a third one, scraped for the first time: counted from its next scrape
    newcomer.requests.labels("getReceipt", "200").inc(1000)
    worker.transitions.labels("receipted").inc(4)
    rates = sampler.sample({"ingress-1": first.page(), "ingress-2": restarted.page(), "ingress-3": newcomer.page(),
                            "worker": worker.page()}, dt=2)
    assert rates.requests_per_s == (200 + 10 + 10 + 30) / 2
    assert rates.payments_per_s == 4 / 2

    newcomer.requests.labels("getReceipt", "200").inc(7)
    rates = sampler.sample({"ingress-1": first.page(), "ingress-3": newcomer.page()}, dt=0.5)
    assert (rates.requests_per_s, rates.payments_per_s) == (14.0, 0.0)


def test_admission_per_path_sums_every_ingress_in_hand_and_refused():
    """Reads and payment calls apart (docs/admission.md): what every ingress holds now, and what it refused
    past its own bound a second since the last sample."""
    first, second = Process(), Process()
    sampler = Sampler()
    first.shed.labels("writes_in_flight").inc(5)
    sampler.sample({"ingress-1": first.page(), "ingress-2": second.page()}, dt=2)
    first.in_flight.labels("writes").set(64)
    second.in_flight.labels("writes").set(40)
    second.in_flight.labels("reads").set(3)
    first.shed.labels("writes_in_flight").inc(20)
    second.shed.labels("writes_in_flight").inc(10)
    sampler.sample({"ingress-1": first.page(), "ingress-2": second.page()}, dt=2)
    assert sampler.admission == {"reads": {"in_flight": 3.0, "shed_per_s": 0.0},
                                 "writes": {"in_flight": 104.0, "shed_per_s": 15.0}}
