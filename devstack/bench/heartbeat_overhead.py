"""What heartbeats cost: bytes per second per component (read off the heartbeats
topic of the running system) and CPU per beat (timed in-process).

    .venv/bin/python -m devstack.bench.heartbeat_overhead [--seconds 20] [--beats 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import defaultdict

from kafka import KafkaConsumer, TopicPartition

from devstack.settings import get_dev_settings
from paystream.observability.heartbeat import HeartbeatSource


def bytes_per_component(seconds: float) -> dict[str, tuple[int, int]]:
    settings = get_dev_settings()
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None, enable_auto_commit=False)
    topic = settings.topics.heartbeats
    tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
    consumer.assign(tps)
    consumer.seek_to_end()
    seen: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=500).values():
            for r in records:
                entry = seen[r.key.decode()]
                entry[0] += 1
                entry[1] += len(r.key) + len(r.value)
    consumer.close()
    return {k: (v[0], v[1]) for k, v in seen.items()}


async def cpu_per_beat(beats: int) -> float:
    source = HeartbeatSource("bench", 0, None)
    started = time.process_time()
    for _ in range(beats):
        source.encode(await source.beat())
    return (time.process_time() - started) / beats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--beats", type=int, default=2000)
    args = parser.parse_args()
    interval = get_dev_settings().heartbeat_interval_s

    per_beat = asyncio.run(cpu_per_beat(args.beats))
    print(f"CPU per beat: {per_beat * 1e6:.0f} µs -> {per_beat / interval * 100:.3f} % of one core "
          f"at one beat every {interval:g} s")
    print(f"\nheartbeats seen in {args.seconds:g} s:")
    print(f"{'component':28} {'beats':>6} {'bytes/beat':>11} {'bytes/s':>8}")
    for component, (count, size) in sorted(bytes_per_component(args.seconds).items()):
        print(f"{component:28} {count:6d} {size / count:11.0f} {size / args.seconds:8.1f}")


if __name__ == "__main__":
    main()
