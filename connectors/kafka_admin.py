"""Creates paystream's topics with kafka-python's admin client."""

from __future__ import annotations

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from paystream.settings import Settings
from paystream.topics import TopicSpec, topic_specs


def create_topics(bootstrap: str, specs: list[TopicSpec]) -> list[str]:
    """Create the topics that do not exist yet; return the names created."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="paystream-admin")
    try:
        existing = set(admin.list_topics())
        missing = [s for s in specs if s.name not in existing]
        if missing:
            try:
                admin.create_topics(
                    [NewTopic(s.name, s.partitions, 1, topic_configs=s.config) for s in missing]
                )
            except TopicAlreadyExistsError:
                pass  # another process raced us to it: the topic is there either way
        return [s.name for s in missing]
    finally:
        admin.close()


def ensure_topics(settings: Settings) -> list[str]:
    """paystream's own topics (see paystream/topics.py)."""
    return create_topics(settings.kafka_bootstrap, topic_specs(settings.topic_prefix, settings.payment_topic_partitions))


def describe_partitions(settings: Settings, topic: str) -> int:
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, client_id="paystream-admin")
    try:
        (meta,) = admin.describe_topics([topic])
        return len(meta["partitions"])
    finally:
        admin.close()
