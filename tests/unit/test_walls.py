"""The house's walls, read from the imports: the core does no I/O and knows no entrypoint or
adapter; adapters never import entrypoints; ingress and streams meet only through topics;
nothing in production imports the dev stack or reads its files."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = ["paystream", "ingress", "streams", "connectors", "tables", "monitor"]
CORE = ["paystream/domain", "paystream/handlers.py", "paystream/ports.py", "paystream/views.py", "paystream/rebuild.py",
        "paystream/projection.py", "paystream/early_writes.py",
        "paystream/messages.py", "paystream/clock.py"]
IO_LIBRARIES = {"aiohttp", "redis", "couchbase", "acouchbase", "kafka", "aiokafka", "faust", "requests", "httpx",
                "psutil", "prometheus_client", "structlog"}


def modules(*paths: str) -> list[Path]:
    found = []
    for path in paths:
        p = ROOT / path
        found += [p] if p.is_file() else sorted(p.rglob("*.py"))
    return found


def imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def crossings(paths: list[Path], forbidden: set[str]) -> list[str]:
    return [f"{p.relative_to(ROOT)} imports {name}" for p in paths for name in sorted(imported(p))
            if name.split(".")[0] in forbidden]


def test_the_core_imports_no_io_and_no_outer_layer():
    assert crossings(modules(*CORE), IO_LIBRARIES | {"ingress", "streams", "connectors", "tables", "monitor",
                                                      "devstack"}) == []


@pytest.mark.parametrize(("layer", "forbidden"), [("connectors", {"ingress", "streams", "devstack"}),
                                                   ("ingress", {"streams", "devstack"}),
                                                   ("streams", {"ingress", "devstack"}),
                                                   # The analytics process lives beside its tables
                                                   # (tables/analytics/), on the streams' Faust runtime.
                                                   ("tables", {"ingress", "devstack"}),
                                                   ("monitor", {"ingress", "streams", "devstack"}),
                                                   ("paystream", {"devstack"})])
def test_each_layer_stays_behind_its_wall(layer, forbidden):
    assert crossings(modules(layer), forbidden) == []


def test_no_production_module_reads_the_dev_stack_files():
    pattern = re.compile(r"""["']\.stack/|/ *["']\.stack["']|cluster\.json""")
    hits = [f"{p.relative_to(ROOT)}:{n}" for p in modules(*PRODUCTION)
            for n, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert hits == []
