"""One settings object for every paystream process.

Every field can be set from the environment as ``PAYSTREAM_<FIELD>``
(for example ``PAYSTREAM_KAFKA_BOOTSTRAP``) or from a ``.env`` file in the
working directory, which git ignores. ``COUCHBASE_CONNSTR`` is read without
the prefix because it is the name Couchbase's own tools use. The local dev
stack (devstack/) writes the addresses it learns into ``.env``; nothing here
knows that it exists.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from paystream.topics import TopicNames


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PAYSTREAM_", env_file=".env", extra="ignore", frozen=True
    )

    data_dir: Path = Field(Path(".paystream"), description="Where the worker and sinks keep their local tables.")

    # --- Kafka -----------------------------------------------------------
    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_connect_timeout_s: float = Field(
        1.0, description="How long the ingress tries to reach a command's partition leader before answering 503.")
    topic_prefix: str = "paystream"
    payment_topic_partitions: int = 6

    # --- Couchbase -------------------------------------------------------
    couchbase_connstr: str = Field(
        "couchbase://127.0.0.1",
        validation_alias=AliasChoices("COUCHBASE_CONNSTR", "PAYSTREAM_COUCHBASE_CONNSTR"),
        description="The Couchbase cluster (`stack up` writes the local one's into .env).",
    )
    couchbase_mgmt_url: str | None = Field(
        None, description="REST address(es) of the cluster, comma-separated; defaults to port 8091 of its first host."
    )
    couchbase_username: str = "Administrator"
    couchbase_password: SecretStr = SecretStr("password")
    couchbase_bucket: str = "payments"
    couchbase_read_timeout_s: float = Field(
        1.0, description="How long a read waits for a document's active copy, then for a replica, before the "
                         "store counts as unavailable.")

    # --- Redis -----------------------------------------------------------
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_pool_size: int = Field(64, description="Connections in each Redis client's pool (per process).")
    redis_pool_timeout_s: float = Field(
        0.5, description="How long a call waits for a pooled Redis connection before Redis counts as unavailable "
                         "(a 503 from the API, never a 500).")

    # --- card-payment provider --------------------------------------------
    stripe_api_base: str = "http://127.0.0.1:8420"
    stripe_api_key: SecretStr = SecretStr("sk_test_paystream_local")
    stripe_timeout_s: float = 10.0
    stripe_max_attempts: int = 4
    stripe_max_connections: int = Field(
        512, description="Connections one process keeps open to the provider: calls in flight at once (at 300 "
                         "payments/s and 500 ms a call, 150).")

    # --- Kafka producers, per hop ---------------------------------------------
    kafka_command_linger_ms: int = Field(
        0, description="How long the ingress's producer waits to fill a batch of commands (0: send at once; "
                       "commands written meanwhile join the next batch anyway).")
    kafka_stream_linger_ms: int = Field(
        0, description="The same for the worker's and sinks' producer (replies, events, receipts, changelog).")
    kafka_max_batch_bytes: int = Field(
        256 * 1024, description="Largest batch of records per partition one produce request carries.")

    # --- ingress -----------------------------------------------------------
    ingress_host: str = "127.0.0.1"
    ingress_port: int = 8080
    ingress_reuse_port: bool = Field(
        False, description="Bind the API's port with SO_REUSEPORT, so several ingress processes serve one port "
                           "without a balancer in front (the kernel spreads connections among them).")
    ingress_event_loop: Literal["asyncio", "uvloop"] = Field(
        "asyncio", description="The API's event loop: the standard library's or uvloop (libuv). uvloop measured "
                               "less CPU per request but stalls and errors here (README \"Benchmarks\").")
    listen_backlog: int = Field(
        4096, description="Listen queue of the HTTP servers (ingress, monitor): aiohttp's default of 128 "
                          "overflows when hundreds of clients connect at once, and each dropped SYN costs ≥ 1 s.")
    dev_api_key: SecretStr = Field(
        SecretStr(""), description="The development key `paystream apikey` prints (made once, kept in .env, "
                                   "registered under account `dev`); client keys live hashed in Redis.")
    key_cache_s: float = Field(1.0, description="How long an ingress remembers an API key's record and a user's "
                                                "data key; a revocation or forget-user takes effect within it.")
    rate_limit: str = Field("100/second", description="Requests one API key may make, in `limits` notation "
                                                      "(`N/second|minute|hour`); a key may carry its own.")
    rate_limit_lease_fraction: float = Field(
        0.05, ge=0, le=1, description="The most of a key's limit one ingress process leases from Redis at once and "
                                      "spends without asking again (README \"Rate limits\"); a lease under 2 "
                                      "tokens means every request is counted in Redis.")
    rate_limit_lease_max: int = Field(50, ge=1, description="Cap on the tokens of one lease, whatever the limit.")
    rate_limit_lease_life: float = Field(
        0.1, gt=0, le=0.5, description="Share of a limit's period a leased token may be spent in after Redis "
                                       "counted it; unspent ones are dropped then.")
    reply_timeout_s: float = Field(10.0, description="How long a write waits for its outcome before 202.")
    max_body_bytes: int = 64 * 1024
    ingress_max_in_flight_reads: int = Field(
        256, description="Ceiling of the adaptive limit on reads (every request but a payment's start or post) one "
                         "ingress process answers at once; past the limit, 503 overloaded with Retry-After.")
    ingress_read_latency_target_s: float = Field(
        0.1, description="Admitted reads slower than this lower the adaptive limit on reads; quicker raise it.")
    ingress_max_in_flight_writes: int = Field(
        64, description="Ceiling of the adaptive limit on payments (start, post) one ingress process has in hand.")
    ingress_write_latency_target_s: float | None = Field(
        None, description="Admitted writes slower than this lower the adaptive limit on writes; quicker raise it. "
                          "Default: reply_timeout_s, the wait budget. A payment call's time is mostly its "
                          "provider's, which costs the ingress nothing: only a write that outlasts the budget "
                          "(answered 202) says the pipeline is behind (docs/admission.md).")
    idempotency_ttl_s: int = 24 * 3600

    user_token_secret: SecretStr = Field(
        SecretStr(""), description="Signs the short-lived user tokens an API key mints (POST /v1/user_tokens); "
                                   "empty: minting is refused and no token is accepted.")
    internal_token: SecretStr = Field(
        SecretStr(""), description="Bearer token of the internal HTTP pages (worker's table queries); "
                                   "empty: those pages answer 401 to everyone.")

    # --- worker and sinks ----------------------------------------------------
    worker_id: str = "paystream-worker"
    worker_web_port: int = 6066
    worker_concurrency: int = Field(
        256, description="Commands one worker handles at once (one at a time per payment): provider calls of "
                         "different payments overlap, so this bounds the calls in flight.")
    worker_urls: str = Field(
        "", description="Comma-separated base URLs of workers the API asks for status reads from their "
                        "table, in turn; empty: worker_url.")
    worker_query_timeout_s: float = Field(2.0, description="How long a status read waits for a worker's table.")
    poison_max_attempts: int = Field(
        3, description="Times a consumer tries a message its handler raises on before it sets it aside on the "
                       "dead-letter topic (its partition then moves on).")
    poison_retry_backoff_s: float = Field(0.2, description="First wait between those tries (doubling).")
    sinks_id: str = "paystream-sinks"
    sinks_web_port: int = 6067
    sinks_batch_max: int = Field(
        500, ge=1, description="Most events the sinks take from a topic and write together as one batch.")
    sinks_batch_within_ms: float = Field(
        15.0, gt=0, description="Longest the sinks wait for a batch to fill before writing what they have "
                                "(how long a lone event is held).")
    receipt_cache_ttl_s: int = 7 * 24 * 3600
    rebuild_batch: int = Field(2000, description="Records per batch when the stores are rebuilt from the topics.")
    table_restore_batch: int = Field(
        50_000, description="Changelog records per write batch when a worker restores its table in bulk before "
                            "Faust starts (0: no bulk restore; Faust's own recovery reads the whole changelog).")
    store_check_interval_s: float = Field(
        5.0, description="How often the sinks compare the store's markers with what they applied (and replay a gap).")
    worker_url: str | None = Field(
        None, description="A worker's HTTP address for `paystream query summary` and `tables export payments`; "
                          "default: http://<ingress host>:<worker web port>.")
    advertised_host: str | None = Field(
        None, description="The address other worker and analytics processes reach this one at (table routing, "
                          "gathered answers); default: the ingress host. On Kubernetes: the pod's IP.")
    analytics_id: str = "paystream-analytics"
    analytics_web_port: int | None = Field(
        None, description="The analytics process's web port; default: the worker's plus 2 (6068).")
    analytics_url: str | None = Field(
        None, description="An analytics process's HTTP address for `paystream query`, `tables export` and the "
                          "monitor; default: http://<ingress host>:<analytics web port>.")
    analytics_minute_retention_s: int = Field(
        2 * 24 * 3600, description="How long per-minute and rolling (10-minute) windows are kept.")
    analytics_hour_retention_s: int = Field(90 * 24 * 3600, description="How long per-hour windows are kept.")
    transaction_index_ttl_s: int = 30 * 24 * 3600

    # --- monitoring ----------------------------------------------------------
    heartbeat_interval_s: float = Field(2.0, description="How often every process publishes a heartbeat.")
    missed_beats_down: int = Field(3, description="Missed heartbeats after which a component is down.")
    crash_loop_restarts: int = Field(3, description="Restarts within the window that make a crash loop.")
    crash_loop_window_s: float = Field(300.0, description="The crash-loop window (seconds).")
    monitor_host: str = "127.0.0.1"
    monitor_port: int = 8090
    monitor_scrape_urls: str = Field(
        "", description="The /metrics pages the monitor may scrape, comma-separated (a heartbeat naming any "
                        "other is not fetched); default: those of the ingress, worker and sinks ports.")
    analytics_refresh_s: float = Field(10.0, description="How often the monitor reads the windowed charts.")
    log_level: str = "INFO"

    # --- reconciliation (paystream reconcile, and the monitor) ---------------
    reconcile_interval_s: float = Field(
        60.0, description="How often the monitor reconciles with the provider; 0 turns it off.")
    reconcile_settle_s: float = Field(
        60.0, description="Payments changed more recently than this are in flight: judged on a later run.")
    reconcile_lookback_s: float = Field(
        3600.0, description="How far back the monitor's first run reaches; later runs read what changed since.")

    @property
    def worker_url_list(self) -> list[str]:
        """Where status reads ask the workers' table: the given addresses, else the worker's own."""
        given = [u.strip().rstrip("/") for u in self.worker_urls.split(",") if u.strip()]
        return given or [self.worker_base_url]

    @property
    def monitor_scrape_url_list(self) -> list[str]:
        given = [u.strip() for u in self.monitor_scrape_urls.split(",") if u.strip()]
        return given or [f"http://{self.ingress_host}:{port}/metrics"
                         for port in (self.ingress_port, self.worker_web_port, self.sinks_web_port)]

    @property
    def analytics_port(self) -> int:
        return self.analytics_web_port or self.worker_web_port + 2

    @property
    def analytics_base_url(self) -> str:
        return (self.analytics_url or f"http://{self.ingress_host}:{self.analytics_port}").rstrip("/")

    @property
    def worker_base_url(self) -> str:
        return (self.worker_url or f"http://{self.ingress_host}:{self.worker_web_port}").rstrip("/")

    @property
    def topics(self) -> "TopicNames":
        return TopicNames.for_prefix(self.topic_prefix)

    @property
    def couchbase_mgmt(self) -> str:
        """The cluster's (first) REST address: the setting, or port 8091 of the connection string's first host."""
        return self.couchbase_mgmt_urls[0]

    @property
    def couchbase_mgmt_urls(self) -> list[str]:
        """Every REST address the setting names (comma-separated: any node can answer for the cluster)."""
        if self.couchbase_mgmt_url:
            return [url.strip().rstrip("/") for url in self.couchbase_mgmt_url.split(",") if url.strip()]
        first = self.couchbase_connstr.split("://", 1)[-1].split(",")[0].split("?")[0]
        return [f"http://{urlsplit('//' + first).hostname or '127.0.0.1'}:8091"]


def get_settings() -> Settings:
    return Settings()
