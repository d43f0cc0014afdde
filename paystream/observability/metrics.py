"""Prometheus metrics, named by Prometheus conventions (base units, _total counters).

Every process serves its own registry on its own port (ingress :8080, worker
:6066, sinks :6067, monitor :8090, all at /metrics), so several worker
processes never share counters and need no multiprocess mode.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

HTTP_REQUESTS = Counter("paystream_http_requests", "HTTP requests answered.", ["endpoint", "status"])
HTTP_LATENCY = Histogram("paystream_http_request_duration_seconds", "HTTP request latency.", ["endpoint"],
                         buckets=LATENCY_BUCKETS)
PAYMENT_TRANSITIONS = Counter("paystream_payment_transitions", "Payments entering each state.", ["to"])
PROVIDER_LATENCY = Histogram("paystream_provider_request_duration_seconds", "Card-provider call latency.",
                             ["operation"], buckets=LATENCY_BUCKETS)
PROVIDER_ERRORS = Counter("paystream_provider_errors", "Card-provider calls that failed, by kind.",
                          ["operation", "kind"])
CACHE_REQUESTS = Counter("paystream_cache_requests", "Receipt reads by cache result.", ["result"])
CACHE_ERRORS = Counter("paystream_cache_errors", "Cache calls that Redis could not answer (the request went on "
                       "without the cache).", ["operation"])
STORE_READ_ERRORS = Counter("paystream_store_read_errors", "Document-store reads that could not be answered, by "
                            "which copy failed.", ["copy"])
WORKER_QUERY_ERRORS = Counter("paystream_worker_query_errors", "Status reads the workers' tables could not answer.")
COUCHBASE_WRITE_LATENCY = Histogram("paystream_couchbase_write_duration_seconds", "Couchbase write latency.",
                                    ["document"], buckets=LATENCY_BUCKETS)
COUCHBASE_WRITE_ERRORS = Counter("paystream_couchbase_write_errors", "Couchbase writes that failed.", ["document"])
CONSUMER_LAG = Gauge("paystream_consumer_lag", "Messages not yet consumed, by partition.",
                     ["component", "topic", "partition"])
DEAD_LETTERS = Counter("paystream_dead_letters", "Messages set aside on the dead-letter topic.",
                       ["component", "topic"])
DURABLE_FLUSH = Histogram("paystream_worker_flush_duration_seconds", "Time the worker waits for Kafka to "
                          "acknowledge a payment's changes, by what waits on it: a charge or a reply.", ["before"],
                          buckets=LATENCY_BUCKETS)
IN_FLIGHT = Gauge("paystream_in_flight_payments", "Commands being handled right now.")
INGRESS_IN_FLIGHT = Gauge("paystream_http_in_flight_requests", "Requests this ingress process is answering now, "
                          "reads or writes (a payment's start or post).", ["kind"])
INGRESS_IN_FLIGHT_LIMIT = Gauge("paystream_http_in_flight_limit", "How many reads or writes this ingress process "
                                "admits at once now (adaptive limits).", ["kind"])
SHED_REQUESTS = Counter("paystream_http_shed_requests", "Requests refused with 503 overloaded, by the bound they met.",
                        ["reason"])
SINK_BATCH_SIZE = Histogram("paystream_sink_batch_size", "Events per batch the sinks wrote, by topic.", ["topic"],
                            buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500))
POISON_RETRIES = Counter("paystream_message_retries", "Handler failures retried before a message was set aside.",
                         ["component", "topic"])


def exposition() -> tuple[bytes, str]:
    """The default registry in Prometheus text format, and its content type."""
    return generate_latest(), CONTENT_TYPE_LATEST
