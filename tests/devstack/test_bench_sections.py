"""A report that replaces BENCHMARKS.md keeps the sections other commands own, and git keeps only the charts
it shows (bench/charts/); a run's raw files stay in the ignored bench/results/."""

from __future__ import annotations

import subprocess
from pathlib import Path

from devstack.bench import overload, rebuild, run, sinks
from tests.conftest import ROOT


def test_a_new_report_keeps_the_rebuild_sinks_and_overload_sections():
    old = "\n\n".join(["# old report", f"{rebuild.BEGIN}\nrebuild figures\n{rebuild.END}", "stale table",
                       f"{sinks.BEGIN}\nsinks figures\n{sinks.END}", f"{overload.BEGIN}\noverload\n{overload.END}"])
    kept = run.kept_sections(old)
    for section in ("rebuild figures", "sinks figures", "overload"):
        assert section in kept
    assert "stale table" not in kept and "old report" not in kept


def test_publishing_keeps_in_git_only_the_charts_the_report_shows(tmp_path):
    run_dir = tmp_path / "bench" / "results" / "2026-12-08T000000Z-abc1234"
    run_dir.mkdir(parents=True)
    for name in ("receipts.png", "profile.svg", "unshown.png", "results.json"):
        (run_dir / name).write_text(name)
    (run_dir / "report.md").write_text("# report\n\n![getReceipt](receipts.png)\n\nprofile: [it](profile.svg), "
                                       "[docs](https://example.org/x.png)\n")
    charts = tmp_path / run.CHARTS
    charts.mkdir(parents=True)
    (charts / "stale.png").write_text("an older run's")
    (tmp_path / "BENCHMARKS.md").write_text(f"# old\n\n{rebuild.BEGIN}\nrebuild figures\n{rebuild.END}\n")

    published = run.publish(run_dir / "report.md", tmp_path).read_text()

    assert sorted(p.name for p in charts.iterdir()) == ["profile.svg", "receipts.png"]
    assert "![getReceipt](bench/charts/receipts.png)" in published and "[it](bench/charts/profile.svg)" in published
    assert "(https://example.org/x.png)" in published and "rebuild figures" in published


def test_every_chart_in_git_is_shown_and_every_local_link_of_benchmarks_md_is_there():
    text = (ROOT / "BENCHMARKS.md").read_text()
    links = run.LOCAL_LINK.findall(text)
    assert links and all((ROOT / link).is_file() for link in links), links
    assert {p.name for p in (ROOT / run.CHARTS).iterdir()} == {Path(link).name for link in links}
    ignored = subprocess.run(["git", "check-ignore", "-q", "bench/results/any-run/results.json"], cwd=ROOT)
    assert ignored.returncode == 0, "bench/results/ is not ignored"
