"""Tests a reader can trust: each test's own waits fit under the per-test limit (a slow run fails with the
test's own message, not cut off by pytest-timeout), and no test compares timings (figures belong to the
benchmarks, BENCHMARKS.md)."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import LONGEST_WAIT_S, ROOT, TEST_TIMEOUT_S

WAITS = {"timeout", "timeout_s", "deadline_s", "until"}
CLOCKS = {"perf_counter", "monotonic", "perf_counter_ns", "monotonic_ns"}


def every_test_file() -> list[Path]:
    return sorted((ROOT / "tests").rglob("*.py"))


def test_no_single_wait_in_a_test_is_longer_than_its_limit_allows():
    assert 0 < LONGEST_WAIT_S < TEST_TIMEOUT_S
    long_waits = [f"{p.relative_to(ROOT)}:{node.lineno} {kw.arg}={kw.value.value}"
                  for p in every_test_file() for node in ast.walk(ast.parse(p.read_text()))
                  if isinstance(node, ast.Call) for kw in node.keywords
                  if kw.arg in WAITS and isinstance(kw.value, ast.Constant)
                  and isinstance(kw.value.value, int | float) and kw.value.value > LONGEST_WAIT_S]
    assert long_waits == []


def is_clock(node: ast.AST, stamps: set[str] = frozenset()) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in CLOCKS) or \
        (isinstance(node, ast.Name) and node.id in stamps)


def is_duration(node: ast.AST, stamps: set[str], durations: set[str]) -> bool:
    """A difference of two clock readings (`time.monotonic() - t0`), or a name holding one."""
    if isinstance(node, ast.Name):
        return node.id in durations
    return isinstance(node, ast.BinOp) and isinstance(node.op, ast.Sub) and \
        (is_clock(node.left, stamps) or is_clock(node.right, stamps))


def test_no_test_compares_a_measured_duration():
    """A clock may bound a wait (`while time.monotonic() < deadline`); a duration (a difference of two readings)
    compared to a number or to another duration is a timing assertion."""
    found = []
    for p in every_test_file():
        tree = ast.parse(p.read_text())
        assigns = [n for n in ast.walk(tree) if isinstance(n, ast.Assign)]
        stamps = {t.id for n in assigns if is_clock(n.value) for t in n.targets if isinstance(t, ast.Name)}
        durations: set[str] = set()
        for n in assigns:
            if is_duration(n.value, stamps, durations):
                durations |= {t.id for t in n.targets if isinstance(t, ast.Name)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Assert) and any(
                    is_duration(side, stamps, durations) for compare in ast.walk(node.test)
                    if isinstance(compare, ast.Compare) for side in (compare.left, *compare.comparators)):
                found.append(f"{p.relative_to(ROOT)}:{node.lineno}")
    assert found == []
