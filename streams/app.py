"""Faust application factory shared by the worker and the sinks."""

from __future__ import annotations

import faust
from mode.utils.times import want_seconds

from paystream import tuning
from paystream.settings import Settings
from paystream.topics import TopicSpec
from streams.readiness import add_readiness_page


def make_app(app_id: str, settings: Settings, web_port: int, store: str = "rocksdb://") -> faust.App:
    """`store`: where tables live. The worker's payments table is in RocksDB (rocksdict); the sinks
    have no table and pass "memory://", so no RocksDB library is loaded beside the Couchbase SDK."""
    datadir = (settings.data_dir / app_id).resolve()
    datadir.parent.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        app_id,
        broker=f"kafka://{settings.kafka_bootstrap}",
        # RocksDB through rocksdict (faust-streaming uses it when python-rocksdb is absent).
        store=store,
        datadir=str(datadir),
        topic_partitions=settings.payment_topic_partitions,
        topic_replication_factor=1,
        # Correctness rests on idempotent steps, not on Kafka transactions (see streams/worker.py).
        processing_guarantee="at_least_once",
        producer_acks=-1,
        # Batching per hop (paystream/tuning.py): a flush before a reply still waits for every record.
        producer_linger=tuning.KAFKA_STREAM_LINGER_MS / 1000,
        producer_max_batch_size=tuning.KAFKA_MAX_BATCH_BYTES,
        web_bind=settings.ingress_host,
        web_port=web_port,
        # How the other workers reach this one (Faust's table routing and our gathered queries).
        canonical_url=f"http://{settings.advertised_host or settings.ingress_host}:{web_port}",
        web_in_thread=False,
        consumer_auto_offset_reset="earliest",
        # A killed worker's partitions move to a new one within seconds, not a minute.
        broker_session_timeout=10.0,
        broker_heartbeat_interval=2.0,
        autodiscover=False,
        # Faust's own pages would serve table contents (e-mails, payment methods) to anyone who
        # can reach the port; ours are in streams/web.py, behind the internal token.
        web_tables_enabled=False,
        web_graph_enabled=False,
        web_stats_enabled=False,
    )
    add_readiness_page(app)
    return app


def internal_topic_specs(app: faust.App) -> list[TopicSpec]:
    """Faust's own topics of an app (table changelogs, internal topics), to create before it starts.

    Faust creates them itself while joining its group, and the first
    assignment can then miss them ("Ignoring missing topic"): an agent writing
    a table whose changelog the assignment missed crashes with
    PartitionsMismatch until the next rebalance."""
    topics = [table.changelog_topic for table in app.tables.values()]
    topics += [agent.channel for agent in app.agents.values() if getattr(agent.channel, "internal", False)]
    specs = []
    for topic in topics:
        config = {}
        policy = ",".join(name for name, on in (("compact", topic.compacting), ("delete", topic.deleting)) if on)
        if policy:
            config["cleanup.policy"] = policy
        if topic.retention:
            config["retention.ms"] = str(int(want_seconds(topic.retention) * 1000))
        specs += [TopicSpec(name, topic.partitions or app.conf.topic_partitions, config) for name in topic.topics]
    return specs
