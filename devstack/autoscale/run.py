"""`paystream autoscale`: reads the load the monitor gathered from the heartbeats every few seconds
and scales ingress and workers with `paystream scale` (devstack/scaling.py) as the policy says.

Every decision goes on the alerts topic (an Alert: subject = the kind, previous and state = the
instance counts) and into the log. It changes the dev stack's supervisord programs, so it lives in
the dev stack; on Kubernetes the HorizontalPodAutoscaler and KEDA do the same job (deploy/k8s/).
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
import urllib.request
from collections.abc import Callable

from aiokafka import AIOKafkaProducer

from devstack import scaling
from devstack.autoscale.policy import Autoscaler, Bounds, Decision, Load, Policy
from devstack.settings import DevSettings
from devstack.stack import instances
from paystream import messages
from paystream.clock import utc_now
from paystream.messages import Alert


def policy(settings: DevSettings) -> Policy:
    s = settings
    return Policy(
        ingress=Bounds(s.autoscale_cpu_low, s.autoscale_cpu_high, s.autoscale_ingress_min,
                       min(s.autoscale_ingress_max, s.ingress_max_instances)),
        worker=Bounds(s.autoscale_lag_low, s.autoscale_lag_high, s.autoscale_worker_min,
                      min(s.autoscale_worker_max, instances.limits(s)["worker"])),
        sustain=s.autoscale_sustain, cooldown_s=s.autoscale_cooldown_s)


def read_load(settings: DevSettings) -> Load:
    """The latest heartbeat of every live ingress and worker, as the monitor keeps them."""
    url = f"http://{settings.monitor_host}:{settings.monitor_port}/api/status"
    with urllib.request.urlopen(url, timeout=5) as resp:
        components = [c for c in json.load(resp)["components"] if c["state"] == "up"]
    return Load(ingress_cpu=[c["cpu_percent"] or 0.0 for c in components if c["kind"] == "ingress"],
                worker_lag=sum(c["consumer_lag"] or 0 for c in components if c["kind"] == "worker"))


async def run(settings: DevSettings, say: Callable[[str], None], readings: int | None = None) -> None:
    """Read, decide, scale; `readings` times, or until SIGINT or SIGTERM (a scale under way is finished)."""
    this = asyncio.current_task()
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        # Installed here, not inherited: a shell that starts the scaler in the background ignores SIGINT.
        asyncio.get_running_loop().add_signal_handler(stop_signal, this.cancel)
    scaler = Autoscaler(policy(settings))
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    say(f"autoscaling: {scaler.policy}")
    try:
        count = 0
        while readings is None or count < readings:
            count += 1
            started = time.monotonic()
            try:
                load = await asyncio.to_thread(read_load, settings)
            except OSError as exc:
                say(f"no reading from the monitor ({exc}); trying again")
            else:
                for decision in scaler.decide(load, instances.counts(settings), time.monotonic()):
                    await _apply(settings, producer, decision, say)
            await asyncio.sleep(max(0.0, settings.autoscale_interval_s - (time.monotonic() - started)))
    except asyncio.CancelledError:
        say("stopping")
    finally:
        await producer.stop()


async def _apply(settings: DevSettings, producer: AIOKafkaProducer, decision: Decision,
                 say: Callable[[str], None]) -> None:
    say(f"scaling {decision.kind} {decision.before} -> {decision.after}: {decision.reason}")
    alert = Alert(at=utc_now(), subject=decision.kind, kind="autoscale", previous=str(decision.before),
                  state=str(decision.after), reason=decision.reason)
    await producer.send_and_wait(settings.topics.alerts, key=decision.kind.encode(), value=messages.encode(alert))
    await asyncio.to_thread(scaling.scale, settings, {decision.kind: decision.after}, say)
