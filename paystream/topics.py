"""The Kafka topics paystream owns, named from one prefix."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    #: Topic-level configs, e.g. compaction for topics read as tables.
    config: dict[str, str]


@dataclass(frozen=True)
class TopicNames:
    prefix: str

    @property
    def commands(self) -> str:
        return f"{self.prefix}.payment-commands"

    @property
    def replies(self) -> str:
        return f"{self.prefix}.payment-replies"

    @property
    def events(self) -> str:
        return f"{self.prefix}.payment-events"

    @property
    def receipts(self) -> str:
        return f"{self.prefix}.receipts"

    @property
    def heartbeats(self) -> str:
        return f"{self.prefix}.heartbeats"

    @property
    def alerts(self) -> str:
        return f"{self.prefix}.alerts"


def topic_specs(prefix: str, payment_partitions: int) -> list[TopicSpec]:
    """Every topic `stack up` creates. Faust creates its own changelog topics."""
    names = TopicNames(prefix)
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
        TopicSpec(names.heartbeats, 1, {"retention.ms": str(3600 * 1000)}),
        TopicSpec(names.alerts, 1, keep_forever),
    ]
