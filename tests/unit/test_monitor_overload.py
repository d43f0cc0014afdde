"""The monitor names overload instead of flapping: the local overload rule (monitor/overload.py) on the
same episode as the shipped Prometheus rule's promtool test, and late heartbeats of a process whose
metrics page still answers."""

from __future__ import annotations

from monitor.overload import FOR_S, KEEP_FIRING_S, OverloadRule, Reading
from monitor.state import Components
from paystream.messages import Heartbeat

BUCKETS = (0.01, 0.1, 0.5, 1.0, float("inf"))


def episode(seconds: int, shed_until: int, every: float = 2.0, wobble: bool = True,
            shed_from: int = 0) -> list[Reading]:
    """An ingress scraped every 2 s: 100 answers a scrape, 30 of them 503s from `shed_from` until `shed_until`
    (one scrape in five only 2: the figures wobble across the threshold), quick answers throughout."""
    readings, answers, errors = [], 0.0, 0.0
    for i in range(int(seconds / every) + 1):
        at = i * every
        readings.append(Reading(at, answers, errors, {le: answers for le in BUCKETS}, 10 / 256))
        answers += 100
        if shed_from <= at < shed_until:
            errors += 2 if wobble and i % 5 == 4 else 30
    return readings


def changes(rule: OverloadRule, readings: list[Reading]):
    return [(c.state, r.at) for r in readings if (c := rule.observe("ingress@127.0.0.1:8080", "ingress", r))]


def test_one_overload_alert_for_one_episode_and_one_when_it_is_over():
    seen = changes(OverloadRule(), episode(180, shed_until=60))
    assert [state for state, _ in seen] == ["overloaded", "normal"]
    (_, fired), (_, resolved) = seen
    assert FOR_S <= fired <= FOR_S + 4
    # Resolved only once the window is clear (about 90 s) and a whole KEEP_FIRING_S after that.
    assert resolved >= 60 + KEEP_FIRING_S


def test_a_few_503s_in_a_healthy_flow_raise_nothing():
    # 60 shed in the 1,500 answers of a 30 s window: 4 %, under the rule's 5 %.
    assert changes(OverloadRule(), episode(180, shed_from=60, shed_until=64, wobble=False)) == []


def test_slow_answers_and_a_full_bound_are_overload_too():
    rule = OverloadRule()
    slow = [Reading(t, t * 50, 0.0, {0.01: 0.0, 0.1: 0.0, 0.5: 0.0, 1.0: t * 50, float("inf"): t * 50}, 1 / 256)
            for t in range(0, 40, 2)]
    assert [s for s, _ in changes(rule, slow)] == ["overloaded"]
    full = [Reading(t, t * 50, 0.0, {0.01: t * 50, float("inf"): t * 50}, 250 / 256) for t in range(0, 40, 2)]
    assert [s for s, _ in changes(OverloadRule(), full)] == ["overloaded"]


def beat(uptime: float) -> Heartbeat:
    return Heartbeat(component_id="ingress@127.0.0.1:8080", kind="ingress", host="127.0.0.1", pid=42,
                     at="2026-11-26T10:00:00Z", uptime_s=uptime, rss_bytes=1, cpu_percent=90.0, open_connections=1)


def late_beats(answering: bool) -> list[str]:
    """A minute of beats 7 s apart (due every 2 s: three missed, each time), the expiry checked every 0.5 s."""
    components = Components(interval_s=2.0, missed=3)
    states = []
    for tick in range(0, 121):
        now = tick * 0.5
        if now % 7 == 0:
            if (change := components.beat(beat(now), now)) is not None:
                states.append(change.state)
        alive = frozenset({"ingress@127.0.0.1:8080"}) if answering else frozenset()
        states += [c.state for c in components.expire(now, alive)]
    return states


def test_late_beats_of_a_process_still_answering_are_not_a_flapping_down():
    # Judged from the beats alone, the overloaded process flaps (the 8 down/up in a minute)...
    flapping = late_beats(answering=False)
    assert flapping.count("down") >= 7 and flapping.count("up") >= 8
    # ...while its metrics page still answers, it is late, not down: only its first beat is news.
    assert late_beats(answering=True) == ["up"]


def test_the_status_page_gets_the_figures_only_while_an_episode_fires():
    rule = OverloadRule()
    component = "ingress@127.0.0.1:8080"
    described = []
    for reading in episode(180, shed_until=60):
        rule.observe(component, "ingress", reading)
        described.append((reading.at, rule.is_overloaded(component), rule.describe(component)))
    firing = [text for _, overloaded, text in described if overloaded]
    assert firing and all(text and text.startswith("5xx ") and "p99" in text for text in firing)
    # While it fires, the latest figures: about a quarter of 503s first, the quiet window at the end.
    share = [float(text.removeprefix("5xx ").split("%")[0]) for text in firing]
    assert share[0] > 20 and share[-1] == 0.0, (firing[0], firing[-1])
    assert all(text is None for _, overloaded, text in described if not overloaded)
    assert rule.describe("sinks@127.0.0.1:6067") is None
