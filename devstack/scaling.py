"""`paystream scale ingress=N worker=M sinks=K`: the number of pipeline processes, changed at runtime.

Scale-out starts the new programs under supervisord, waits until each answers its probe, and
only then gives a new ingress to HAProxy. Scale-in drains first: an ingress leaves the balancer
(state drain: no new requests) and is stopped once its requests are answered; a worker or sinks
process is stopped with SIGTERM, so it commits what it handled and leaves its consumer group,
and the others take its partitions over (what it had not committed is handled again by them; the
payment steps are idempotent, so nothing is charged twice).
"""

from __future__ import annotations

from collections.abc import Callable

from devstack.settings import DevSettings
from devstack.stack import instances
from devstack.stack.balancer import Balancer
from devstack.stack.errors import StackError
from devstack.stack.manager import PipelineStack
from devstack.stack.pipeline import SCALABLE


def parse(pairs: list[str]) -> dict[str, int]:
    """`ingress=3 worker=2` -> {"ingress": 3, "worker": 2}."""
    wanted: dict[str, int] = {}
    for pair in pairs:
        kind, _, count = pair.partition("=")
        if kind not in SCALABLE or not count.isdigit():
            raise StackError(f"expected KIND=N with KIND one of {', '.join(SCALABLE)}, not {pair!r}")
        wanted[kind] = int(count)
    return wanted


def check(settings: DevSettings, wanted: dict[str, int]) -> None:
    most = instances.limits(settings)
    for kind, count in wanted.items():
        if not 1 <= count <= most[kind]:
            raise StackError(f"{kind}={count}: choose 1 to {most[kind]}")


def scale(settings: DevSettings, wanted: dict[str, int], say: Callable[[str], None] = print) -> dict[str, int]:
    """Run `wanted` of each kind named (the others as they are); returns the counts now."""
    check(settings, wanted)
    before = instances.counts(settings)
    after = {**before, **wanted}
    if after == before:
        return after
    stack = PipelineStack(settings, say=say, keep_running=True)
    if not stack.supervised():
        instances.record(settings, after)
        say("the pipeline is not running; `paystream dev pipeline up` will start " + _counts(after))
        return after
    balancer = Balancer(settings)
    leaving = _instances(settings, before) - _instances(settings, after)
    # Scale-in: drained ingresses first, so no request reaches a process about to stop.
    for name in sorted(n for n in leaving if n.startswith("ingress")):
        left = balancer.drain(name, settings.drain_timeout_s)
        say(f"drained {name}" + (f" ({left} request(s) still open after {settings.drain_timeout_s:.0f} s)"
                                  if left else ""))
    instances.record(settings, after)
    # supervisord's programs now match the record: the ones that left are stopped (SIGTERM, waited
    # for) and removed, the new ones added; `up` starts them and waits until each answers.
    stack = PipelineStack(settings, say=say, keep_running=True)
    stack.up([n for n in stack.services if n.split("-")[0] in after])
    for name in sorted(n for n in leaving if n.startswith("ingress")):
        balancer.remove(name)
    ports = instances.ingress_ports(settings)
    for name, port in ports.items():
        balancer.add(name, port)
    balancer.write_config()
    balancer.wait_up(set(ports), settings.service_start_timeout_s)
    say("now running " + _counts(after))
    return after


def _counts(how_many: dict[str, int]) -> str:
    return " ".join(f"{kind}={count}" for kind, count in how_many.items())


def _instances(settings: DevSettings, how_many: dict[str, int]) -> set[str]:
    return {s.name for s in instances.expand(settings, tuple(SCALABLE.values()), how_many)}
