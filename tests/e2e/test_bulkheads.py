"""Reads never wait behind payments (issue 26, docs/admission.md): with the worker charging the provider
stand-in at 2 s a call, more payment calls are sent at once than every ingress has places for writes;
while they wait on the provider, every getReceipt through the balancer answers 200, and every payment
call past the places is refused at once with a JSON 503 and Retry-After, having done nothing.

The stack is left as found: the worker charges the Stripe sandbox again at the end.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import urllib.request
from urllib.parse import urlsplit

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from devstack.stack.balancer import Balancer
from devstack.stack.process import port_in_use
from tests.api_client import ApiClient, identity
from tests.conftest import ROOT, new_api_key, paystream

#: The stand-in's latency per provider call: a payment call holds its places for 2 s at least.
SLOW_PROVIDER_MS = "2000"
#: Payment calls sent past the places the ingress processes have for writes.
OVERFLOW = 24
#: Reads made while the payment calls wait.
READS = 200


def run_ok(*args: str, env: dict[str, str] | None = None) -> None:
    result = paystream(*args, env=env)
    assert result.returncode == 0, f"paystream {' '.join(args)}:\n{result.stdout}\n{result.stderr}"


def ingress_metric(address: str, name: str, kind: str) -> float:
    with urllib.request.urlopen(f"{address}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return sum(s.value for family in text_string_to_metric_families(text) for s in family.samples
               if s.name == name and s.labels.get("kind") == kind)


def full(ingress: str) -> bool:
    """Whether this ingress holds as many payment calls as its bound on writes admits now."""
    held = ingress_metric(ingress, "paystream_http_in_flight_requests", "writes")
    return held > 0 and held >= ingress_metric(ingress, "paystream_http_in_flight_limit", "writes")


@pytest.fixture
def slow_provider(pipeline, settings):
    """The pipeline charges the stand-in at 2 s a call; afterwards the sandbox again, the stand-in stopped."""
    where = urlsplit(settings.standin_base)
    assert not port_in_use(where.hostname, where.port), f"{settings.standin_base} is taken"
    log = ROOT / settings.state_dir / "standin-bulkheads.log"
    with open(log, "ab") as out:
        standin = subprocess.Popen([sys.executable, "-m", "devstack.standin", "--host", where.hostname,
                                    "--port", str(where.port), "--latency-ms", SLOW_PROVIDER_MS],
                                   cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while not port_in_use(where.hostname, where.port):
            assert standin.poll() is None and time.monotonic() < deadline, f"the stand-in did not start: {log}"
            time.sleep(0.2)
        # The whole pipeline, as the benchmarks switch it (devstack/bench/bench_stack.py): `pipeline up` gives
        # every program the caller's environment, so one restarted alone would restart the rest without theirs.
        run_ok("pipeline", "down")
        run_ok("pipeline", "up", env={"PAYSTREAM_STRIPE_API_BASE": settings.standin_base})
        yield settings.standin_base
    finally:
        run_ok("pipeline", "down")
        standin.terminate()
        standin.wait(timeout=10)
        run_ok("pipeline", "up")


async def test_reads_answer_while_payment_calls_wait_on_a_slow_provider(pipeline, stack, settings, slow_provider):
    balancer = Balancer(settings)
    key = new_api_key("bulkheads", rate_limit="100000/second")
    # A receipt to read, from a payment charged at the stand-in (its 2 s calls are slow, not failing).
    # No cap of the client's own on connections: every payment call must reach the balancer at once.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        api = ApiClient(balancer.address, key, slow_provider, settings.stripe_api_key.get_secret_value(), session)
        who = identity()
        started = await api.start(who)
        assert started.status == 201, started.body
        posted = await api.post(who, started.body["transaction_id"], "pm_card_visa")
        assert posted.status == 201, posted.body
        receipt = {"receipt_id": posted.body["receipt_id"], "user_id": who["user_id"]}
        headers = {"Authorization": f"Bearer {key}"}
        ingresses = [row["address"] for name, row in pipeline.items() if name.startswith("ingress")]
        places = sum(int(ingress_metric(a, "paystream_http_in_flight_limit", "writes")) for a in ingresses)

        async def start_payment() -> tuple[int, dict, dict, dict]:
            payer = identity()
            async with session.post(f"{balancer.address}/v1/startPayment", json={**payer, "amount": "5.00",
                                    "currency": "EUR"}, headers=headers) as resp:
                return resp.status, await resp.json(content_type=None), dict(resp.headers), payer

        payments = [asyncio.create_task(start_payment()) for _ in range(places + OVERFLOW)]
        # Until every ingress holds all the payment calls it has places for (each waits >= 2 s).
        deadline = time.monotonic() + 10
        while not all(full(a) for a in ingresses):
            assert time.monotonic() < deadline, "the payment calls never filled the ingress's places for writes"
            await asyncio.sleep(0.05)

        reads: list[tuple[int, dict]] = []

        async def read() -> None:
            async with session.get(f"{balancer.address}/v1/getReceipt", params=receipt, headers=headers) as resp:
                reads.append((resp.status, await resp.json(content_type=None)))

        for _ in range(READS // 8):
            await asyncio.gather(*(read() for _ in range(8)))
        writes_still_held = all(full(a) for a in ingresses)
        answers = await asyncio.gather(*payments)

        async def listed(payer: dict) -> list:
            answer = await api.call("GET", "/v1/payments", params={"user_id": payer["user_id"]})
            assert answer.status == 200, answer.body
            return answer.body["data"]

        # Once an accepted payment is in the store, a refused one would be too, had it done anything.
        accepted = [payer for status, _, _, payer in answers if status in (201, 202)]
        assert accepted, "no payment call was admitted"
        deadline = time.monotonic() + 30
        while not await listed(accepted[-1]):
            assert time.monotonic() < deadline, "an accepted payment never reached the store"
            await asyncio.sleep(0.2)
        shed = [(body, hdrs, payer) for status, body, hdrs, payer in answers if status == 503]
        half_done = [payer["user_id"] for _, _, payer in shed if await listed(payer)]

    refused = [answer for answer in reads if answer[0] != 200]
    assert refused == [] and len(reads) == READS, refused[:3]
    assert all(body["receipt_id"] == receipt["receipt_id"] for _, body in reads)
    # The reads were made while the payment calls held every place (they wait 2 s on the provider).
    assert writes_still_held
    # Every payment call either got its outcome, or was refused at once past the places, with nothing done.
    outcomes = {status for status, _, _, _ in answers}
    assert outcomes <= {201, 202, 503}, outcomes
    assert shed, "no payment call went past the places: the test did not overflow them"
    for body, hdrs, _ in shed:
        assert body["error"]["type"] == "unavailable_error", body
        assert body["error"]["code"] in ("overloaded", "no_ingress_available"), body
        assert int(hdrs["Retry-After"]) >= 1
    assert half_done == []
