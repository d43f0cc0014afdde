"""The ingress's bounds (ingress/shedding.py): who is refused, and how the adaptive limits move."""

from __future__ import annotations

from ingress.shedding import MIN_READS_IN_FLIGHT, AdaptiveLimit, LoadShedder
from paystream.settings import Settings


def answers(limit: AdaptiveLimit, latencies: list[float], start: float = 0.0) -> float:
    """One answer after the other, each admitted as the previous one was answered; the clock after."""
    now = start
    for latency in latencies:
        limit.observe(now, now + latency)
        now += latency
    return now


def test_slow_answers_lower_the_limit_to_its_floor_and_quick_ones_raise_it_back_to_the_ceiling():
    limit = AdaptiveLimit(ceiling=64, target_s=0.1, floor=4)
    now = answers(limit, [0.5] * 200)
    assert limit.allowed == 4
    raised = []
    for _ in range(5000):
        now = answers(limit, [0.01], now)
        raised.append(limit.allowed)
    assert raised == sorted(raised) and raised[-1] == 64


def test_slow_answers_to_one_round_of_requests_lower_the_limit_once():
    limit = AdaptiveLimit(ceiling=64, target_s=0.1, floor=4)
    # 40 requests admitted together at t=0, all answered slowly: one signal, a tenth off once.
    for i in range(40):
        limit.observe(0.0, 1.0 + i / 100)
    assert limit.allowed == 57
    # A request admitted after that decrease and slow too lowers it again.
    limit.observe(1.5, 2.0)
    assert limit.allowed == 51


def test_the_limit_settles_where_few_answers_miss_the_target():
    # One answer in a hundred slow: a tenth off each time, one over the limit back for each quick one.
    limit = AdaptiveLimit(ceiling=256, target_s=0.1, floor=1)
    answers(limit, [0.5 if i % 100 == 0 else 0.01 for i in range(20_000)])
    assert 20 <= limit.allowed <= 60


def test_reads_and_writes_are_bounded_apart():
    shedder = LoadShedder(max_reads=20, read_target_s=0.1, max_writes=6, write_target_s=0.25, min_writes=3)
    for _ in range(6):
        shedder.admit(is_write=True)
    # Writes waiting on a slow pipeline take no read's place.
    assert shedder.refusal(is_write=True) == "writes_in_flight"
    assert shedder.refusal(is_write=False) is None
    for _ in range(20):
        shedder.admit(is_write=False)
    assert shedder.refusal(is_write=False) == "reads_in_flight"
    shedder.done(is_write=False, started_at=0.0, ended_at=0.01)
    assert shedder.refusal(is_write=False) is None
    # Slow writes lower only the writes' limit, slow reads only the reads', neither below its floor.
    for i in range(6):
        shedder.done(is_write=True, started_at=float(i), ended_at=i + 0.9)
    assert (shedder.writes.allowed, shedder.reads.allowed) == (3, 20)
    for i in range(19):
        shedder.done(is_write=False, started_at=float(i), ended_at=i + 0.9)
    assert shedder.reads.allowed == MIN_READS_IN_FLIGHT
    assert (shedder.reads.in_flight, shedder.writes.in_flight) == (0, 0)


def test_payment_calls_that_only_wait_on_a_slow_provider_keep_every_place_for_writes():
    """A payment call's time is its provider's (2 s here), which costs the process nothing: the default
    bound on writes stays at its ceiling; only a write that outlasts the wait budget (a 202) lowers it."""
    settings = Settings(_env_file=None)
    shedder = LoadShedder.from_settings(settings)
    ceiling = settings.ingress_max_in_flight_writes
    for i in range(ceiling):
        shedder.admit(is_write=True)
    assert shedder.refusal(is_write=True) == "writes_in_flight" and shedder.refusal(is_write=False) is None
    for i in range(ceiling):
        shedder.done(is_write=True, started_at=0.0, ended_at=2.0 + i / 100)
    assert shedder.writes.allowed == ceiling
    shedder.admit(is_write=True)
    shedder.done(is_write=True, started_at=3.0, ended_at=3.0 + settings.reply_timeout_s + 0.1)
    assert shedder.writes.allowed < ceiling
