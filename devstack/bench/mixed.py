"""Reads and payments at once, at the design's ratio: 1,000 getReceipt (cache hits) and 10 complete
payments a second, and multiples of both. The design's capacity is the two together, not each alone.

A step is sustained when reads keep p99 ≤ 10 ms and each payment call p99 ≤ 250 ms, errors under
0.1 % on both. A failing step is run once more before it counts (one noisy window on a shared
machine should not end the ladder); both attempts are kept in the results.
"""

from __future__ import annotations

import asyncio
import contextlib
from concurrent.futures import ThreadPoolExecutor

from devstack.bench import kernel, tools
from devstack.bench.bench_stack import BenchStack
from devstack.bench.core import Step
from devstack.bench.load import paystream_payments
from devstack.bench.payments import P99_TARGET_MS as PAYMENT_P99_MS
from devstack.bench.receipts import P99_TARGET_MS as READ_P99_MS
from devstack.bench.receipts import make_receipts, receipt_targets

#: The design's capacity: reads and payments per second together.
DESIGN_READS, DESIGN_PAYMENTS = 1000, 10


def sustained(reads: Step, start: Step, post: Step) -> bool:
    return reads.sustainable(READ_P99_MS) and start.sustainable(PAYMENT_P99_MS) and post.sustainable(PAYMENT_P99_MS)


def _one(settings, vegeta, targets: list[dict], multiple: float, seconds: float) -> tuple[Step, Step, Step]:
    reads_rate, payments_rate = int(DESIGN_READS * multiple), DESIGN_PAYMENTS * multiple
    with ThreadPoolExecutor(1) as pool, kernel.counted() as tcp:
        reading = pool.submit(tools.vegeta_step, vegeta, "mixed", "mixed getReceipt", targets, reads_rate, seconds)
        start, post = asyncio.run(paystream_payments(settings, payments_rate, seconds))
        reads = reading.result()
    for step in (reads, start, post):
        step.suite, step.extra["multiple"] = "mixed", multiple
        step.target = step.target.replace("paystream ", "mixed ")
    reads.extra.update(tcp)
    return reads, start, post


def run(stack: BenchStack, multiples: list[float], seconds: float, say=print, profile=None) -> dict:
    settings = stack.settings()
    vegeta = tools.vegeta(settings)
    stored = asyncio.run(make_receipts(settings, settings.dev_api_key.get_secret_value(), 50))
    targets = receipt_targets(settings, stored)
    _one(settings, vegeta, targets, multiples[0] / 4, 1)  # warm-up, not reported
    steps: list[Step] = []
    attempts: list[dict] = []
    best = None
    for multiple in multiples:
        for attempt in (1, 2):
            with (profile(f"mixed@{multiple:g}", seconds) if profile else contextlib.nullcontext()):
                reads, start, post = _one(settings, vegeta, targets, multiple, seconds)
            drained = stack.wait_drained()
            ok = sustained(reads, start, post)
            attempts.append({"multiple": multiple, "attempt": attempt, "sustained": ok})
            say(f"  mixed at {multiple:g}x ({int(DESIGN_READS * multiple)} reads/s + {DESIGN_PAYMENTS * multiple:g} "
                f"payments/s), attempt {attempt}: reads p99 {reads.p99_ms} ms ({reads.errors} errors), start p99 "
                f"{start.p99_ms} ms, post p99 {post.p99_ms} ms ({post.errors} errors): "
                f"{'sustained' if ok else 'not sustained'}; drained in {drained:.0f} s; kernel {reads.extra}")
            if ok:
                break
        steps += [reads, start, post]
        if not ok:
            break
        best = multiple
    return {"steps": steps, "attempts": attempts, "sustained_multiple": best,
            "design": {"reads": DESIGN_READS, "payments": DESIGN_PAYMENTS},
            "targets_ms": {"reads": READ_P99_MS, "payment_call": PAYMENT_P99_MS}}
