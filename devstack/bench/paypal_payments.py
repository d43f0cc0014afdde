"""PayPal payments per second through paystream, beside its floor: the PayPal stand-in called directly.
`python -m devstack.bench.paypal_payments [--seconds S] [--rates 10,25]` on a throwaway stack; in
`paystream bench all` as the suite `paypal`.

A payment through paystream: `startPayment` with `provider: paypal` (paystream creates the order), the
payer's approval on the stand-in's test-only page (the payer's doing, untimed), `postPayment` (paystream
captures the order). The floor makes the same provider calls straight at the stand-in (its own OAuth
token, `PayPal-Request-Id`s as paystream's): create the order, approve (untimed), capture. Open loop at
the offered rate; start/create and post/capture timed apart. The section goes into BENCHMARKS.md
(`put_section`), with the command.
"""

from __future__ import annotations

import asyncio
import base64
import uuid

import aiohttp

from devstack.bench import alone
from devstack.bench import tuning as bench_tuning
from devstack.bench.bench_stack import BenchStack
from devstack.bench.core import Step, counting_failures, open_loop
from devstack.bench.report_parts import fmt_errors, fmt_ms, fmt_rate, machine
from devstack.settings import DevSettings

BEGIN, END = "<!-- paypal-payments -->", "<!-- /paypal-payments -->"
RATES = [10, 25, 50, 100]
TARGETS = ("paystream paypal start", "paystream paypal post", "floor: paypal create order", "floor: paypal capture")


async def _approve(http: aiohttp.ClientSession, paypal: str, order_id: str) -> None:
    async with http.post(f"{paypal}/_test/orders/{order_id}/approve", json={}) as r:
        if r.status != 200:
            raise RuntimeError(f"approve {r.status}")


async def paystream_paypal(settings: DevSettings, rate: int, seconds: float) -> tuple[Step, Step]:
    base = f"http://{settings.ingress_host}:{settings.ingress_port}"
    auth = {"Authorization": f"Bearer {settings.dev_api_key.get_secret_value()}"}
    starts, posts = [], []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=bench_tuning.CLIENT_CONNECTIONS)) as http:
        async def payment(i: int) -> None:
            who = {"user_id": f"bench-pp-{uuid.uuid4().hex[:12]}", "email_id": "payer@example.com",
                   "timestamp": "2026-11-25T10:00:00Z", "payment_type": "credit"}
            clock = asyncio.get_running_loop().time
            t0 = clock()
            async with http.post(f"{base}/v1/startPayment", headers=auth, json={
                    **who, "amount": "10.00", "currency": "EUR", "provider": "paypal"}) as r:
                started = await r.json()
                if r.status != 201:
                    raise RuntimeError(f"start {r.status}: {started}")
            starts.append(clock() - t0)
            await _approve(http, settings.paypal_sandbox_base, started["transaction_id"])
            t1 = clock()
            async with http.post(f"{base}/v1/postPayment", headers=auth, json={
                    **who, "transaction_id": started["transaction_id"], "amount": "10.00", "currency": "EUR",
                    "payment_method": "paypal"}) as r:
                await r.read()
                if r.status != 201:
                    raise RuntimeError(f"post {r.status}")
            posts.append(clock() - t1)

        failures: dict[str, int] = {}
        _, errors, _ = await open_loop(rate, seconds, counting_failures(payment, failures))
    return (Step.from_latencies("paypal", TARGETS[0], rate, seconds, starts, errors),
            Step.from_latencies("paypal", TARGETS[1], rate, seconds, posts, errors, failures=failures))


