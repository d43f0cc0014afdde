"""The monitor's reading of heartbeats: down, back, restarted, crash loop (pure logic, no I/O)."""

from __future__ import annotations

from monitor.state import Components
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
