"""How many of each scalable pipeline process run: the dev stack's record, `.stack/scale.json`.

`pipeline up` starts that many; `paystream scale` changes it (devstack/scaling.py). Without the
file the counts come from the settings (`PAYSTREAM_INGRESS_INSTANCES`, ...).
"""

from __future__ import annotations

import json
from pathlib import Path

from devstack.settings import DevSettings
from devstack.stack.base import Service

#: The kinds `paystream scale` changes the number of (devstack/stack/pipeline.py has their processes),
#: each with a setting `<kind>_instances` giving its default count.
SCALABLE_KINDS = ("ingress", "worker", "sinks")


def instance_name(kind: str, instance: int) -> str:
    """A process's name under supervisord: its kind for the first, `kind-N` for the others."""
    return kind if instance == 1 else f"{kind}-{instance}"


def limits(settings: DevSettings) -> dict[str, int]:
    """The most of each kind: a worker beyond the partitions would get none."""
    return {"ingress": settings.ingress_max_instances,
            "worker": min(settings.scale_max_instances, settings.payment_topic_partitions),
            "sinks": min(settings.scale_max_instances, settings.payment_topic_partitions)}


def _path(settings: DevSettings) -> Path:
    return settings.state_dir / "scale.json"


def counts(settings: DevSettings) -> dict[str, int]:
    defaults = {kind: getattr(settings, f"{kind}_instances") for kind in SCALABLE_KINDS}
    try:
        recorded = json.loads(_path(settings).read_text())
    except (OSError, ValueError):
        recorded = {}
    return {kind: int(recorded.get(kind, default)) for kind, default in defaults.items()}


def record(settings: DevSettings, new: dict[str, int]) -> None:
    path = _path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({**counts(settings), **new}, indent=2, sort_keys=True))
    tmp.replace(path)


def expand(settings: DevSettings, types: tuple[type[Service], ...], how_many: dict[str, int]) -> list[Service]:
    """The services of `types` in order, a scalable kind as `how_many[kind]` instances."""
    services: list[Service] = []
    for kind in types:
        if kind.name in SCALABLE_KINDS:
            services += [kind(settings, n) for n in range(1, how_many[kind.name] + 1)]
        else:
            services.append(kind(settings))
    return services


def ingress_ports(settings: DevSettings) -> dict[str, int]:
    """The balancer's servers: program name -> port, for the recorded number of ingress processes."""
    return {instance_name("ingress", n): settings.ingress_instance_port(n)
            for n in range(1, counts(settings)["ingress"] + 1)}