async def standin_paypal(settings: DevSettings, rate: int, seconds: float) -> tuple[Step, Step]:
    """The floor: the provider calls paystream makes, straight at the PayPal stand-in."""
    paypal = settings.paypal_sandbox_base
    creates, captures = [], []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=bench_tuning.CLIENT_CONNECTIONS)) as http:
        basic = base64.b64encode(f"{settings.paypal_client_id or 'bench'}:"
                                 f"{settings.paypal_secret.get_secret_value() or 'bench'}".encode()).decode()
        async with http.post(f"{paypal}/v1/oauth2/token", data={"grant_type": "client_credentials"},
                             headers={"Authorization": f"Basic {basic}"}) as r:
            auth = {"Authorization": f"Bearer {(await r.json())['access_token']}"}

        async def payment(i: int) -> None:
            key = uuid.uuid4().hex
            clock = asyncio.get_running_loop().time
            t0 = clock()
            async with http.post(f"{paypal}/v2/checkout/orders", headers={**auth, "PayPal-Request-Id": f"{key}-start"},
                                 json={"intent": "CAPTURE", "purchase_units": [{
                                     "amount": {"currency_code": "EUR", "value": "10.00"}, "custom_id": key}]}) as r:
                order = await r.json()
                if r.status != 201:
                    raise RuntimeError(f"create {r.status}")
            creates.append(clock() - t0)
            await _approve(http, paypal, order["id"])
            t1 = clock()
            async with http.post(f"{paypal}/v2/checkout/orders/{order['id']}/capture",
                                 headers={**auth, "PayPal-Request-Id": f"{key}-capture"}, json={}) as r:
                await r.read()
                if r.status != 201:
                    raise RuntimeError(f"capture {r.status}")
            captures.append(clock() - t1)

        failures: dict[str, int] = {}
        _, errors, _ = await open_loop(rate, seconds, counting_failures(payment, failures))
    return (Step.from_latencies("paypal", TARGETS[2], rate, seconds, creates, errors),
            Step.from_latencies("paypal", TARGETS[3], rate, seconds, captures, errors,
                                failures=failures))


def run(stack: BenchStack, rates: list[int], seconds: float, say=print) -> dict:
    settings = stack.settings()
    asyncio.run(paystream_paypal(settings, rates[0], 1))  # warm-up, not reported
    steps: list[Step] = []
    for rate in rates:
        start, post = asyncio.run(paystream_paypal(settings, rate, seconds))
        stack.wait_drained()
        create, capture = asyncio.run(standin_paypal(settings, rate, seconds))
        steps += [start, post, create, capture]
        say(f"  PayPal payments at {rate}/s: paystream {post.achieved_rps}/s, start p99 {start.p99_ms} ms, post p99 "
            f"{post.p99_ms} ms, errors {fmt_errors(post)}; the stand-in alone {capture.achieved_rps}/s, create p99 "
            f"{create.p99_ms} ms, capture p99 {capture.p99_ms} ms, errors {capture.errors}")
    return {"steps": steps, "seconds": seconds}


def section(result: dict, command: str, commit: str, note: str = "") -> list[str]:
    """The suite's section of BENCHMARKS.md, between its markers."""
    steps = result["steps"]
    lines = [BEGIN, "## PayPal payments: through paystream, beside the PayPal stand-in alone", "",
             f"- command: `{command}`", f"- commit: `{commit}`; machine: {machine()}{note}", "",
             "Complete PayPal payments at the offered rate, open loop: through paystream (`startPayment` with "
             "`provider: paypal` creates the order; the payer approves on the stand-in's test page, untimed; "
             "`postPayment` captures it), and the floor, the same calls straight at the PayPal stand-in "
             "(`devstack/paypal_standin.py`, no latency of its own here): create the order, approve, capture. "
             "Achieved: payments completed per second of offered load.", "",
             "| offered/s | paystream/s | start p50 ms | start p99 | post p50 | post p99 | errors | stand-in alone/s | "
             "create p50 ms | create p99 | capture p50 | capture p99 | errors |", "|" + "---:|" * 13]
    for i in range(0, len(steps), 4):
        start, post, create, capture = steps[i:i + 4]
        lines.append(f"| {fmt_rate(start.offered_rps)} | {fmt_rate(post.achieved_rps)} | {fmt_ms(start.p50_ms)} | "
                     f"{fmt_ms(start.p99_ms)} | {fmt_ms(post.p50_ms)} | {fmt_ms(post.p99_ms)} | {fmt_errors(post)} | "
                     f"{fmt_rate(capture.achieved_rps)} | {fmt_ms(create.p50_ms)} | {fmt_ms(create.p99_ms)} | "
                     f"{fmt_ms(capture.p50_ms)} | {fmt_ms(capture.p99_ms)} | {fmt_errors(capture)} |")
    lines += ["", END]
    return lines


def main() -> None:
    alone.main("paypal_payments", __doc__, RATES, run, section, BEGIN, END)


if __name__ == "__main__":
    main()
