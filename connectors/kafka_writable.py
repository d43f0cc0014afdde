"""Whether a record could be written now: its partition's leader answers.

An idempotent producer keeps a record it holds until Kafka comes back, however
long; a caller that must answer at once (a client told 503 must be able to trust
that nothing was written) asks here first, within `timeout_s`.
"""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner

#: The producer's own default (murmur2 of the key, as the Java client and Faust): a payment's commands
#: land on the partition its table entry lives in.
_partitioner = DefaultPartitioner()


async def writable_partition(producer: AIOKafkaProducer, topic: str, key: bytes, timeout_s: float) -> int | None:
    """The key's partition, once its leader answers within `timeout_s`; None when it does not."""
    cluster = producer.client.cluster
    if cluster.partitions_for_topic(topic) is None:  # not asked about yet: fetch the topic's metadata
        try:
            await asyncio.wait_for(producer.partitions_for(topic), timeout_s)
        except (TimeoutError, KafkaError):
            pass
    partitions = sorted(cluster.partitions_for_topic(topic) or ())
    if partitions:
        partition = _partitioner(key, partitions, partitions)
        leader = cluster.leader_for_partition(TopicPartition(topic, partition))
        if leader is not None and leader >= 0:
            try:
                if await asyncio.wait_for(producer.client.ready(leader), timeout_s):
                    return partition
            except TimeoutError:
                pass
    # Metadata may be stale (a broker restarted elsewhere): refresh it for the next request.
    producer.client.force_metadata_update()
    return None
