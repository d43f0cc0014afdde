"""Overload: reads, payments, and both at once (the design's 1,000 : 10), at a sustainable rate and at twice it.

`python -m devstack.bench.overload [--reads 500] [--payments 10] [--seconds 20]` on its own throwaway
stack (the harness's BenchStack). For each load it runs the given (sustainable) rate, then twice it,
open loop, and reports per step: goodput (successful answers a second; complete payments a second),
the share of 503s (shed or unavailable) and of other failures (any 500 among them), admitted latency
(p50/p99 of the successful answers; per call for payments), and each paystream process's resident
memory before and after. Nothing lost: every payment answered 201 reads back afterwards. The section
"Overload" of BENCHMARKS.md is written from the run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import psutil

from devstack.bench import tools
from devstack.bench.bench_stack import BenchStack
from devstack.bench.core import git_commit, open_loop, percentile, put_section, results_dir, save_json
from devstack.bench.receipts import make_receipts, receipt_targets
from devstack.bench.report import machine
from devstack.settings import DevSettings, get_dev_settings

BEGIN, END = "<!-- overload -->", "<!-- /overload -->"
POST_P99_TARGET_MS = 500.0
GOODPUT_TARGET = 0.9


def rss_mib(pids: dict[str, int]) -> dict[str, float]:
    found = {}
    for name, pid in pids.items():
        try:
            found[name] = round(psutil.Process(pid).memory_info().rss / 2**20, 1)
        except psutil.Error:
            found[name] = None
    return found


def pct_ms(values: list[float], p: float) -> float | None:
    v = percentile(sorted(values), p)
    return None if v is None else round(v * 1000, 1)


def read_attack(vegeta: Path, targets: list[dict], rate: int, seconds: float) -> dict:
    """getReceipt at `rate` for `seconds` (vegeta): codes counted, latency of the 200s."""
    codes: Counter = Counter()
    failures: Counter = Counter()  # what vegeta met when no answer came (code 0): timeouts, refused connections
    ok: list[float] = []
    for result in tools.vegeta_attack(vegeta, targets, rate, seconds):
        codes[result["code"]] += 1
        if result["code"] == 0:
            failures[re.sub(r"127\.0\.0\.1:\d+->127\.0\.0\.1:\d+", "…", result.get("error", ""))[-80:]] += 1
        if result["code"] == 200:
            ok.append(result["latency"] / 1e9)
    sent = sum(codes.values())
    return {"offered_rps": rate, "sent": sent, "codes": {str(k): v for k, v in sorted(codes.items())},
            "goodput_rps": round(len(ok) / seconds, 1), "share_503": round(codes[503] / sent, 4) if sent else None,
            "p50_ms": pct_ms(ok, 50), "p99_ms": pct_ms(ok, 99), "no_answer": dict(failures.most_common(3))}


async def pay(settings: DevSettings, rate: float, seconds: float) -> dict:
    """Complete payments (start + post) at `rate`, open loop: codes of each call, per-call latency of the admitted."""
    base = f"http://{settings.ingress_host}:{settings.ingress_port}"
    headers = {"Authorization": f"Bearer {settings.dev_api_key.get_secret_value()}"}
    codes: Counter = Counter()
    calls: list[float] = []
    refusals: list[float] = []  # how long a 503 took: a refusal must come at once, not after a queue's wait
    done: list[dict] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), headers=headers,
                                     timeout=aiohttp.ClientTimeout(total=15)) as http:
        async def call(path: str, body: dict) -> tuple[int, dict]:
            t0 = time.perf_counter()
            try:
                async with http.post(base + path, json=body) as r:
                    answer = await r.json(content_type=None)
            except TimeoutError:
                codes[f"{path.rsplit('/', 1)[-1]} timeout"] += 1
                raise
            why = answer.get("error", {}).get("code", "") if r.status >= 400 and isinstance(answer, dict) else ""
            codes[f"{path.rsplit('/', 1)[-1]} {r.status} {why}".rstrip()] += 1
            if r.status == 201:
                calls.append(time.perf_counter() - t0)
            elif r.status == 503:
                refusals.append(time.perf_counter() - t0)
            return r.status, answer

        async def payment(i: int) -> None:
            who = {"user_id": f"ovl-{uuid.uuid4().hex[:12]}", "email_id": "payer@example.com",
                   "timestamp": "2026-11-25T10:00:00Z", "payment_type": "credit"}
            status, started = await call("/v1/startPayment", {**who, "amount": "10.00", "currency": "EUR"})
            if status != 201:
                raise RuntimeError(f"start {status}")
            status, receipt = await call("/v1/postPayment", {
                **who, "transaction_id": started["transaction_id"], "amount": "10.00", "currency": "EUR",
                "payment_method": "pm_card_visa"})
            if status != 201:
                raise RuntimeError(f"post {status}")
            done.append({"receipt_id": receipt["receipt_id"], "user_id": who["user_id"]})

        _, _, elapsed = await open_loop(rate, seconds, payment)
    total_calls = sum(codes.values())
    return {"offered_rps": rate, "codes": dict(sorted(codes.items())), "complete": len(done),
            "goodput_rps": round(len(done) / seconds, 2),
            "share_503": round(sum(v for k, v in codes.items() if k.split()[1] == "503") / total_calls, 4)
            if total_calls else None,
            "call_p50_ms": pct_ms(calls, 50), "call_p99_ms": pct_ms(calls, 99),
            "refused_p99_ms": pct_ms(refusals, 99), "receipts": done}


async def lost(settings: DevSettings, receipts: list[dict]) -> int:
    """Payments answered 201 whose receipt does not read back (retrying a 503 for a while)."""
    base = f"http://{settings.ingress_host}:{settings.ingress_port}"
    headers = {"Authorization": f"Bearer {settings.dev_api_key.get_secret_value()}"}
    missing = 0
    async with aiohttp.ClientSession(headers=headers) as http:
        for r in receipts:
            for _ in range(20):
                async with http.get(f"{base}/v1/getReceipt", params=r) as resp:
                    if resp.status == 200:
                        break
                await asyncio.sleep(0.5)
            else:
                missing += 1
    return missing


def step(stack: BenchStack, name: str, reads: int, payments: float, seconds: float, vegeta: Path,
         targets: list[dict], say=print) -> dict:
    pids = stack.pids()
    before = rss_mib(pids)
    result: dict = {"step": name, "seconds": seconds}
    reader = None
    if reads:
        reader = threading.Thread(target=lambda: result.__setitem__("reads", read_attack(vegeta, targets, reads,
                                                                                         seconds)))
        reader.start()
    if payments:
        paid = asyncio.run(pay(stack.settings(), payments, seconds))
        receipts = paid.pop("receipts")
        result["payments"] = paid
    if reader:
        reader.join()
    result["rss_mib_before"], result["rss_mib_after"] = before, rss_mib(pids)
    if payments:
        stack.wait_drained()
        result["payments"]["lost"] = asyncio.run(lost(stack.settings(), receipts))
    say(f"  {name}: {json.dumps({k: v for k, v in result.items() if k not in ('rss_mib_before', 'rss_mib_after')})}")
    return result


def run(stack: BenchStack, reads: int, payments: int, seconds: float, say=print, both_reads: int | None = None
        ) -> dict:
    """`both_reads`: the sustainable read rate with payments alongside (at 100 : 1), `reads` if None: the
    two loads share the machine, so the rate each sustains alone is more than both do at once."""
    both_reads = both_reads or reads
    settings = stack.settings()
    vegeta = tools.vegeta(settings)
    stored = asyncio.run(make_receipts(settings, settings.dev_api_key.get_secret_value(), 50))
    targets = receipt_targets(settings, stored)
    read_attack(vegeta, targets, reads, 2)  # warm-up, not reported
    load_before = os.getloadavg()[0]
    steps = []
    # Both at once at the design's ratio: 1,000 reads to 10 payments.
    for name, r, p in (("reads", reads, 0), ("payments", 0, payments), ("both", both_reads, both_reads / 100)):
        for factor in (1, 2):
            steps.append(step(stack, f"{name} x{factor}", r * factor, p * factor, seconds, vegeta, targets, say))
            stack.wait_drained()
    return {"reads_rps": reads, "payments_rps": payments, "both_reads_rps": both_reads, "seconds": seconds,
            "steps": steps,
            "load_average": [round(load_before, 1), round(os.getloadavg()[0], 1)]}


def _fmt(v) -> str:
    return "–" if v is None else f"{v:,}"


def publish(root: Path, result: dict, command: str) -> Path:
    rows = []
    by = {s["step"]: s for s in result["steps"]}
    for name in ("reads", "payments", "both"):
        base, over = by[f"{name} x1"], by[f"{name} x2"]
        for kind in ("reads", "payments"):
            if kind not in over:
                continue
            b, o = base[kind], over[kind]
            ratio = o["goodput_rps"] / b["offered_rps"] if b["offered_rps"] else None
            fives = sum(v for k, v in o["codes"].items()
                        if (k.split() + [""])[1 if kind == "payments" else 0][:1] == "5"
                        and (k.split() + [""])[1 if kind == "payments" else 0] != "503")
            latency = (f"p50 {_fmt(o['p50_ms'])} / p99 {_fmt(o['p99_ms'])} ms" if kind == "reads" else
                       f"per call p50 {_fmt(o['call_p50_ms'])} / p99 {_fmt(o['call_p99_ms'])} ms")
            mem = ", ".join(f"{p} {over['rss_mib_before'][p]}→{over['rss_mib_after'][p]}"
                            for p in ("ingress", "worker") if p in over["rss_mib_before"])
            lost = o.get("lost", "–")
            rows.append(f"| {name} | {kind} | {_fmt(b['offered_rps'])} → {_fmt(o['offered_rps'])}/s | "
                        f"{_fmt(b['goodput_rps'])} → **{_fmt(o['goodput_rps'])}**/s ({ratio:.0%} of the sustainable "
                        f"rate) | {o['share_503']:.1%} | {fives} | {latency} | {lost} | {mem} MiB |")
    section = "\n".join([
        BEGIN, "", "## Overload (twice the sustainable rate)", "",
        f"- command: `{command}` (its own throwaway stack; {result['seconds']:.0f} s a step)",
        f"- commit: `{git_commit(root)}`, run at {datetime.now(UTC).isoformat(timespec='seconds')}",
        f"- machine: {machine()}; load average (1 min) at the start and the end: "
        f"{result['load_average'][0]} / {result['load_average'][1]} (anything above the cores is other work)",
        "- each load at the given rate, then at twice it, open loop; goodput counts successful answers (complete "
        "payments for payments); 503s are refusals with `Retry-After` (load shed, or a part unavailable); "
        "latency is that of admitted, successful answers; memory is each process's RSS before → after the "
        "doubled step; lost: payments answered 201 whose receipt did not read back",
        f"- targets: goodput ≥ {GOODPUT_TARGET:.0%} of the sustainable rate, no 500, admitted payment calls p99 ≤ "
        f"{POST_P99_TARGET_MS:.0f} ms, memory flat, nothing lost",
        "",
        "| load | of it | offered x1 → x2 | goodput x1 → x2 | 503 share at x2 | other 5xx at x2 | admitted latency at x2 "
        "| lost | memory |",
        "|---|---|---|---|---:|---:|---|---:|---|",
        *rows, "", END])
    return put_section(root / "BENCHMARKS.md", BEGIN, END, section)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reads", type=int, default=500, help="sustainable getReceipt rate (per second)")
    parser.add_argument("--payments", type=int, default=10, help="sustainable payment rate (per second)")
    parser.add_argument("--both-reads", type=int, default=None,
                        help="sustainable getReceipt rate with payments alongside at 100 : 1 (default: --reads)")
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    root = Path.cwd()
    command = (f"python -m devstack.bench.overload --reads {args.reads} --payments {args.payments} "
               + (f"--both-reads {args.both_reads} " if args.both_reads else "") + f"--seconds {args.seconds:g}")
    with BenchStack(root, get_dev_settings(), say=print) as stack:
        result = run(stack, args.reads, args.payments, args.seconds, both_reads=args.both_reads)
    out = results_dir(root, root / "bench" / "results")
    save_json(out / "overload.json", result)
    print(f"results: {out / 'overload.json'}; published {publish(root, result, command)}")


if __name__ == "__main__":
    main()
