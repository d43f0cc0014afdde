"""Refunds per second through paystream, beside its floor: the same refunds made straight at the Stripe
sandbox. `python -m devstack.bench.refunds [--seconds S] [--rates 10,25]` on a throwaway stack; in
`paystream bench all` as the suite `refunds`.

Each step first pays (untimed) as many payments as it will refund, through paystream for paystream's
side and straight at the sandbox for the floor's, then refunds each one in full at the offered rate,
open loop: paystream's `POST /v1/refunds` (through Kafka, the worker that owns the payment, the
sandbox, and back; a 202 is polled to its end and timed to it), the floor's `POST /v1/refunds` of the
sandbox with the metadata and idempotency key paystream's connector sends. The section goes into
BENCHMARKS.md (`put_section`), with the command.
"""

from __future__ import annotations

import asyncio
import uuid

import aiohttp

from devstack.bench import alone
from devstack.bench import tuning as bench_tuning
from devstack.bench.bench_stack import BenchStack
from devstack.bench.core import Step, counting_failures, open_loop
from devstack.bench.report_parts import fmt_errors, fmt_ms, fmt_rate, machine
from devstack.settings import DevSettings

BEGIN, END = "<!-- refunds -->", "<!-- /refunds -->"
RATES = [10, 25, 50]
#: Payments made ready at once before a step (untimed): enough to keep the sandbox busy, not flooded.
SETUP_CONCURRENCY = 20


def _api(settings: DevSettings) -> tuple[str, dict]:
    return (f"http://{settings.ingress_host}:{settings.ingress_port}",
            {"Authorization": f"Bearer {settings.dev_api_key.get_secret_value()}"})


async def _bounded(n: int, make) -> list:
    gate = asyncio.Semaphore(SETUP_CONCURRENCY)

    async def one(i: int):
        async with gate:
            return await make(i)

    return list(await asyncio.gather(*(one(i) for i in range(n))))


async def paystream_refunds(settings: DevSettings, rate: int, seconds: float) -> Step:
    """`rate * seconds` payments paid through paystream (untimed), then each refunded in full at `rate`."""
    base, auth = _api(settings)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=bench_tuning.CLIENT_CONNECTIONS),
                                     headers=auth) as http:
        async def pay(i: int) -> tuple[str, str]:
            who = {"user_id": f"bench-rf-{uuid.uuid4().hex[:12]}", "email_id": "payer@example.com",
                   "timestamp": "2026-11-25T10:00:00Z", "payment_type": "credit"}
            async with http.post(f"{base}/v1/startPayment", json={**who, "amount": "10.00", "currency": "EUR"}) as r:
                started = await r.json()
            async with http.post(f"{base}/v1/postPayment", json={
                    **who, "transaction_id": started["transaction_id"], "amount": "10.00", "currency": "EUR",
                    "payment_method": "pm_card_visa"}) as r:
                if r.status != 201:
                    raise RuntimeError(f"post {r.status}: {await r.text()}")
            return started["payment_id"], who["user_id"]

        paid = await _bounded(int(rate * seconds), pay)

        async def refund(i: int) -> None:
            payment_id, user_id = paid[i]
            async with http.post(f"{base}/v1/refunds", json={"payment_id": payment_id, "user_id": user_id},
                                 headers={"Idempotency-Key": uuid.uuid4().hex}) as r:
                body = await r.json()
                if r.status not in (201, 202):
                    raise RuntimeError(f"refund {r.status}: {body}")
                location = r.headers.get("Location")
            while body["status"] == "pending":  # timed to its end
                await asyncio.sleep(0.1)
                async with http.get(base + location) as r:
                    body = await r.json()
            if body["status"] != "succeeded":
                raise RuntimeError(f"refund {body['status']}")

        failures: dict[str, int] = {}
        latencies, errors, _ = await open_loop(rate, seconds, counting_failures(refund, failures))
    return Step.from_latencies("refunds", "paystream refund", rate, seconds, latencies, errors, failures=failures)


