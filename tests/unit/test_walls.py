"""The house's walls, read from the imports: the core does no I/O and knows no entrypoint or
adapter; adapters never import entrypoints; the ingress reaches adapters only through the core's
ports (bootstrap builds them); ingress and streams meet only through topics; nothing in production
imports the dev stack or reads its files; no import circle anywhere in the tree, not even one
dodged by an import inside a function; no module imports another's private (`_name`) names."""

from __future__ import annotations

import ast
import re
import sys
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
                                                   ("ingress", {"streams", "connectors", "devstack"}),
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


#: Every folder of the tree whose modules count for circles and private names (tests, venvs and the
#: dev stack's state aside).
TREE = [*PRODUCTION, "devstack"]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the project's modules it imports, anywhere in its body (a function's imports too),
    relative imports resolved; `from package import name` counts as the submodule when it is one."""
    paths = {module_name(p): p for p in modules(*TREE)}
    graph: dict[str, set[str]] = {m: set() for m in paths}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([base] if base else []))
                targets = [base] + [f"{base}.{a.name}" for a in node.names]
            else:
                continue
            for target in targets:
                while target and target not in paths:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The graph's strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while (w := stack.pop()) != v:
                component.append(w)
            if component:
                found.append(sorted([v, *component]))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_circle_anywhere_in_the_tree():
    assert circles(import_graph()) == []


def test_the_circle_finder_finds_one_through_an_import_inside_a_function():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_imports_another_modules_private_names():
    ours = {p.split("/")[0] for p in TREE} | {"tests"}
    hits = [f"{p.relative_to(ROOT)}:{node.lineno} imports {node.module}.{a.name}"
            for p in modules(*TREE, "tests") for node in ast.walk(ast.parse(p.read_text()))
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").split(".")[0] in ours)
            for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
    assert hits == []


def test_no_test_module_imports_another():
    """Shared doubles live in tests/unit/fakes.py and shared helpers in tests/*.py, not in a test module."""
    hits = [f"{p.relative_to(ROOT)} imports {name}" for p in modules("tests") for name in sorted(imported(p))
            if name.startswith("tests.") and name.rpartition(".")[2].startswith("test_")]
    assert hits == []
