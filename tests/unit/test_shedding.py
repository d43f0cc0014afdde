"""The ingress's bounds (ingress/shedding.py): who is refused, and how the adaptive limits move."""

from __future__ import annotations

from ingress.shedding import MIN_IN_FLIGHT, AdaptiveLimit, LoadShedder


def test_slow_answers_lower_the_limit_to_its_floor_and_quick_ones_raise_it_back_to_the_ceiling():
    limit = AdaptiveLimit(ceiling=64, target_s=0.1, floor=4)
    for _ in range(200):
        limit.observe(0.5)
    assert limit.allowed == 4
    lowered = []
    for _ in range(5000):
        limit.observe(0.01)
        lowered.append(limit.allowed)
    assert lowered == sorted(lowered) and lowered[-1] == 64


def test_the_limit_settles_where_few_answers_miss_the_target():
    # One answer in a hundred slow: a tenth off each time, one over the limit back for each quick one.
    limit = AdaptiveLimit(ceiling=256, target_s=0.1, floor=1)
    for i in range(20_000):
        limit.observe(0.5 if i % 100 == 0 else 0.01)
    assert 20 <= limit.allowed <= 60


def test_past_the_bound_every_request_is_refused_and_writes_have_a_bound_of_their_own():
    shedder = LoadShedder(max_in_flight=20, latency_target_s=0.1, max_in_flight_writes=2,
                          write_latency_target_s=0.25)
    assert shedder.all.allowed == 20 and MIN_IN_FLIGHT == 16
    shedder.admit(is_write=True)
    shedder.admit(is_write=True)
    assert shedder.refusal(is_write=True) == "writes_in_flight"
    assert shedder.refusal(is_write=False) is None
    for _ in range(18):
        shedder.admit(is_write=False)
    assert shedder.refusal(is_write=False) == "in_flight"
    shedder.done(is_write=False, latency_s=0.01)
    assert shedder.refusal(is_write=False) is None
    # Slow writes lower only the writes' limit; slow reads lower the bound on all, never below its floor.
    shedder.done(is_write=True, latency_s=1.0)
    assert (shedder.writes.allowed, shedder.all.allowed) == (2, 20)
    for _ in range(100):
        shedder.done(is_write=False, latency_s=1.0)
    assert shedder.all.allowed == MIN_IN_FLIGHT
