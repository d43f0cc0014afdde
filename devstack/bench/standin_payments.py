"""Complete payments through paystream with the provider stand-in (real-world latency, no cap of
its own) as provider, beside the same provider calls made straight at the stand-in: the floor.

Each call to the stand-in takes 300-800 ms (devstack settings `standin_latency_ms`), so what the
step shows is paystream's own ceiling and the latency it adds per provider call, not the sandbox's
(localstripe caps at about 50 payments a second on this machine: `devstack/bench/payments.py`).
"""

from __future__ import annotations

import asyncio
import contextlib

from devstack.bench import kernel
from devstack.bench.bench_stack import BenchStack
from devstack.bench.core import Step
from devstack.bench.load import paystream_payments, sandbox_payments

#: What paystream may add to each provider call at p99 over the stand-in's own p99 (issue 11).
ADDED_P99_MS_PER_CALL = 50.0
#: Provider calls in each of paystream's operations: start creates an intent; post attaches, confirms.
CALLS = {"start": 1, "post": 2}
LABEL = "stand-in"


def added_p99(ours: Step, floor: Step) -> float | None:
    return None if ours.p99_ms is None or floor.p99_ms is None else round(ours.p99_ms - floor.p99_ms, 1)


def sustainable(start: Step, post: Step, create: Step, confirm: Step) -> bool:
    """Errors under 0.1 % and paystream adding at most 50 ms p99 per provider call over the floor."""
    def within(ours: Step, floor: Step, calls: int) -> bool:
        added = added_p99(ours, floor)
        return ours.sustainable(float("inf")) and added is not None and added <= calls * ADDED_P99_MS_PER_CALL

    return within(start, create, CALLS["start"]) and within(post, confirm, CALLS["post"])


def run(stack: BenchStack, rates: list[int], seconds: float, say=print, profile=None) -> dict:
    settings = stack.settings()
    steps: list[Step] = []
    asyncio.run(paystream_payments(settings, rates[0], 2))  # warm-up, not reported
    first_missed = None
    for rate in rates:
        with (profile(f"standin@{rate}", seconds) if profile else contextlib.nullcontext()), \
                kernel.counted() as tcp:
            start, post = asyncio.run(paystream_payments(settings, rate, seconds))
        post.extra.update(tcp)
        drained = stack.wait_drained()
        with kernel.counted() as tcp:
            create, confirm = asyncio.run(sandbox_payments(settings, rate, seconds, LABEL))
        confirm.extra.update(tcp)
        steps += [start, post, create, confirm]
        ok = sustainable(start, post, create, confirm)
        say(f"  stand-in payments at {rate}/s: achieved {post.achieved_rps}/s, start p99 {start.p99_ms} ms "
            f"(+{added_p99(start, create)} over the stand-in), post p99 {post.p99_ms} ms "
            f"(+{added_p99(post, confirm)}), errors {post.errors}; the stand-in alone: create p99 "
            f"{create.p99_ms} ms, attach+confirm p99 {confirm.p99_ms} ms, errors {confirm.errors}; "
            f"drained in {drained:.0f} s; kernel: {post.extra} / {confirm.extra}")
        if not ok and first_missed is None:
            first_missed = rate
        if not ok and not confirm.sustainable(float("inf")):
            say("  paystream and the stand-in alone both failing: higher rates skipped")
            break
        if not ok and first_missed != rate:
            say("  two steps past the target: higher rates skipped")
            break
    return {"steps": steps, "latency_ms": settings.standin_latency_ms, "first_missed": first_missed,
            "added_p99_ms_per_call": ADDED_P99_MS_PER_CALL}
