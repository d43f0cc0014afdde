"""`paystream autoscale` on the running stack: a load step through the balancer adds an ingress,
the calm after it removes it again, and each decision is on the alerts topic."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time

import aiohttp

from devstack.stack import instances
from tests.conftest import PAYSTREAM, ROOT, new_api_key, paystream
from tests.kafka_probe import end_offsets, read_since

#: Low thresholds: on a machine shared with the load generator, getReceipt through the balancer at
#: a few hundred per second keeps each ingress near 30 % of a core, idle ones stay near 1 %.
AUTOSCALE_ENV = {
    "PAYSTREAM_AUTOSCALE_INTERVAL_S": "1", "PAYSTREAM_AUTOSCALE_SUSTAIN": "2", "PAYSTREAM_AUTOSCALE_COOLDOWN_S": "5",
    "PAYSTREAM_AUTOSCALE_INGRESS_MIN": "2", "PAYSTREAM_AUTOSCALE_INGRESS_MAX": "3",
    "PAYSTREAM_AUTOSCALE_CPU_HIGH": "15", "PAYSTREAM_AUTOSCALE_CPU_LOW": "5",
    "PAYSTREAM_AUTOSCALE_WORKER_MIN": "1", "PAYSTREAM_AUTOSCALE_WORKER_MAX": "1",
}


async def read_receipts(url: str, key: str, stop: asyncio.Event, clients: int = 16) -> int:
    answered = 0
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {key}"}) as http:
        async def one() -> None:
            nonlocal answered
            while not stop.is_set():
                async with http.get(url, params={"receipt_id": "rcpt_autoscale", "user_id": "nobody"}) as resp:
                    await resp.read()
                    answered += resp.status == 404
        await asyncio.gather(*(one() for _ in range(clients)))
    return answered


async def wait_for_count(settings, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while instances.counts(settings)["ingress"] != count:
        assert time.monotonic() < deadline, f"ingress is still {instances.counts(settings)['ingress']}"
        await asyncio.sleep(0.5)


async def test_a_load_step_adds_an_ingress_and_the_calm_after_removes_it(pipeline, stack, settings):
    assert paystream("scale", "ingress=2", "worker=1").returncode == 0
    alerts_before = end_offsets(stack["kafka"]["address"], settings.topics.alerts)
    key = new_api_key("autoscale", rate_limit="1000000/second")
    log = ROOT / settings.state_dir / "autoscale-test.log"
    with open(log, "wb") as out:
        scaler = subprocess.Popen([*PAYSTREAM, "autoscale"], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                  env={**os.environ, **AUTOSCALE_ENV})
    try:
        await asyncio.sleep(4)  # a few calm readings: nothing happens at 2 (the minimum)
        assert instances.counts(settings)["ingress"] == 2
        stop = asyncio.Event()
        load = asyncio.create_task(read_receipts(f"http://{settings.ingress_host}:{settings.ingress_port}"
                                                 "/v1/getReceipt", key, stop))
        await wait_for_count(settings, 3, timeout=60)
        stop.set()
        assert await load > 0
        await wait_for_count(settings, 2, timeout=90)
    finally:
        scaler.send_signal(signal.SIGTERM)
        scaler.wait(timeout=60)
        paystream("scale", "ingress=2")
    decisions = [(a["subject"], a["previous"], a["state"]) for a in read_since(
        stack["kafka"]["address"], settings.topics.alerts, alerts_before) if a["kind"] == "autoscale"]
    assert decisions == [("ingress", "2", "3"), ("ingress", "3", "2")], log.read_text()[-3000:]
    assert "scaling ingress 2 -> 3: mean CPU" in log.read_text()
