"""The shipped overload and dead-letter alert rules, run by promtool on a known episode."""

from __future__ import annotations

import shutil
import subprocess

from tests.conftest import ROOT

RULE_TESTS = ROOT / "docker" / "prometheus" / "rules-tests"


def test_promtool_fires_one_overload_alert_per_episode_and_one_for_dead_letters():
    assert shutil.which("promtool"), "promtool is missing: `make test` installs it (Debian's prometheus package)"
    result = subprocess.run(["promtool", "test", "rules", *map(str, sorted(RULE_TESTS.glob("*.yml")))],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
