"""When to add or remove an ingress or a worker, from the load the heartbeats report (pure logic).

Ingress follows its processes' mean CPU, workers their total consumer lag. A kind changes by one
instance at a time, only after `sustain` readings in a row past a threshold (the thresholds for
up and down lie apart: hysteresis), and not again within `cooldown_s` of its last change.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Bounds:
    low: float  # below this for `sustain` readings: one fewer
    high: float  # above this for `sustain` readings: one more
    minimum: int
    maximum: int


@dataclass(frozen=True)
class Policy:
    ingress: Bounds  # mean CPU percent of the ingress processes
    worker: Bounds  # messages the workers are behind, summed
    sustain: int = 3
    cooldown_s: float = 20.0


@dataclass(frozen=True)
class Load:
    """One reading: each ingress's CPU percent and the workers' summed consumer lag."""

    ingress_cpu: list[float]
    worker_lag: int

    def signal(self, kind: str) -> float | None:
        if kind == "ingress":
            return sum(self.ingress_cpu) / len(self.ingress_cpu) if self.ingress_cpu else None
        return float(self.worker_lag)


@dataclass(frozen=True)
class Decision:
    kind: str
    before: int
    after: int
    reason: str


@dataclass
class Autoscaler:
    policy: Policy
    #: Per kind: consecutive readings above (positive) or below (negative) the bounds.
    streak: dict[str, int] = field(default_factory=dict)
    last_change: dict[str, float] = field(default_factory=dict)

    def decide(self, load: Load, counts: dict[str, int], now: float) -> list[Decision]:
        decisions = []
        for kind in ("ingress", "worker"):
            bounds: Bounds = getattr(self.policy, kind)
            value, count = load.signal(kind), counts[kind]
            if value is None:
                self.streak[kind] = 0
                continue
            step = 1 if value > bounds.high else -1 if value < bounds.low else 0
            previous = self.streak.get(kind, 0)
            self.streak[kind] = step if step == 0 or previous * step <= 0 else previous + step
            target = min(bounds.maximum, max(bounds.minimum, count + step))
            cooling = now - self.last_change.get(kind, float("-inf")) < self.policy.cooldown_s
            if target == count or abs(self.streak[kind]) < self.policy.sustain or cooling:
                continue
            what = "mean CPU" if kind == "ingress" else "consumer lag"
            limit = bounds.high if step > 0 else bounds.low
            reason = (f"{what} {value:.0f} {'>' if step > 0 else '<'} {limit:.0f} for "
                      f"{abs(self.streak[kind])} readings")
            decisions.append(Decision(kind, count, target, reason))
            self.streak[kind] = 0
            self.last_change[kind] = now
        return decisions
