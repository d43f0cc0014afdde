"""The Kafka topics paystream owns, named from one prefix."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    #: Topic-level configs, e.g. compaction for topics read as tables.
    config: dict[str, str]


def topic_specs(prefix: str, payment_partitions: int) -> list[TopicSpec]:
    """Every topic `stack up` creates. Faust creates its own changelog topics."""
    keep_forever = {"retention.ms": "-1"}
    return [
        # Commands from ingress, keyed by payment id so one payment stays on one partition.
        TopicSpec(f"{prefix}.payment-commands", payment_partitions, keep_forever),
        # Outcomes for the ingress that waits on them, matched by correlation id.
        TopicSpec(f"{prefix}.payment-replies", payment_partitions, {"retention.ms": str(24 * 3600 * 1000)}),
        # Every state change of every payment: what the sinks consume.
        TopicSpec(f"{prefix}.payment-events", payment_partitions, keep_forever),
        # Receipts for downstream consumers, one per successful payment, keyed by receipt id.
        TopicSpec(f"{prefix}.receipts", payment_partitions, {"cleanup.policy": "compact"}),
        TopicSpec(f"{prefix}.heartbeats", 1, {"retention.ms": str(3600 * 1000)}),
        TopicSpec(f"{prefix}.alerts", 1, keep_forever),
    ]
