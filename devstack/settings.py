"""The dev stack's settings: paystream's own, plus where and how the local services run.

Read like paystream's (``PAYSTREAM_<FIELD>`` or ``.env``). Each field names its group (``in_group(...)``),
the layout of docs/dev-settings.md (``paystream dev settings --markdown`` writes it).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr

from paystream.settings import Settings, in_group

# The groups of the dev settings table, in its order.
DEV_GROUPS = {
    "stack": "The local services (`paystream dev stack`)",
    "pipeline": "paystream's processes in the background (`paystream dev pipeline`)",
    "scaling": "HAProxy and scaling (`paystream dev scale`, `paystream dev autoscale`)",
    "bench": "Benchmarks and test helpers (`paystream dev bench`, `paystream dev chaos`, the contract test)",
}


class DevSettings(Settings):
    state_dir: Path = Field(Path(".stack"), json_schema_extra=in_group("stack"),
                            description="Data, logs and pid files of the local stack (the pipeline's tables in "
                                        "<state_dir>/data).")
    tools_dir: Path | None = Field(None, json_schema_extra=in_group("stack"),
                                   description="Downloaded and built tools; defaults to <state_dir>/tools.")
    env_file: Path = Field(Path(".env"), json_schema_extra=in_group("stack"),
                           description="Where `stack up` writes the addresses it learns.")
    service_start_timeout_s: float = Field(120.0, json_schema_extra=in_group("stack"),
                                           description="How long `stack up` waits for each service to answer.")

    kafka_controller_port: int = Field(9093, json_schema_extra=in_group("stack"),
                                       description="The local broker's KRaft controller port.")
    kafka_version: str = Field("4.1.1", json_schema_extra=in_group("stack"),
                               description="The Apache Kafka release whose jars `stack up` fetches from Maven Central.")
    kafka_heap: str = Field("768m", json_schema_extra=in_group("stack"), description="The local broker's Java heap.")

    couchbase_nodes: int = Field(3, json_schema_extra=in_group("stack"), description="Nodes of the local (gocaves) cluster.")
    couchbase_replicas: int = Field(2, json_schema_extra=in_group("stack"),
                                    description="Replicas of each document in the local cluster.")
    couchbase_base_port: int = Field(
        12000, json_schema_extra=in_group("stack"),
        description="First of the local cluster's ports (12 per node, fixed across restarts).")
    gocaves_version: str = Field("v0.0.1-75", json_schema_extra=in_group("stack"),
                                 description="The gocaves release `stack up` builds (the Couchbase mock cluster).")
    stripe_sandbox_persist: bool = Field(
        True, json_schema_extra=in_group("stack"),
        description="Whether the local sandbox keeps its payments across restarts (benchmarks turn it off).")
    paypal_sandbox_port: int | None = Field(
        None, json_schema_extra=in_group("stack"),
        description="Port of the local PayPal stand-in (devstack/paypal_standin.py, Orders v2 and Payments v2); "
                    "default: the Stripe sandbox's + 3.")

    dev_api_key: SecretStr = Field(
        SecretStr(""), json_schema_extra=in_group("stack"),
        description="The development key `paystream dev apikey` prints (made once, kept in .env, "
                    "registered under account `dev`); client keys live hashed in Redis.")

    pipeline_start_secs: int = Field(
        5, json_schema_extra=in_group("pipeline"),
        description="A pipeline process that dies sooner after its start is retried with backoff.")
    pipeline_start_retries: int = Field(
        10, json_schema_extra=in_group("pipeline"),
        description="Failed starts in a row (backoff 1, 2, 3 ... s) before supervisord gives up.")
    pipeline_log_max_bytes: int = Field(20 * 1024 * 1024, json_schema_extra=in_group("pipeline"),
                                        description="A pipeline log is rotated at this size.")
    pipeline_nice: int = Field(
        10, ge=0, le=19, json_schema_extra=in_group("pipeline"),
        description="CPU niceness of the processes behind the read path (Kafka, workers, sinks, analytics, "
                    "the monitor) on this one machine: the ingress, HAProxy and Redis get the CPU first, as the "
                    "Kubernetes manifests' CPU requests give them theirs (docs/admission.md); 0 turns it off.")
    pipeline_log_backups: int = Field(5, json_schema_extra=in_group("pipeline"), description="Rotated pipeline logs kept.")
    ingress_instances: int = Field(
        2, ge=1, json_schema_extra=in_group("pipeline"),
        description="Ingress processes `pipeline up` starts behind HAProxy (until `paystream dev scale` records "
                    "others in .stack/scale.json); instance n listens on the ingress port + n.")
    worker_instances: int = Field(
        1, ge=1, json_schema_extra=in_group("pipeline"),
        description="Workers `pipeline up` starts (at most the payment partitions); worker n ≥ 2 listens on the "
                    "worker's port + 1000 + n.")
    sinks_instances: int = Field(
        1, ge=1, json_schema_extra=in_group("pipeline"),
        description="Sinks processes `pipeline up` starts; sinks n ≥ 2 listen on the sinks' port + 2000 + n.")

    ingress_max_instances: int = Field(
        8, ge=1, le=9, json_schema_extra=in_group("scaling"),
        description="Most ingress processes `paystream dev scale` runs (their ports stay below the monitor's).")
    scale_max_instances: int = Field(8, ge=1, le=9, json_schema_extra=in_group("scaling"),
                                     description="Most workers or sinks `paystream dev scale` runs (never above the partitions).")
    balancer_check_interval_ms: int = Field(
        1000, json_schema_extra=in_group("scaling"),
        description="How often HAProxy checks each ingress's /health; 2 failures in a row take it out, 2 "
                    "successes bring it back.")
    balancer_timeout_s: int = Field(
        60, json_schema_extra=in_group("scaling"),
        description="HAProxy's client and server timeout (over the longest a payment waits for its reply).")
    balancer_read_maxconn: int = Field(
        16, ge=1, json_schema_extra=in_group("scaling"),
        description="Reads (every request but a payment's start or post) HAProxy gives one ingress at once; the "
                    "rest wait in the read backend's queue. A cache hit costs the ingress about 1 ms, so 16 is "
                    "about 16 ms of its event loop: within the read p99, and at most the ingress's own floor on "
                    "reads, so HAProxy (not the process) queues them (docs/admission.md).")
    balancer_queue_timeout_ms: int = Field(
        250, ge=1, json_schema_extra=in_group("scaling"),
        description="How long a read waits in HAProxy's queue for a free ingress before it is answered 503 "
                    "(no_ingress_available, Retry-After): load shed before Python sees it.")
    balancer_write_maxconn: int | None = Field(
        None, ge=1, json_schema_extra=in_group("scaling"),
        description="Payment calls (POST startPayment, postPayment) HAProxy gives one ingress at once, on their own "
                    "backend beside the reads' (docs/admission.md); default: the ingress's own ceiling on writes "
                    "(ingress_max_in_flight_writes), so the ingress's bound decides and answers past it 503 "
                    "overloaded at once.")
    balancer_write_queue_timeout_ms: int = Field(
        20, ge=1, json_schema_extra=in_group("scaling"),
        description="How long a payment call waits in HAProxy's queue when every ingress has its "
                    "balancer_write_maxconn: short, so an overflow is refused (JSON 503 + Retry-After) at once "
                    "instead of after a wait a client would time out on.")
    drain_timeout_s: float = Field(
        30.0, json_schema_extra=in_group("scaling"),
        description="How long scale-in waits for an ingress's requests to finish before stopping it.")
    autoscale_interval_s: float = Field(2.0, json_schema_extra=in_group("scaling"),
                                        description="How often `paystream dev autoscale` reads the monitor.")
    autoscale_ingress_min: int = Field(1, ge=1, json_schema_extra=in_group("scaling"),
                                       description="Fewest ingress processes the autoscaler leaves.")
    autoscale_ingress_max: int = Field(4, ge=1, json_schema_extra=in_group("scaling"),
                                       description="Most ingress processes the autoscaler starts.")
    autoscale_cpu_high: float = Field(60.0, json_schema_extra=in_group("scaling"),
                                      description="Mean ingress CPU % above which an ingress is added.")
    autoscale_cpu_low: float = Field(15.0, json_schema_extra=in_group("scaling"),
                                     description="Mean ingress CPU % below which one is removed.")
    autoscale_worker_min: int = Field(1, ge=1, json_schema_extra=in_group("scaling"),
                                      description="Fewest workers the autoscaler leaves.")
    autoscale_worker_max: int = Field(
        3, ge=1, json_schema_extra=in_group("scaling"),
        description="Most workers the autoscaler starts (never above the payment partitions).")
    autoscale_lag_high: int = Field(500, json_schema_extra=in_group("scaling"),
                                    description="Summed worker consumer lag above which a worker is added.")
    autoscale_lag_low: int = Field(10, json_schema_extra=in_group("scaling"),
                                   description="Summed worker consumer lag below which one is removed.")
    autoscale_sustain: int = Field(3, ge=1, json_schema_extra=in_group("scaling"),
                                   description="Readings in a row past a threshold before a change.")
    autoscale_cooldown_s: float = Field(20.0, json_schema_extra=in_group("scaling"),
                                        description="Least time between two changes of the same kind (seconds).")

    chaos_worker_web_port: int | None = Field(
        None, json_schema_extra=in_group("bench"),
        description="Web port of the second worker a chaos run starts (fault `kill-one-of-two-workers`); default: "
                    "the worker's + 1000.")
    standin_port: int | None = Field(
        None, json_schema_extra=in_group("bench"),
        description="Port of the benchmarks' provider stand-in (devstack/standin.py); default: the sandbox's + 1.")
    standin_latency_ms: str = Field(
        "300-800", json_schema_extra=in_group("bench"),
        description="The stand-in's latency per call, uniform in this range (ms), as a real provider's.")
    stripe_mock_port: int | None = Field(
        None, json_schema_extra=in_group("bench"),
        description="Port of stripe-mock, the contract test's validating server, started by "
                    "tests/integration/test_stripe_contract.py; default: the sandbox's + 2.")

    @property
    def balancer_write_server_maxconn(self) -> int:
        return self.balancer_write_maxconn or self.ingress_max_in_flight_writes

    @property
    def standin_base(self) -> str:
        return f"http://{self.stripe_host}:{self.standin_port or self.stripe_port + 1}"

    @property
    def paypal_sandbox_base(self) -> str:
        return f"http://{self.stripe_host}:{self.paypal_sandbox_port or self.stripe_port + 3}"

    @property
    def stripe_mock_base(self) -> str:
        return f"http://{self.stripe_host}:{self.stripe_mock_port or self.stripe_port + 2}"

    @property
    def tools_path(self) -> Path:
        return self.tools_dir or self.state_dir / "tools"

    @property
    def pipeline_data_dir(self) -> Path:
        """The data folder of the pipeline processes the stack runs."""
        return self.state_dir / "data"

    # The balancer owns the public address (ingress_port); everything it needs is derived from that
    # port, so a stack moved by an offset (shifted_ports) moves it too.
    @property
    def balancer_https_port(self) -> int:
        return self.ingress_port + 363  # 8443 by default

    @property
    def balancer_stats_port(self) -> int:
        return self.ingress_port + 324  # 8404 by default: HAProxy's stats page and /metrics

    def ingress_instance_port(self, n: int) -> int:
        """Instance n (1, 2, ...) of the ingress answers here, behind the balancer."""
        return self.ingress_port + n

    def worker_instance_port(self, n: int) -> int:
        """The web port of worker n; n >= 2 lie past the chaos run's second worker (+1000)."""
        return self.worker_web_port if n == 1 else self.worker_web_port + 1000 + n

    def sinks_instance_port(self, n: int) -> int:
        return self.sinks_web_port if n == 1 else self.sinks_web_port + 2000 + n

    @property
    def second_worker_web_port(self) -> int:
        return self.chaos_worker_web_port or self.worker_web_port + 1000

    @property
    def kafka_host(self) -> str:
        return self.kafka_bootstrap.split(",")[0].rsplit(":", 1)[0]

    @property
    def kafka_port(self) -> int:
        return int(self.kafka_bootstrap.split(",")[0].rsplit(":", 1)[1])

    @property
    def redis_host(self) -> str:
        return urlsplit(self.redis_url).hostname or "127.0.0.1"

    @property
    def redis_port(self) -> int:
        return urlsplit(self.redis_url).port or 6379

    @property
    def stripe_host(self) -> str:
        return urlsplit(self.stripe_api_base).hostname or "127.0.0.1"

    @property
    def stripe_port(self) -> int:
        return urlsplit(self.stripe_api_base).port or 8420

    def shifted_ports(self, offset: int) -> dict[str, str]:
        """Every port of this stack moved by `offset`: the environment of a second stack beside it."""
        return {
            "PAYSTREAM_KAFKA_BOOTSTRAP": f"127.0.0.1:{self.kafka_port + offset}",
            "PAYSTREAM_KAFKA_CONTROLLER_PORT": str(self.kafka_controller_port + offset),
            "PAYSTREAM_REDIS_URL": f"redis://127.0.0.1:{self.redis_port + offset}/0",
            "PAYSTREAM_STRIPE_API_BASE": f"http://127.0.0.1:{self.stripe_port + offset}",
            "PAYSTREAM_COUCHBASE_BASE_PORT": str(self.couchbase_base_port + offset),
            "PAYSTREAM_INGRESS_PORT": str(self.ingress_port + offset),
            "PAYSTREAM_WORKER_WEB_PORT": str(self.worker_web_port + offset),
            "PAYSTREAM_SINKS_WEB_PORT": str(self.sinks_web_port + offset),
            "PAYSTREAM_ANALYTICS_WEB_PORT": str(self.analytics_port + offset),
            "PAYSTREAM_MONITOR_PORT": str(self.monitor_port + offset),
        }


def get_dev_settings() -> DevSettings:
    return DevSettings()