async def sandbox_refunds(settings: DevSettings, rate: int, seconds: float) -> Step:
    """The floor: `rate * seconds` intents charged at the sandbox (untimed), each refunded there at `rate`."""
    base = settings.stripe_api_base
    headers = {"Authorization": f"Bearer {settings.stripe_api_key.get_secret_value()}"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=bench_tuning.CLIENT_CONNECTIONS),
                                     headers=headers) as http:
        async def call(path: str, data: dict, key: str | None = None) -> dict:
            async with http.post(base + path, data=data, headers={"Idempotency-Key": key} if key else {}) as r:
                body = await r.json()
                if r.status != 200:
                    raise RuntimeError(f"{path} {r.status}: {body}")
                return body

        async def pay(i: int) -> str:
            intent = await call("/v1/payment_intents", {"amount": "1000", "currency": "eur",
                                                        "metadata[payment_id]": f"floor-rf-{i}"})
            await call(f"/v1/payment_intents/{intent['id']}", {"payment_method": "pm_card_visa"})
            await call(f"/v1/payment_intents/{intent['id']}/confirm", {})
            return intent["id"]

        intents = await _bounded(int(rate * seconds), pay)

        async def refund(i: int) -> None:
            refund_id = f"rf_floor_{uuid.uuid4().hex[:16]}"
            await call("/v1/refunds", {"payment_intent": intents[i], "metadata[refund_id]": refund_id,
                                       "metadata[payment_id]": f"floor-rf-{i}"}, key=f"paystream-{refund_id}")

        failures: dict[str, int] = {}
        latencies, errors, _ = await open_loop(rate, seconds, counting_failures(refund, failures))
    return Step.from_latencies("refunds", "floor: sandbox refund", rate, seconds, latencies, errors, failures=failures)


def run(stack: BenchStack, rates: list[int], seconds: float, say=print) -> dict:
    settings = stack.settings()
    asyncio.run(paystream_refunds(settings, rates[0], 1))  # warm-up, not reported
    steps: list[Step] = []
    for rate in rates:
        ours = asyncio.run(paystream_refunds(settings, rate, seconds))
        stack.wait_drained()
        floor = asyncio.run(sandbox_refunds(settings, rate, seconds))
        steps += [ours, floor]
        say(f"  refunds at {rate}/s: paystream {ours.achieved_rps}/s p50 {ours.p50_ms} ms p99 {ours.p99_ms} ms "
            f"errors {fmt_errors(ours)}; the sandbox alone {floor.achieved_rps}/s p99 {floor.p99_ms} ms errors {floor.errors}")
    return {"steps": steps, "seconds": seconds}


def section(result: dict, command: str, commit: str, note: str = "") -> list[str]:
    """The suite's section of BENCHMARKS.md, between its markers."""
    steps = result["steps"]
    rows = [(s, f) for s, f in zip(steps[::2], steps[1::2])]
    lines = [BEGIN, "## Refunds: through paystream, beside the Stripe sandbox alone", "",
             f"- command: `{command}`", f"- commit: `{commit}`; machine: {machine()}{note}", "",
             "Each step pays (untimed) the payments it will refund, then refunds each in full at the offered "
             "rate, open loop, timed from when each was due to its final answer: through paystream "
             "(`POST /v1/refunds`: Kafka, the worker that owns the payment, the sandbox, back; a 202 polled to "
             "its end), and the floor, the same refunds made straight at the sandbox (`POST /v1/refunds` with "
             "paystream's metadata and idempotency key).", "",
             "| offered/s | paystream refunds/s | p50 ms | p99 ms | errors | sandbox alone/s | p50 ms | p99 ms | errors |",
             "|" + "---:|" * 9]
    for ours, floor in rows:
        lines.append(f"| {fmt_rate(ours.offered_rps)} | {fmt_rate(ours.achieved_rps)} | {fmt_ms(ours.p50_ms)} | "
                     f"{fmt_ms(ours.p99_ms)} | {fmt_errors(ours)} | {fmt_rate(floor.achieved_rps)} | {fmt_ms(floor.p50_ms)} | "
                     f"{fmt_ms(floor.p99_ms)} | {fmt_errors(floor)} |")
    lines += ["", END]
    return lines


def main() -> None:
    alone.main("refunds", __doc__, RATES, run, section, BEGIN, END)


if __name__ == "__main__":
    main()
