"""One settings object for every paystream process.

Every field can be set from the environment as ``PAYSTREAM_<FIELD>``
(for example ``PAYSTREAM_KAFKA_BOOTSTRAP``) or from a ``.env`` file in the
working directory, which git ignores. ``COUCHBASE_CONNSTR`` is read without
the prefix because it is the name Couchbase's own tools use. The local dev
stack (devstack/) writes the addresses it learns into ``.env``; nothing here
knows that it exists.

The fields stay flat (``settings.ingress_port``, ``PAYSTREAM_INGRESS_PORT``);
each names the process that reads it in its ``group`` (``in_group(...)``), which is
how docs/settings.md is laid out (``paystream settings --markdown`` writes it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from paystream.topics import TopicNames

# The groups of the settings table, in its order: the process that reads a setting, or the shared
# service it reaches. The dev stack adds its own (devstack/settings.py).
GROUPS = {
    "shared": "Every process",
    "kafka": "Kafka (every process)",
    "store": "Couchbase, the read model (ingress, sinks, monitor, `store rebuild`)",
    "cache": "Redis: receipt cache, idempotency, API keys, rate limits (ingress, sinks)",
    "provider": "The card-payment provider, Stripe's shape (worker, reconciliation)",
    "paypal": "PayPal, the second provider (worker, reconciliation), and which provider a payment goes to "
              "(ingress)",
    "ingress": "Ingress: the HTTP API",
    "worker": "Worker: the payments agent and its table",
    "sinks": "Sinks: events and receipts into the stores",
    "analytics": "Analytics: windows and per-user tables",
    "monitor": "Monitor: heartbeats, probes, status page, reconciliation",
}


def in_group(group: str) -> dict[str, Any]:
    """A field's group, kept in its JSON-schema extras for the settings table."""
    return {"group": group}


ProviderName = Literal["stripe", "paypal"]
PROVIDERS: tuple[ProviderName, ...] = ("stripe", "paypal")


