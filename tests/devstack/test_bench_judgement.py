"""How the stand-in and mixed suites judge a step: paystream's added latency over the stand-in's own,
errors, and reads and payments together."""

from __future__ import annotations

from devstack.bench import kernel, mixed, standin_payments
from devstack.bench.core import Step


def step(target: str, p99_ms: float, errors: int = 0, ok: int = 1000) -> Step:
    return Step.from_latencies("t", target, 100, 10, [p99_ms / 1000] * ok, errors)


def test_the_stand_in_step_allows_50_ms_per_provider_call_over_the_stand_in_alone():
    create, confirm = step("create", 800), step("attach+confirm", 1500)
    assert standin_payments.sustainable(step("start", 849), step("post", 1599), create, confirm)
    assert not standin_payments.sustainable(step("start", 851), step("post", 1599), create, confirm)
    assert not standin_payments.sustainable(step("start", 849), step("post", 1601), create, confirm)
    assert standin_payments.added_p99(step("post", 1599), confirm) == 99


def test_the_stand_in_step_fails_on_errors_whatever_the_latency():
    create, confirm = step("create", 800), step("attach+confirm", 1500)
    assert not standin_payments.sustainable(step("start", 810, errors=2), step("post", 1510), create, confirm)


def test_the_mixed_step_needs_reads_and_payments_within_their_targets_at_once():
    assert mixed.sustained(step("reads", 9.9), step("start", 240), step("post", 240))
    assert not mixed.sustained(step("reads", 10.1), step("start", 240), step("post", 240))
    assert not mixed.sustained(step("reads", 9.9), step("start", 240), step("post", 260))


def test_kernel_counters_are_read_and_counted_as_growth():
    with kernel.counted() as grew:
        pass
    assert set(grew) == {"listen_overflows", "syn_retransmits"}
    assert all(isinstance(v, int) and v >= 0 for v in grew.values())
