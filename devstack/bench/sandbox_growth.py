"""Does the Stripe sandbox stay fast as it grows? Fill one to N payments and time a provider call.

    python -m devstack.bench.sandbox_growth [--payments 10000] [--at 1000,5000] [--calls 200]

Starts a sandbox of its own, exactly as `stack up` runs it (`python -m devstack.stack.stripe_sandbox`,
with the dev stack's persistence: its store in a state file), on a free loopback port and in a
temporary folder, so the dev stack's own sandbox is not touched. It makes payments as the Stripe
connector does (create an intent, attach the card, confirm: three calls), and at each checkpoint times
`--calls` provider calls spread over a few seconds (so that the store's saves fall among them): a
look-up by id (what recovery and reconciliation do) and a whole payment's three calls. Then it restarts
the sandbox on the same state file and times it again (a stack's `down`/`up`). Prints one JSON line a
checkpoint; BENCHMARKS.md ("Stripe sandbox growth") keeps the numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

KEY = "sk_test_sandbox_growth"
CONCURRENCY = 16


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(folder: Path, port: int) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-m", "devstack.stack.stripe_sandbox", "--host", "127.0.0.1",
                                "--port", str(port), "--dir", str(folder), "--state-file",
                                str(folder / "localstripe.pickle")],
                               stdout=subprocess.DEVNULL, stderr=open(folder / "sandbox.log", "ab"))  # noqa: SIM115
    deadline = time.monotonic() + 300
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the sandbox did not start: {(folder / 'sandbox.log').read_text()[-2000:]}")
            time.sleep(0.1)


def stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)  # aiohttp's shutdown: the store's last save
    process.wait(timeout=300)


async def call(http: aiohttp.ClientSession, method: str, path: str, form: dict | None = None) -> dict:
    async with http.request(method, path, data=form) as response:
        body = await response.json()
        if response.status != 200:
            raise SystemExit(f"{method} {path} -> {response.status}: {body}")
        return body


async def pay(http: aiohttp.ClientSession, n: int) -> str:
    intent = await call(http, "POST", "/v1/payment_intents", {
        "amount": str(100 + n % 900), "currency": "eur", "metadata[payment_id]": f"pay_growth_{n}"})
    await call(http, "POST", f"/v1/payment_intents/{intent['id']}", {"payment_method": "pm_card_visa"})
    await call(http, "POST", f"/v1/payment_intents/{intent['id']}/confirm")
    return intent["id"]


async def fill(http: aiohttp.ClientSession, first: int, last: int, ids: list[str]) -> None:
    numbers = iter(range(first, last))

    async def one_lane() -> None:
        for n in numbers:
            ids.append(await pay(http, n))

    await asyncio.gather(*(one_lane() for _ in range(CONCURRENCY)))


async def timed(http: aiohttp.ClientSession, ids: list[str], calls: int, spread_s: float) -> dict:
    """`calls` look-ups by id and `calls // 10` whole payments, one at a time, spread over `spread_s`."""
    lookups, payments = [], []
    gap = spread_s / calls
    for i in range(calls):
        began = time.perf_counter()
        await call(http, "GET", f"/v1/payment_intents/{ids[(i * 7919) % len(ids)]}")
        lookups.append((time.perf_counter() - began) * 1000)
        if i % 10 == 0:
            began = time.perf_counter()
            ids.append(await pay(http, 10_000_000 + len(ids)))
            payments.append((time.perf_counter() - began) * 1000)
        await asyncio.sleep(gap)

    def summary(ms: list[float]) -> dict:
        ms = sorted(ms)
        return {"median_ms": round(statistics.median(ms), 1), "p99_ms": round(ms[int(len(ms) * 0.99) - 1], 1),
                "max_ms": round(ms[-1], 1), "n": len(ms)}

    return {"lookup_by_id": summary(lookups), "payment_3_calls": summary(payments)}


async def run(payments: int, checkpoints: list[int], calls: int, spread_s: float) -> None:
    with tempfile.TemporaryDirectory(prefix="sandbox-growth-") as scratch:
        folder, port = Path(scratch), free_port()
        process = start(folder, port)
        base, headers = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {KEY}"}
        ids: list[str] = []
        try:
            async with aiohttp.ClientSession(base, headers=headers) as http:
                made = 0
                for checkpoint in [*checkpoints, payments]:
                    began = time.monotonic()
                    await fill(http, made, checkpoint, ids)
                    made = checkpoint
                    result = {"payments": made, "fill_s": round(time.monotonic() - began, 1),
                              **await timed(http, ids, calls, spread_s),
                              "state_file_mb": round(os.path.getsize(folder / "localstripe.pickle") / 1e6, 1)
                              if (folder / "localstripe.pickle").exists() else 0}
                    print(json.dumps(result), flush=True)
            began = time.monotonic()
            stop(process)
            stopped_s = time.monotonic() - began
            began = time.monotonic()
            process = start(folder, port)
            async with aiohttp.ClientSession(base, headers=headers) as http:
                answered_s = time.monotonic() - began
                body = await call(http, "GET", "/v1/payment_intents?limit=1")
                print(json.dumps({"after_restart": True, "stop_s": round(stopped_s, 1),
                                  "start_s": round(answered_s, 1), "intents_kept": body["total_count"],
                                  **await timed(http, ids, calls, spread_s)}), flush=True)
        finally:
            if process.poll() is None:
                stop(process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--payments", type=int, default=10_000, help="payments the sandbox serves in all")
    parser.add_argument("--at", default="1000,5000", help="checkpoints on the way (payments, comma-separated)")
    parser.add_argument("--calls", type=int, default=200, help="look-ups timed at each checkpoint")
    parser.add_argument("--spread-s", type=float, default=5.0, help="the timed calls spread over this long")
    args = parser.parse_args()
    checkpoints = sorted(int(n) for n in args.at.split(",") if n and int(n) < args.payments)
    asyncio.run(run(args.payments, checkpoints, args.calls, args.spread_s))


if __name__ == "__main__":
    main()
