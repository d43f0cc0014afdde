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
import time

from kafka import KafkaProducer

from devstack.chaos.faults import _wait_free, _wait_gone
from devstack.settings import DevSettings, get_dev_settings
from devstack.stack.manager import Stack


def serving(settings: DevSettings, timeout_s: float = 120.0) -> None:
    """Until a fresh producer's message is acknowledged; each try is short, so a client that met the
    broker half-started does not stretch the measure by its own 30 s request timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all", max_block_ms=2000,
                                     request_timeout_ms=2000)
            try:
                producer.send(settings.topics.alerts, b'{"probe": "kafka restart"}').get(timeout=3)
                return
            finally:
                producer.close(timeout=1)
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def restart(settings: DevSettings, how: str) -> float:
    """Stop the broker (`clean`: `stack down kafka`; `kill`: SIGKILL), then the seconds from the start
    of `stack up kafka` until it acknowledges a message."""
    stack = Stack(settings, say=lambda line: None)
    kafka = stack.services["kafka"]
    if how == "clean":
        stack.down(["kafka"])
    else:
        pid = stack.running(kafka).pid
        os.kill(pid, signal.SIGKILL)
        _wait_gone(pid)
        _wait_free(kafka.ports())
    started = time.monotonic()
    stack.up(["kafka"])
    up = time.monotonic() - started
    serving(settings)
    print(f"  {how}: `stack up kafka` returned after {up:.1f} s")
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    settings = get_dev_settings()
    times = {"clean": [], "kill": []}
    for _ in range(args.rounds):
        for how in times:
            times[how].append(restart(settings, how))
            print(f"{how}: {times[how][-1]:.1f} s")
    for how, values in times.items():
        print(f"{how}: median {statistics.median(values):.1f} s, max {max(values):.1f} s over {len(values)}")


if __name__ == "__main__":
    main()
