"""How soon Kafka serves again after `paystream stack up kafka`: once after a clean stop (the
floor) and once after a SIGKILL. `python -m devstack.bench.kafka_restart [--rounds N]` on the
running stack's broker (its data stays; clients see it go away as in any restart).

Serving means: a message produced with acks=all to one of paystream's topics is acknowledged.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import threading
import time
from dataclasses import dataclass

from kafka import KafkaProducer

from connectors.kafka_admin import create_topics
from devstack.settings import DevSettings, get_dev_settings
from devstack.stack.manager import Stack
from devstack.stack.process import wait_gone, wait_ports_free
from paystream.topics import TopicSpec


def probe_topic(settings: DevSettings) -> str:
    """A topic of its own: paystream's topics carry only their own typed messages."""
    name = f"{settings.topic_prefix}.kafka-restart-probe"
    create_topics(settings.kafka_bootstrap, [TopicSpec(name, 1, {"retention.ms": str(3600 * 1000)})])
    return name


def serving(settings: DevSettings, topic: str, timeout_s: float = 120.0) -> None:
    """Until a fresh producer's message is acknowledged; each try is short, so a client that met the
    broker half-started does not stretch the measure by its own 30 s request timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all", max_block_ms=2000,
                                     request_timeout_ms=2000, bootstrap_timeout_ms=2000,
                                     reconnect_backoff_max_ms=200)
            try:
                producer.send(topic, b"kafka restart probe").get(timeout=3)
                return
            finally:
                producer.close(timeout=1)
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@dataclass
class Restart:
    serving_s: float  # from the start of `stack up kafka` until a message is acknowledged
    up_s: float  # until `stack up kafka` returned (its own probe answered)


def restart(settings: DevSettings, how: str) -> Restart:
    """Stop the broker (`clean`: `stack down kafka`; `kill`: SIGKILL), then run `stack up kafka` while
    a client keeps trying to produce, and time both."""
    stack = Stack(settings, say=lambda line: None)
    kafka = stack.services["kafka"]
    topic = probe_topic(settings)  # while the broker is up
    if how == "clean":
        stack.down(["kafka"])
    else:
        pid = stack.running(kafka).pid
        os.kill(pid, signal.SIGKILL)
        wait_gone(pid)
        wait_ports_free(kafka.ports())
    started = time.monotonic()
    served: list[float] = []
    client = threading.Thread(target=lambda: (serving(settings, topic), served.append(time.monotonic() - started)))
    client.start()
    stack.up(["kafka"])
    up = time.monotonic() - started
    client.join()
    return Restart(serving_s=served[0], up_s=up)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    settings = get_dev_settings()
    times: dict[str, list[Restart]] = {"clean": [], "kill": []}
    for _ in range(args.rounds):
        for how, done in times.items():
            done.append(restart(settings, how))
            print(f"{how}: serving after {done[-1].serving_s:.1f} s, `stack up kafka` returned after {done[-1].up_s:.1f} s")
    for how, done in times.items():
        serving_s, up_s = [r.serving_s for r in done], [r.up_s for r in done]
        print(f"{how}: serving after median {statistics.median(serving_s):.1f} s (max {max(serving_s):.1f}), "
              f"`stack up` returned after median {statistics.median(up_s):.1f} s (max {max(up_s):.1f}), {len(done)} rounds")


if __name__ == "__main__":
    main()