class AccountProviders(BaseModel):
    """One account's choice of provider (`account_providers`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: ProviderName | None = None
    fallback: bool = False


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PAYSTREAM_", env_file=".env", extra="ignore", frozen=True
    )

    # --- every process -----------------------------------------------------
    data_dir: Path = Field(Path(".paystream"), json_schema_extra=in_group("shared"),
                           description="Where the worker, analytics and sinks keep their local (RocksDB) tables.")
    log_level: str = Field("INFO", json_schema_extra=in_group("shared"), description="Log level of every process.")
    heartbeat_interval_s: float = Field(2.0, json_schema_extra=in_group("shared"),
                                        description="How often every process publishes a heartbeat.")
    internal_token: SecretStr = Field(
        SecretStr(""), json_schema_extra=in_group("shared"),
        description="Bearer token of the internal HTTP pages (the worker's and analytics' table queries); "
                    "empty: those pages answer 401 to everyone (`stack up` makes one in .env).")
    poison_max_attempts: int = Field(
        3, json_schema_extra=in_group("shared"),
        description="Times the worker (and the sinks, for a failure that is not an outage) try a message whose "
                    "handling raises before they set it aside on the dead-letter topic (its partition then "
                    "moves on).")
    poison_retry_backoff_s: float = Field(0.2, json_schema_extra=in_group("shared"),
                                          description="First wait between those tries (doubling).")

    # --- Kafka -------------------------------------------------------------
    kafka_bootstrap: str = Field("127.0.0.1:9092", json_schema_extra=in_group("kafka"),
                                 description="Kafka's bootstrap address(es), comma-separated host:port.")
    topic_prefix: str = Field("paystream", json_schema_extra=in_group("kafka"),
                              description="Prefix of every topic paystream creates (`<prefix>.payment-commands`, ...).")
    payment_topic_partitions: int = Field(
        6, json_schema_extra=in_group("kafka"),
        description="Partitions of the payment topics (created where missing): the most workers that share them.")

    # --- Couchbase ---------------------------------------------------------
    couchbase_connstr: str = Field(
        "couchbase://127.0.0.1", json_schema_extra=in_group("store"),
        validation_alias=AliasChoices("COUCHBASE_CONNSTR", "PAYSTREAM_COUCHBASE_CONNSTR"),
        description="The Couchbase cluster (`stack up` writes the local one's into .env).",
    )
    couchbase_mgmt_url: str | None = Field(
        None, json_schema_extra=in_group("store"),
        description="REST address(es) of the cluster, comma-separated (monitor probes ask the first that "
                    "answers); default: port 8091 of the connection string's first host.")
    couchbase_username: str = Field("Administrator", json_schema_extra=in_group("store"),
                                    description="The cluster user paystream connects as.")
    couchbase_password: SecretStr = Field(SecretStr("password"), json_schema_extra=in_group("store"),
                                          description="That user's password.")
    couchbase_bucket: str = Field("payments", json_schema_extra=in_group("store"),
                                  description="The bucket of payments, receipts and the users' index.")
    couchbase_read_timeout_s: float = Field(
        1.0, json_schema_extra=in_group("store"),
        description="How long a read waits for a document's active copy, then for a replica, before the store "
                    "counts as unavailable.")

    # --- Redis -------------------------------------------------------------
    redis_url: str = Field("redis://127.0.0.1:6379/0", json_schema_extra=in_group("cache"),
                           description="The Redis of the receipt cache, idempotency records, API keys and rate limits.")
    redis_pool_size: int = Field(64, json_schema_extra=in_group("cache"),
                                 description="Connections in each Redis client's pool (per process).")
    redis_pool_timeout_s: float = Field(
        0.5, json_schema_extra=in_group("cache"),
        description="How long a call waits for a pooled Redis connection before Redis counts as unavailable "
                    "(a 503 from the API, never a 500).")
    receipt_cache_ttl_s: int = Field(7 * 24 * 3600, json_schema_extra=in_group("cache"),
                                     description="How long a receipt stays in the Redis cache (seconds).")
    transaction_index_ttl_s: int = Field(
        30 * 24 * 3600, json_schema_extra=in_group("cache"),
        description="How long Redis keeps a provider transaction id's link to its payment (seconds).")
    idempotency_ttl_s: int = Field(24 * 3600, json_schema_extra=in_group("cache"),
                                   description="How long an Idempotency-Key and its answer are remembered (seconds).")

    # --- card-payment provider ---------------------------------------------
    stripe_api_base: str = Field("http://127.0.0.1:8420", json_schema_extra=in_group("provider"),
                                 description="The card-payment provider's API (Stripe's shape).")
    stripe_api_key: SecretStr = Field(SecretStr("sk_test_paystream_local"), json_schema_extra=in_group("provider"),
                                      description="The provider's secret key (any `sk_…` works on the sandbox).")
    stripe_timeout_s: float = Field(10.0, json_schema_extra=in_group("provider"),
                                    description="Timeout of one provider request (seconds).")
    stripe_max_attempts: int = Field(
        4, json_schema_extra=in_group("provider"),
        description="Tries of one provider request on network errors, 409 and 5xx, unless the provider's "
                    "`Stripe-Should-Retry` says otherwise (never on a decline; a 429 only when it says so).")
    stripe_webhook_secret: SecretStr | None = Field(
        None, json_schema_extra=in_group("provider"),
        description="The secret Stripe signs webhooks with (`whsec_…`); unset: every webhook is refused.")

    # --- PayPal, and the choice of provider ---------------------------------
    paypal_api_base: str = Field(
        "http://127.0.0.1:8423", json_schema_extra=in_group("paypal"),
        description="PayPal's REST API (Orders v2, Payments v2): PayPal's live or sandbox address, or the dev "
                    "stack's stand-in (`stack up` writes its address into .env).")
    paypal_client_id: str = Field(
        "", json_schema_extra=in_group("paypal"),
        description="The PayPal app's client id (OAuth 2 client credentials); empty: PayPal is not offered "
                    "(`stack up` writes the stand-in's dev credentials into .env).")
    paypal_secret: SecretStr = Field(SecretStr(""), json_schema_extra=in_group("paypal"),
                                     description="The PayPal app's secret.")
    paypal_timeout_s: float = Field(10.0, json_schema_extra=in_group("paypal"),
                                    description="Timeout of one PayPal request (seconds).")
    paypal_max_attempts: int = Field(
        4, ge=1, json_schema_extra=in_group("paypal"),
        description="Tries of one PayPal request on network errors, 5xx, 429 and 409 PREVIOUS_REQUEST_IN_PROGRESS, "
                    "each with the same PayPal-Request-Id (never on a refusal).")
    default_provider: ProviderName = Field(
        "stripe", json_schema_extra=in_group("paypal"),
        description="The provider a payment goes to when its start names none and its account has no choice of "
                    "its own.")
    account_providers: dict[str, AccountProviders] = Field(
        {}, json_schema_extra=in_group("paypal"),
        description='Accounts\' own choice, JSON: `{"acme": {"provider": "paypal", "fallback": true}}`. '
                    "`provider`: the account's default; `fallback`: a start whose provider cannot be reached "
                    "(nothing made there yet) goes to the other provider instead of answering 503.")

    # --- ingress -----------------------------------------------------------
    ingress_host: str = Field("127.0.0.1", json_schema_extra=in_group("ingress"),
                              description="The address the API binds (and the host other defaults derive from).")
    ingress_port: int = Field(
        8080, json_schema_extra=in_group("ingress"),
        description="The API's port (in the dev stack HAProxy's public port; each ingress process gets its own).")
    ingress_reuse_port: bool = Field(
        False, json_schema_extra=in_group("ingress"),
        description="Bind the API's port with SO_REUSEPORT, so several ingress processes serve one port "
                    "without a balancer in front (the kernel spreads connections among them).")
    ingress_event_loop: Literal["asyncio", "uvloop"] = Field(
        "asyncio", json_schema_extra=in_group("ingress"),
        description="The API's event loop: the standard library's or uvloop (libuv). uvloop measured "
                    "less CPU per request but stalls and errors here (docs/benchmarks.md).")
    kafka_connect_timeout_s: float = Field(
        1.0, json_schema_extra=in_group("ingress"),
        description="How long the ingress tries to reach a command's partition leader before answering 503.")
    key_cache_s: float = Field(1.0, json_schema_extra=in_group("ingress"),
                               description="How long an ingress remembers an API key's record and a user's "
                                           "data key (0: never); a revocation or forget-user takes effect within it.")
    rate_limit: str = Field("100/second", json_schema_extra=in_group("ingress"),
                            description="Requests one API key may make, in `limits` notation "
                                        "(`N/second|minute|hour`); a key may carry its own.")
    reply_timeout_s: float = Field(10.0, json_schema_extra=in_group("ingress"),
                                   description="How long a write waits for its outcome before 202.")
    max_body_bytes: int = Field(64 * 1024, json_schema_extra=in_group("ingress"),
                                description="Larger request bodies are answered 413.")
    ingress_max_in_flight_reads: int = Field(
        256, json_schema_extra=in_group("ingress"),
        description="Ceiling of the adaptive limit on reads (every request but a payment's start or post) one "
                    "ingress process answers at once; past the limit, 503 overloaded with Retry-After.")
    ingress_read_latency_target_s: float = Field(
        0.1, json_schema_extra=in_group("ingress"),
        description="Admitted reads slower than this lower the adaptive limit on reads; quicker raise it.")
    ingress_max_in_flight_writes: int = Field(
        64, json_schema_extra=in_group("ingress"),
        description="Ceiling of the adaptive limit on payments (start, post) one ingress process has in hand.")
    ingress_write_latency_target_s: float | None = Field(
        None, json_schema_extra=in_group("ingress"),
        description="Admitted writes slower than this lower the adaptive limit on writes; quicker raise it. "
                    "Default: reply_timeout_s, the wait budget. A payment call's time is mostly its "
                    "provider's, which costs the ingress nothing: only a write that outlasts the budget "
                    "(answered 202) says the pipeline is behind (docs/admission.md).")
    user_token_secret: SecretStr = Field(
        SecretStr(""), json_schema_extra=in_group("ingress"),
        description="Signs the short-lived user tokens an API key mints (POST /v1/user_tokens); "
                    "empty: minting is refused and no token is accepted (`stack up` makes one in .env).")
    worker_urls: str = Field(
        "", json_schema_extra=in_group("ingress"),
        description="Comma-separated base URLs of workers the API asks for status reads from their "
                    "table, in turn (any one forwards to the worker holding the payment); empty: worker_url.")
    worker_query_timeout_s: float = Field(2.0, json_schema_extra=in_group("ingress"),
                                          description="How long a status read waits for a worker's table.")

    # --- worker ------------------------------------------------------------
    worker_id: str = Field("paystream-worker", json_schema_extra=in_group("worker"),
                           description="The worker's Faust app id: its consumer group and changelog topics' prefix.")
    worker_web_port: int = Field(
        6066, json_schema_extra=in_group("worker"),
        description="The worker's web server: /ready/ and /metrics open, table queries behind the internal token; "
                    "Faust's own table, graph and stats pages are off.")
    worker_concurrency: int = Field(
        256, json_schema_extra=in_group("worker"),
        description="Commands one worker handles at once (one at a time per payment): provider calls of "
                    "different payments overlap, so this bounds the calls in flight.")
    table_restore_batch: int = Field(
        50_000, json_schema_extra=in_group("worker"),
        description="Changelog records per write batch when a worker restores its table in bulk before "
                    "Faust starts (0: no bulk restore; Faust's own recovery reads the whole changelog).")
    worker_url: str | None = Field(
        None, json_schema_extra=in_group("worker"),
        description="A worker's HTTP address for `paystream query summary` and `tables export payments` (any "
                    "worker gathers from all); default: http://<ingress host>:<worker web port>.")
    advertised_host: str | None = Field(
        None, json_schema_extra=in_group("worker"),
        description="The address other worker and analytics processes reach this one at (table routing, "
                    "gathered answers); default: the ingress host. On Kubernetes: the pod's IP.")

    # --- sinks -------------------------------------------------------------
    sinks_id: str = Field("paystream-sinks", json_schema_extra=in_group("sinks"),
                          description="The sinks' Faust app id (their consumer group).")
    sinks_web_port: int = Field(6067, json_schema_extra=in_group("sinks"),
                                description="The sinks' web server: /ready/ and /metrics.")
    sinks_batch_max: int = Field(
        500, ge=1, json_schema_extra=in_group("sinks"),
        description="Most events the sinks take from a topic and write together as one batch.")
    sinks_batch_within_ms: float = Field(
        15.0, gt=0, json_schema_extra=in_group("sinks"),
        description="Longest the sinks wait for a batch to fill before writing what they have "
                    "(how long a lone event is held).")
    store_check_interval_s: float = Field(
        5.0, json_schema_extra=in_group("sinks"),
        description="How often the sinks compare the store's markers with what they applied (and replay a gap).")

    # --- analytics ---------------------------------------------------------
    analytics_id: str = Field("paystream-analytics", json_schema_extra=in_group("analytics"),
                              description="The analytics' Faust app id: its consumer group and topics' prefix.")
    analytics_web_port: int | None = Field(
        None, json_schema_extra=in_group("analytics"),
        description="The analytics process's web port (/ready/, /metrics, the analysts' pages behind the "
                    "internal token); default: the worker's plus 2 (6068).")
    analytics_url: str | None = Field(
        None, json_schema_extra=in_group("analytics"),
        description="An analytics process's HTTP address for `paystream query`, `tables export` and the "
                    "monitor (any one gathers from all); default: http://<ingress host>:<analytics web port>.")
    analytics_minute_retention_s: int = Field(
        2 * 24 * 3600, json_schema_extra=in_group("analytics"),
        description="How long per-minute and rolling (10-minute) windows are kept (seconds).")
    analytics_hour_retention_s: int = Field(90 * 24 * 3600, json_schema_extra=in_group("analytics"),
                                            description="How long per-hour windows are kept (seconds).")

    # --- monitor -----------------------------------------------------------
    monitor_host: str = Field("127.0.0.1", json_schema_extra=in_group("monitor"),
                              description="The address the monitor binds.")
    monitor_port: int = Field(8090, json_schema_extra=in_group("monitor"),
                              description="The monitor's port: status page, /health, /metrics.")
    monitor_scrape_urls: str = Field(
        "", json_schema_extra=in_group("monitor"),
        description="The /metrics pages the monitor may scrape, comma-separated (a heartbeat naming any "
                    "other is not fetched); default: those of the ingress, worker and sinks ports (the dev stack gives "
                    "the monitor every instance's page `paystream dev scale` may start).")
    missed_beats_down: int = Field(3, json_schema_extra=in_group("monitor"),
                                   description="Missed heartbeats after which a component is down.")
    crash_loop_restarts: int = Field(3, json_schema_extra=in_group("monitor"),
                                     description="Restarts within the window that make a crash loop.")
    crash_loop_window_s: float = Field(300.0, json_schema_extra=in_group("monitor"),
                                       description="The crash-loop window (seconds).")
    analytics_refresh_s: float = Field(10.0, json_schema_extra=in_group("monitor"),
                                       description="How often the monitor reads the windowed charts.")
    reconcile_interval_s: float = Field(
        60.0, json_schema_extra=in_group("monitor"),
        description="How often the monitor reconciles with the provider; 0 turns it off.")
    reconcile_settle_s: float = Field(
        60.0, json_schema_extra=in_group("monitor"),
        description="Payments changed more recently than this are in flight: judged on a later run "
                    "(also `paystream reconcile`'s default).")
    reconcile_lookback_s: float = Field(
        3600.0, json_schema_extra=in_group("monitor"),
        description="How far back the monitor's first run reaches; later runs read what changed since.")

    @property
    def providers_offered(self) -> tuple[ProviderName, ...]:
        """The providers a payment may go to: Stripe, and PayPal once its credentials are set."""
        return PROVIDERS if self.paypal_client_id else ("stripe",)

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
