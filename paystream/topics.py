"""The Kafka topics paystream owns, named from one prefix."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    #: Topic-level configs, e.g. compaction for topics read as tables.
    config: dict[str, str]


_SUFFIXES = {
    "commands": "payment-commands", "replies": "payment-replies", "events": "payment-events",
    "receipts": "receipts", "heartbeats": "heartbeats", "alerts": "alerts", "dead_letters": "dead-letters", "data_keys": "data-keys",
    "refunds": "refunds",
}


@dataclass(frozen=True)
class TopicNames:
    commands: str
    replies: str
    events: str
    receipts: str
    heartbeats: str
    alerts: str
    dead_letters: str
    data_keys: str
    refunds: str

    @classmethod
    def for_prefix(cls, prefix: str) -> TopicNames:
        return cls(**{name: f"{prefix}.{suffix}" for name, suffix in _SUFFIXES.items()})


def topic_specs(prefix: str, payment_partitions: int) -> list[TopicSpec]:
    """Every topic `stack up` creates. Faust creates its own changelog topics."""
    names = TopicNames.for_prefix(prefix)
    keep_forever = {"retention.ms": "-1"}
    return [
        # Commands from ingress, keyed by payment id so one payment stays on one partition.
        TopicSpec(names.commands, payment_partitions, keep_forever),
        # Outcomes for the ingress that waits on them, matched by correlation id.
        TopicSpec(names.replies, payment_partitions, {"retention.ms": str(24 * 3600 * 1000)}),
        # Every state change of every payment: what the sinks consume.
        TopicSpec(names.events, payment_partitions, keep_forever),
        # Receipts for downstream consumers, one per successful payment, keyed by receipt id.
        TopicSpec(names.receipts, payment_partitions, {"cleanup.policy": "compact"}),
        # Each refund as it enters a status, for downstream consumers, keyed by refund id (kept forever like
        # the events it is derived from).
        TopicSpec(names.refunds, payment_partitions, keep_forever),
        TopicSpec(names.heartbeats, 1, {"retention.ms": str(3600 * 1000)}),
        TopicSpec(names.alerts, 1, keep_forever),
        # Messages a consumer could not handle, with the error, for an operator to replay.
        TopicSpec(names.dead_letters, 1, keep_forever),
        # Each user's data key, keyed by account and user: what a lost store gets its keys back from.
        # Compacted, so a forgotten user's key (a tombstone after it) is physically gone once its
        # segment rolls and is cleaned: within minutes, not never.
        TopicSpec(names.data_keys, 1, {
            "cleanup.policy": "compact", "segment.ms": str(10 * 60 * 1000), "min.compaction.lag.ms": "0",
            "min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": str(24 * 3600 * 1000)}),
    ]
