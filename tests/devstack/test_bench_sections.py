"""A report that replaces BENCHMARKS.md keeps the sections other commands own."""

from __future__ import annotations

from devstack.bench import overload, rebuild, run, sinks


def test_a_new_report_keeps_the_rebuild_sinks_and_overload_sections():
    old = "\n\n".join(["# old report", f"{rebuild.BEGIN}\nrebuild figures\n{rebuild.END}", "stale table",
                       f"{sinks.BEGIN}\nsinks figures\n{sinks.END}", f"{overload.BEGIN}\noverload\n{overload.END}"])
    kept = run.kept_sections(old)
    for section in ("rebuild figures", "sinks figures", "overload"):
        assert section in kept
    assert "stale table" not in kept and "old report" not in kept
