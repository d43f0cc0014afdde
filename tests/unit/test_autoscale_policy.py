"""The autoscaler's policy: thresholds held for some readings, one step at a time, cooldown, bounds."""

from __future__ import annotations

from devstack.autoscale.policy import Autoscaler, Bounds, Load, Policy

POLICY = Policy(ingress=Bounds(low=15, high=60, minimum=1, maximum=3),
                worker=Bounds(low=10, high=500, minimum=1, maximum=2), sustain=3, cooldown_s=20)
CALM_WORKERS = 50  # between the worker bounds: no worker change


def feed(scaler: Autoscaler, cpus: list[list[float]], counts: dict[str, int], start: float = 0.0,
         lag: int = CALM_WORKERS) -> list[tuple[float, str, int, int]]:
    """Readings one second apart; the counts follow the decisions. Returns (when, kind, before, after)."""
    seen = []
    for i, cpu in enumerate(cpus):
        for d in scaler.decide(Load(cpu, lag), counts, start + i):
            seen.append((start + i, d.kind, d.before, d.after))
            counts[d.kind] = d.after
    return seen


def test_a_load_held_for_sustain_readings_adds_one_ingress():
    scaler = Autoscaler(POLICY)
    assert feed(scaler, [[80, 70]] * 3, {"ingress": 2, "worker": 1}) == [(2, "ingress", 2, 3)]


def test_a_spike_shorter_than_sustain_changes_nothing():
    assert feed(Autoscaler(POLICY), [[90], [90], [40], [90], [90]], {"ingress": 1, "worker": 1}) == []


def test_between_the_thresholds_nothing_moves_either_way():
    assert feed(Autoscaler(POLICY), [[30, 50]] * 20, {"ingress": 2, "worker": 1}) == []


def test_cooldown_spaces_two_changes_of_the_same_kind():
    seen = feed(Autoscaler(POLICY), [[90]] * 40, {"ingress": 1, "worker": 1})
    assert seen == [(2, "ingress", 1, 2), (22, "ingress", 2, 3)]  # then the maximum holds


def test_idle_scales_down_to_the_minimum_and_no_further():
    seen = feed(Autoscaler(POLICY), [[1, 2, 1]] * 60, {"ingress": 3, "worker": 1})
    assert [(k, b, a) for _, k, b, a in seen] == [("ingress", 3, 2), ("ingress", 2, 1)]


def test_workers_follow_consumer_lag_and_stay_within_their_bounds():
    scaler = Autoscaler(POLICY)
    counts = {"ingress": 1, "worker": 1}
    up = feed(scaler, [[30]] * 30, counts, lag=2000)
    assert [(k, b, a) for _, k, b, a in up] == [("worker", 1, 2)]  # maximum 2: the partitions' share
    down = feed(scaler, [[30]] * 30, counts, start=100, lag=0)
    assert [(k, b, a) for _, k, b, a in down] == [("worker", 2, 1)]


def test_no_ingress_reporting_is_no_reason_to_scale():
    assert feed(Autoscaler(POLICY), [[]] * 10, {"ingress": 2, "worker": 1}) == []
