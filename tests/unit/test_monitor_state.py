"""The monitor's reading of heartbeats: down, back, restarted, crash loop (pure logic, no I/O)."""

from __future__ import annotations

from monitor.state import SCALED_KINDS, Components, Series
from paystream.messages import Heartbeat


def beat(pid: int, uptime_s: float, state: str = "running") -> Heartbeat:
    return Heartbeat(component_id="sinks@host:6067", kind="sinks", host="host", pid=pid, state=state,
                     at="2026-11-26T00:00:00Z", uptime_s=uptime_s, rss_bytes=1, cpu_percent=0.0, open_connections=0)


def test_first_beat_then_silence_then_return():
    components = Components(interval_s=2, missed=3)
    assert components.beat(beat(10, 1), now=0).state == "up"
    assert components.beat(beat(10, 3), now=2) is None
    assert components.expire(now=7) == []
    (down,) = components.expire(now=8.5)
    assert (down.previous, down.state) == ("up", "down")
    back = components.beat(beat(10, 12), now=10)
    assert (back.previous, back.state, back.reason) == ("down", "up", "heartbeats resumed")


def test_a_new_pid_is_a_restart_and_three_within_the_window_a_crash_loop():
    components = Components(interval_s=2, missed=3, loop_restarts=3, loop_window_s=60)
    components.beat(beat(10, 30), now=0)
    first = components.beat(beat(11, 1), now=5)
    assert (first.previous, first.state) == ("up", "restarted")
    assert "pid 10 after 30 s -> pid 11" in first.reason
    assert components.beat(beat(12, 1), now=10).state == "restarted"
    loop = components.beat(beat(13, 1), now=15)
    assert (loop.previous, loop.state) == ("up", "crash_loop")
    assert "3 restart(s) within 60 s" in loop.reason
    assert components.by_id["sinks@host:6067"].state == "crash_loop"
    # It stays in the loop while it keeps beating, and leaves it after a quiet window.
    assert components.beat(beat(13, 3), now=17) is None
    assert components.beat(beat(13, 24), now=38) is None
    assert components.expire(now=40) == []
    components.beat(beat(13, 70), now=74)
    (ended,) = components.expire(now=75.5)
    assert (ended.previous, ended.state) == ("crash_loop", "up")


def test_restarts_spread_wider_than_the_window_are_no_loop():
    components = Components(interval_s=2, missed=3, loop_restarts=3, loop_window_s=60)
    components.beat(beat(10, 30), now=0)
    states = [components.beat(beat(11 + i, 1), now=40.0 * (i + 1)).state for i in range(4)]
    assert states == ["restarted"] * 4


def test_the_same_pid_with_its_uptime_gone_back_is_a_restart():
    # Under Kubernetes every container's process may be pid 1.
    components = Components(interval_s=2, missed=3)
    components.beat(beat(1, 500), now=0)
    change = components.beat(beat(1, 2), now=10)
    assert change.state == "restarted"


def test_a_restart_after_being_reported_down_says_so():
    components = Components(interval_s=2, missed=3)
    components.beat(beat(10, 30), now=0)
    components.expire(now=7)
    change = components.beat(beat(11, 1), now=9)
    assert (change.previous, change.state) == ("down", "restarted")


def test_a_crash_looping_component_that_goes_silent_is_down():
    components = Components(interval_s=2, missed=3, loop_restarts=1, loop_window_s=60)
    components.beat(beat(10, 30), now=0)
    assert components.beat(beat(11, 1), now=1).state == "crash_loop"
    (down,) = components.expire(now=8)
    assert (down.previous, down.state) == ("crash_loop", "down")
    # Beats that resume late (the same process) leave it in the loop, not up: a loop ends only after
    # a whole window without a restart.
    back = components.beat(beat(11, 9), now=9)
    assert (back.previous, back.state) == ("down", "crash_loop")
    assert components.by_id["sinks@host:6067"].state == "crash_loop"
    components.expire(now=70)
    assert components.beat(beat(11, 80), now=75).state == "up"


def test_a_clean_stop_forgets_the_component():
    components = Components(interval_s=2, missed=3)
    components.beat(beat(10, 30), now=0)
    assert components.beat(beat(10, 31, state="stopping"), now=1).state == "stopped"
    assert components.by_id == {}


def test_live_counts_up_components_by_kind_only():
    components = Components(interval_s=2, missed=3, loop_restarts=1, loop_window_s=60)

    def beat_of(kind: str, port: int, pid: int = 10) -> Heartbeat:
        return Heartbeat(component_id=f"{kind}@host:{port}", kind=kind, host="host", pid=pid,
                         at="2026-11-26T00:00:00Z", uptime_s=30, rss_bytes=1, cpu_percent=0.0, open_connections=0)

    for port in (8081, 8082, 8083):
        components.beat(beat_of("ingress", port), now=0)
    components.beat(beat_of("worker", 6066), now=0)
    components.beat(beat_of("monitor", 8090), now=0)
    components.beat(beat_of("sinks", 6067), now=0)
    components.beat(beat_of("sinks", 8069, pid=11), now=0)
    assert components.live(SCALED_KINDS) == {"ingress": 3, "worker": 1, "sinks": 2, "analytics": 0}

    # One ingress silent (down), one sinks restarting in a loop, one ingress gone cleanly: none serves.
    for port in (8081, 8082):
        components.beat(beat_of("ingress", port), now=6)
    for kind, port in (("worker", 6066), ("sinks", 6067), ("monitor", 8090)):
        components.beat(beat_of(kind, port), now=6)
    assert components.beat(beat_of("sinks", 8069, pid=12), now=6).state == "crash_loop"
    assert [c.subject for c in components.expire(now=7)] == ["ingress@host:8083"]
    components.beat(beat_of("ingress", 8082).model_copy(update={"state": "stopping"}), now=7)
    assert components.live(SCALED_KINDS) == {"ingress": 1, "worker": 1, "sinks": 1, "analytics": 0}


def test_series_keeps_the_last_samples_of_every_figure_and_instance_count():
    series = Series(length=2)
    assert series.as_dict() == {"t": [], "payments_per_s": [], "requests_per_s": [], "consumer_lag": [],
                                "cache_hit_ratio": [], "latency_ms": {"p50": [], "p90": [], "p99": []},
                                "instances": {kind: [] for kind in SCALED_KINDS}}
    for i, counts in enumerate(({"ingress": 1, "worker": 1}, {"ingress": 2, "worker": 1, "sinks": 1},
                                {"ingress": 3, "worker": 2, "sinks": 1, "analytics": 1})):
        series.add(f"2026-11-26T00:00:0{i}Z", payments_per_s=float(i), requests_per_s=100.0 * i,
                   latency_ms={"p50": i + 0.5, "p90": None, "p99": 9.0}, consumer_lag=i * 10,
                   cache_hit_ratio=None if i == 1 else 0.5, instances=counts)
    assert series.as_dict() == {
        "t": ["2026-11-26T00:00:01Z", "2026-11-26T00:00:02Z"], "payments_per_s": [1.0, 2.0],
        "requests_per_s": [100.0, 200.0], "consumer_lag": [10, 20], "cache_hit_ratio": [None, 0.5],
        "latency_ms": {"p50": [1.5, 2.5], "p90": [None, None], "p99": [9.0, 9.0]},
        # A kind with no instance in a sample counts 0, so every column stays as long as `t`.
        "instances": {"ingress": [2, 3], "worker": [1, 2], "sinks": [1, 1], "analytics": [0, 1]},
    }
